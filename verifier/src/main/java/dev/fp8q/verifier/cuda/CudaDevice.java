package dev.fp8q.verifier.cuda;

import static jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR;
import static jcuda.driver.CUdevice_attribute.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR;
import static jcuda.driver.JCudaDriver.cuCtxSetCurrent;
import static jcuda.driver.JCudaDriver.cuDeviceGet;
import static jcuda.driver.JCudaDriver.cuDeviceGetAttribute;
import static jcuda.driver.JCudaDriver.cuDeviceGetCount;
import static jcuda.driver.JCudaDriver.cuDeviceGetName;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRelease;
import static jcuda.driver.JCudaDriver.cuDevicePrimaryCtxRetain;
import static jcuda.driver.JCudaDriver.cuDeviceTotalMem;
import static jcuda.driver.JCudaDriver.cuInit;
import static jcuda.driver.JCudaDriver.cuLaunchKernel;
import static jcuda.driver.JCudaDriver.cuMemAlloc;
import static jcuda.driver.JCudaDriver.cuMemAllocHost;
import static jcuda.driver.JCudaDriver.cuMemFreeHost;
import static jcuda.driver.JCudaDriver.cuMemcpyDtoH;
import static jcuda.driver.JCudaDriver.cuMemcpyHtoD;
import static jcuda.driver.JCudaDriver.cuMemsetD32;
import static jcuda.driver.JCudaDriver.cuModuleGetFunction;
import static jcuda.driver.JCudaDriver.cuModuleLoadData;
import static jcuda.driver.JCudaDriver.cuModuleUnload;

import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.stream.IntStream;
import jcuda.CudaException;
import jcuda.NativePointerObject;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUfunction;
import jcuda.driver.CUmodule;
import jcuda.driver.JCudaDriver;

/**
 * One GPU through the JCuda driver API: its primary context and fp8q's PTX module. Kernels queue on the default
 * stream; copies are synchronous. Calls make the context current on the calling thread first, so any thread may use
 * the device (one at a time).
 */
public final class CudaDevice implements AutoCloseable {

    /** FP8 tensor-core MMA (mma.sync ... e4m3) starts with compute capability 8.9 (Ada, Hopper and newer). */
    public static final int MIN_CAPABILITY = 89;
    /** Pinned host memory every copy goes through: filled by all cores, then DMA at full PCIe speed. */
    private static final long STAGING = 64L << 20;
    private static final long PIECE = 2L << 20;

    private final CUdevice device;
    private final CUcontext context;
    private final CUmodule module;
    private final String name;
    private final int capability;
    private final long memory;
    private final Map<String, CUfunction> functions = new HashMap<>();
    private final Map<Long, java.util.ArrayDeque<CUdeviceptr>> pool = new HashMap<>();
    private long pooled;
    private final Pointer pinned;
    private final MemorySegment staging;
    /** Pinned host allocations handed out by {@link #pinned(long)} by start address, with their ends; freed on close. */
    private final java.util.TreeMap<Long, Long> pinnedEnds = new java.util.TreeMap<>();
    private final java.util.List<Pointer> hostAllocations = new java.util.ArrayList<>();

    private CudaDevice(CUdevice device, CUcontext context, CUmodule module, String name, int capability, long memory) {
        this.device = device;
        this.context = context;
        this.module = module;
        this.name = name;
        this.capability = capability;
        this.memory = memory;
        this.pinned = new Pointer();
        cuMemAllocHost(pinned, STAGING);
        this.staging = MemorySegment.ofBuffer(pinned.getByteBuffer(0, STAGING));
    }

    /** The first GPU, or why there is none that fp8q can use. */
    public static CudaDevice open() throws GpuUnavailableException {
        CUdevice dev = new CUdevice();
        int[] count = new int[1];
        try {
            JCudaDriver.setExceptionsEnabled(true);
            cuInit(0);
            cuDeviceGetCount(count);
        } catch (LinkageError | CudaException e) {
            throw new GpuUnavailableException("no CUDA driver (" + firstLine(e) + ")");
        }
        if (count[0] == 0) {
            throw new GpuUnavailableException("the CUDA driver sees no GPU");
        }
        cuDeviceGet(dev, 0);
        byte[] raw = new byte[256];
        cuDeviceGetName(raw, raw.length, dev);
        String name = new String(raw, StandardCharsets.US_ASCII).replaceAll("\0.*", "").trim();
        int[] major = new int[1];
        int[] minor = new int[1];
        cuDeviceGetAttribute(major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev);
        cuDeviceGetAttribute(minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev);
        int capability = major[0] * 10 + minor[0];
        if (capability < MIN_CAPABILITY) {
            throw new GpuUnavailableException(name + " has compute capability " + major[0] + "." + minor[0]
                    + "; FP8 tensor cores need 8.9 or newer", true);
        }
        long[] mem = new long[1];
        cuDeviceTotalMem(mem, dev);
        CUcontext ctx = new CUcontext();
        cuDevicePrimaryCtxRetain(ctx, dev);
        cuCtxSetCurrent(ctx);
        CUmodule module = new CUmodule();
        try {
            cuModuleLoadData(module, Ptx.load().forDriver());
        } catch (CudaException e) {
            cuDevicePrimaryCtxRelease(dev);
            throw new GpuUnavailableException(name + " did not load fp8q's PTX (" + firstLine(e) + ")", true);
        }
        return new CudaDevice(dev, ctx, module, name, capability, mem[0]);
    }

    private static String firstLine(Throwable e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return m.lines().findFirst().orElse(m);
    }

    /** "NVIDIA H100 80GB HBM3, compute capability 9.0, 79.1 GiB". */
    public String describe() {
        return String.format("%s, compute capability %d.%d, %.1f GiB", name, capability / 10, capability % 10,
                memory / (double) (1L << 30));
    }

    /**
     * Device memory of this many bytes: a freed allocation of the same size when the pool has one (a block's
     * activations and weights recur with the same shapes, and cuMemAlloc / cuMemFree cost a device-wide wait each),
     * else a new one; when the device is full, the pool is emptied and the allocation tried once more.
     */
    public DeviceBuffer alloc(long bytes) {
        current();
        long size = Math.max(bytes, 4);
        java.util.ArrayDeque<CUdeviceptr> free = pool.get(size);
        CUdeviceptr p = free == null ? null : free.poll();
        if (p == null) {
            p = new CUdeviceptr();
            try {
                cuMemAlloc(p, size);
            } catch (CudaException e) {
                if (pooled == 0) {
                    throw e;
                }
                trim();
                cuMemAlloc(p, size);
            }
        } else {
            pooled -= size;
        }
        return new DeviceBuffer(p, bytes, this::release);
    }

    private void release(DeviceBuffer b) {
        long size = Math.max(b.bytes(), 4);
        pool.computeIfAbsent(size, k -> new java.util.ArrayDeque<>()).push(b.raw());
        pooled += size;
    }

    /** Frees every pooled allocation. */
    public void trim() {
        current();
        pool.values().forEach(q -> q.forEach(JCudaDriver::cuMemFree));
        pool.clear();
        pooled = 0;
    }

    public DeviceBuffer upload(float[] values) {
        return upload(MemorySegment.ofArray(values));
    }

    /** Any bytes (mapped file, heap array) to a new device buffer, through the pinned staging buffer. */
    public DeviceBuffer upload(MemorySegment bytes) {
        DeviceBuffer b = alloc(bytes.byteSize());
        for (long off = 0; off < bytes.byteSize(); off += STAGING) {
            long len = Math.min(STAGING, bytes.byteSize() - off);
            copy(bytes.asSlice(off, len), staging);
            current(); // the parallel copy may have moved a virtual caller to another carrier thread
            cuMemcpyHtoD(b.ptr().withByteOffset(off), pinned, len);
        }
        return b;
    }

    /**
     * Pinned host memory of this many bytes (DMA from the device at full speed, no staging copy), valid until close.
     * Through its address, not a ByteBuffer, so it may exceed 2 GiB.
     */
    public MemorySegment pinned(long bytes) {
        current();
        Pointer p = new Pointer();
        cuMemAllocHost(p, Math.max(bytes, 1));
        long address = MemorySegment.ofBuffer(p.getByteBuffer(0, 1)).address();
        synchronized (pinnedEnds) {
            hostAllocations.add(p);
            pinnedEnds.put(address, address + bytes);
        }
        return MemorySegment.ofAddress(address).reinterpret(bytes);
    }

    /**
     * The first out.byteSize() bytes of b into out: straight by DMA when out lies in memory from {@link #pinned},
     * else through the staging buffer.
     */
    public void downloadInto(DeviceBuffer b, MemorySegment out) {
        if (out.byteSize() > b.bytes()) {
            throw new IllegalArgumentException(out.byteSize() + " bytes from a buffer of " + b.bytes());
        }
        if (!isPinned(out)) {
            download(b, out);
            return;
        }
        current();
        for (long off = 0; off < out.byteSize(); off += 1L << 30) { // ByteBuffers end at 2 GiB
            long len = Math.min(1L << 30, out.byteSize() - off);
            cuMemcpyDtoH(Pointer.to(out.asSlice(off, len).asByteBuffer()), b.ptr().withByteOffset(off), len);
        }
    }

    private boolean isPinned(MemorySegment seg) {
        if (!seg.isNative()) {
            return false;
        }
        synchronized (pinnedEnds) {
            var e = pinnedEnds.floorEntry(seg.address());
            return e != null && seg.address() + seg.byteSize() <= e.getValue();
        }
    }

    public float[] download(DeviceBuffer b, int count) {
        float[] out = new float[count];
        download(b, MemorySegment.ofArray(out));
        return out;
    }

    public byte[] downloadBytes(DeviceBuffer b, int count) {
        byte[] out = new byte[count];
        download(b, MemorySegment.ofArray(out));
        return out;
    }

    private void download(DeviceBuffer b, MemorySegment out) {
        current();
        for (long off = 0; off < out.byteSize(); off += STAGING) {
            long len = Math.min(STAGING, out.byteSize() - off);
            cuMemcpyDtoH(pinned, b.ptr().withByteOffset(off), len);
            copy(staging.asSlice(0, len), out.asSlice(off, len));
        }
    }

    /** src to dst (same size or larger) in parallel pieces: page faults of mapped files and copies on all cores. */
    private static void copy(MemorySegment src, MemorySegment dst) {
        long n = src.byteSize();
        IntStream.range(0, (int) ((n + PIECE - 1) / PIECE)).parallel().forEach(i -> {
            long off = i * PIECE;
            MemorySegment.copy(src, off, dst, off, Math.min(PIECE, n - off));
        });
    }

    public void zero(DeviceBuffer b) {
        current();
        cuMemsetD32(b.ptr(), 0, (b.bytes() + 3) / 4);
    }

    /**
     * Queues kernel {@code fn} on the default stream, behind everything before it; copies to the host wait for it
     * (and report its errors). args are built with {@link Args}.
     */
    void launch(String fn, int gx, int gy, int gz, int threads, Args args) {
        current();
        CUfunction f = functions.computeIfAbsent(fn, n -> {
            CUfunction k = new CUfunction();
            cuModuleGetFunction(k, module, n);
            return k;
        });
        cuLaunchKernel(f, gx, gy, gz, threads, 1, 1, 0, null, args.pointer(), null);
    }

    private void current() {
        cuCtxSetCurrent(context);
    }

    @Override
    public void close() {
        trim();
        cuMemFreeHost(pinned);
        synchronized (pinnedEnds) {
            hostAllocations.forEach(JCudaDriver::cuMemFreeHost);
            hostAllocations.clear();
            pinnedEnds.clear();
        }
        cuModuleUnload(module);
        cuDevicePrimaryCtxRelease(device);
    }

    /** A kernel's parameters in order; a null buffer passes a null pointer. */
    static final class Args {
        private final java.util.List<NativePointerObject> params = new java.util.ArrayList<>();

        Args buf(DeviceBuffer b) {
            params.add(Pointer.to(b == null ? new CUdeviceptr() : b.ptr()));
            return this;
        }

        /** A pointer byteOffset bytes into b. */
        Args buf(DeviceBuffer b, long byteOffset) {
            if (byteOffset < 0 || byteOffset > b.bytes()) {
                throw new IllegalArgumentException("offset " + byteOffset + " outside a buffer of " + b.bytes() + " bytes");
            }
            params.add(Pointer.to(b.ptr().withByteOffset(byteOffset)));
            return this;
        }

        Args i(int v) {
            params.add(Pointer.to(new int[] {v}));
            return this;
        }

        Args l(long v) {
            params.add(Pointer.to(new long[] {v}));
            return this;
        }

        Args d(double v) {
            params.add(Pointer.to(new double[] {v}));
            return this;
        }

        Args f(float v) {
            params.add(Pointer.to(new float[] {v}));
            return this;
        }

        Pointer pointer() {
            return Pointer.to(params.toArray(NativePointerObject[]::new));
        }
    }
}
