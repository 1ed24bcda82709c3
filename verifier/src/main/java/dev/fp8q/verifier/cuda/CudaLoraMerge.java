package dev.fp8q.verifier.cuda;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.lora.DeltaMerger;
import dev.fp8q.formats.lora.LoraMerge;
import dev.fp8q.formats.lora.MergeDevice;
import dev.fp8q.verifier.cuda.CudaDevice.Args;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;

/**
 * LoRA merges on the GPU in float64 with fp8q.cu's merge kernels, which repeat {@link DeltaMerger}'s operations in
 * its order (each sum over the rank by FMA from +0, then a rounded product and a rounded sum, one rounding to
 * float32 at the end), so the values are the CPU's bit for bit. The target and its factors go up in their own dtype
 * and are widened there; float32 comes back by DMA into pinned memory. All CUDA calls run on one platform thread
 * of its own: a context is current per OS thread, and callers may be virtual threads that change carriers.
 */
public final class CudaLoraMerge implements MergeDevice {

    public static final List<String> KERNELS = List.of("widen_f64", "dense_add_f64", "lowrank_add_f64", "f64_to_f32");
    private static final int TILE = 64;
    /** lowrank_add_f64's CTA: 16 x 16 threads of 4 x 4 values (its __launch_bounds__). */
    private static final int TILE_THREADS = 256;
    private static final int MAX_GRID_Y = 65535;

    private final CudaDevice gpu;
    private final ExecutorService thread;

    private CudaLoraMerge(CudaDevice gpu, ExecutorService thread) {
        this.gpu = gpu;
        this.thread = thread;
    }

    /** The first GPU (as {@link CudaDevice#open}), its CUDA calls on a thread of their own. */
    public static CudaLoraMerge open() throws GpuUnavailableException {
        ExecutorService thread = Executors.newSingleThreadExecutor(r -> {
            Thread t = new Thread(r, "fp8q-cuda-merge");
            t.setDaemon(true);
            return t;
        });
        CudaLoraMerge merge;
        try {
            merge = new CudaLoraMerge(thread.submit(CudaDevice::open).get(), thread);
        } catch (ExecutionException e) {
            thread.shutdownNow();
            if (e.getCause() instanceof GpuUnavailableException g) {
                throw g;
            }
            throw new GpuUnavailableException("the GPU did not open (" + e.getCause() + ")", true);
        } catch (InterruptedException e) {
            thread.shutdownNow();
            Thread.currentThread().interrupt();
            throw new GpuUnavailableException("interrupted while opening the GPU");
        }
        List<String> failures = merge.selfCheck();
        if (!failures.isEmpty()) {
            merge.close();
            throw new GpuUnavailableException(merge.describe() + " merges unlike the CPU (" + failures.getFirst() + ")", true);
        }
        return merge;
    }

    /**
     * Small merges on the GPU against {@link DeltaMerger}, every float32 bit: shapes across the 64 x 64 tiles and the
     * 16-deep rank steps (rows, columns and rank off their multiples, a 1-D tensor), each dtype the kernels widen, two
     * LoRAs and a full diff on one target, values over 40 binades. Empty when all agree, else what differed.
     */
    public List<String> selfCheck() {
        int[][] shapes = {{7, 13, 3}, {64, 64, 16}, {130, 70, 17}, {1, 300, 4}, {257, 129, 33}};
        DType[] dtypes = {DType.BF16, DType.F16, DType.F32};
        List<String> failures = new ArrayList<>();
        int round = 0;
        try (Arena arena = Arena.ofShared()) { // uploads copy on the common pool
            for (int[] sh : shapes) {
                for (DType w : dtypes) {
                    SplittableRandom rnd = new SplittableRandom(++round);
                    int rows = sh[0];
                    int cols = sh[1];
                    int r = sh[2];
                    DType other = dtypes[round % 3];
                    Checkpoint.Tensor target = random(arena, w, rows == 1 ? new long[] {cols} : new long[] {rows, cols}, rnd);
                    List<LoraMerge.Delta> deltas = List.of(
                            new LoraMerge.LowRank("a", 0.37, random(arena, other, new long[] {rows, r}, rnd),
                                    random(arena, w, new long[] {r, cols}, rnd), r),
                            new LoraMerge.Full("d", -1.3, random(arena, other, new long[] {rows, cols}, rnd)),
                            new LoraMerge.LowRank("b", -2.5, random(arena, DType.F32, new long[] {rows, 2}, rnd),
                                    random(arena, other, new long[] {2, cols}, rnd), 2));
                    MemorySegment got = arena.allocate(4L * rows * cols);
                    float32(target, deltas, got);
                    double[] cpu = new double[rows * cols];
                    new DeltaMerger(target, deltas).merge(0, rows, cpu);
                    for (int i = 0; i < cpu.length; i++) {
                        float g = got.getAtIndex(Elements.FLOAT, i);
                        if (Float.floatToIntBits(g) != Float.floatToIntBits((float) cpu[i])) {
                            failures.add(rows + "x" + cols + " rank " + r + " " + w + ": element " + i + " is " + g
                                    + ", the CPU's " + (float) cpu[i]);
                            break;
                        }
                    }
                }
            }
        }
        return failures;
    }

    /** Gaussian values scaled by 2^-20 .. 2^20, in dtype (F16 clamped to its range). */
    private static Checkpoint.Tensor random(Arena arena, DType dtype, long[] shape, SplittableRandom rnd) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        MemorySegment data = arena.allocate(n * (dtype.bits() / 8), 8);
        for (long i = 0; i < n; i++) {
            double v = rnd.nextGaussian() * Math.scalb(1.0, rnd.nextInt(-20, 21));
            switch (dtype) {
                case BF16 -> data.setAtIndex(Elements.SHORT, i, (short) (Float.floatToRawIntBits((float) v) >>> 16));
                case F16 -> data.setAtIndex(Elements.SHORT, i, Float.floatToFloat16((float) Math.clamp(v, -6e4, 6e4)));
                default -> data.setAtIndex(Elements.FLOAT, i, (float) v);
            }
        }
        return Checkpoint.Tensor.inMemory("t", dtype, shape, data);
    }

    @Override
    public String describe() {
        return gpu.describe();
    }

    /** The dtype codes of fp8q.cu's wide(): BF16 0, F16 1, F32 2; -1 for any other. */
    static int code(DType t) {
        return switch (t) {
            case BF16 -> 0;
            case F16 -> 1;
            case F32 -> 2;
            default -> -1;
        };
    }

    @Override
    public boolean takes(Checkpoint.Tensor target, List<LoraMerge.Delta> deltas) {
        long rows = DeltaMerger.rows(target.entry());
        long n = target.entry().numel();
        if (code(target.entry().dtype()) < 0 || n == 0 || (rows + TILE - 1) / TILE > MAX_GRID_Y
                || n / Math.max(1, rows) > Integer.MAX_VALUE) {
            return false;
        }
        for (LoraMerge.Delta d : deltas) {
            boolean ok = switch (d) {
                case LoraMerge.LowRank lr -> code(lr.up().entry().dtype()) >= 0 && code(lr.down().entry().dtype()) >= 0
                        && lr.up().entry().numel() == rows * lr.rank() && lr.down().entry().numel() * rows == n * lr.rank();
                case LoraMerge.Full f -> code(f.diff().entry().dtype()) >= 0 && f.diff().entry().numel() == n;
            };
            if (!ok) {
                return false;
            }
        }
        return true;
    }

    @Override
    public MemorySegment allocate(long bytes) {
        return onThread(() -> gpu.pinned(bytes));
    }

    @Override
    public void float32(Checkpoint.Tensor target, List<LoraMerge.Delta> deltas, MemorySegment out) {
        if (!takes(target, deltas)) {
            throw new IllegalArgumentException(target.name() + ": not a target the GPU merges");
        }
        long n = target.entry().numel();
        if (out.byteSize() < 4 * n) {
            throw new IllegalArgumentException(target.name() + ": " + out.byteSize() + " bytes for " + n + " float32 values");
        }
        onThread(() -> {
            merge(target, deltas, out.asSlice(0, 4 * n));
            return null;
        });
    }

    private void merge(Checkpoint.Tensor target, List<LoraMerge.Delta> deltas, MemorySegment out) {
        long n = target.entry().numel();
        int rows = (int) DeltaMerger.rows(target.entry());
        int cols = (int) (n / rows);
        List<DeviceBuffer> held = new ArrayList<>();
        try {
            DeviceBuffer acc = hold(held, gpu.alloc(8 * n));
            widen(hold(held, gpu.upload(target.data())), target.entry().dtype(), n, acc);
            for (LoraMerge.Delta d : deltas) {
                switch (d) {
                    case LoraMerge.LowRank lr -> {
                        DeviceBuffer up = wide(held, lr.up());
                        DeviceBuffer down = wide(held, lr.down());
                        gpu.launch("lowrank_add_f64", (cols + TILE - 1) / TILE, (rows + TILE - 1) / TILE, 1, TILE_THREADS,
                                new Args().buf(acc).buf(up).buf(down).i(rows).i(cols).i(lr.rank()).d(lr.scale()));
                    }
                    case LoraMerge.Full f -> gpu.launch("dense_add_f64", CudaKernels.grid(n), 1, 1, CudaKernels.THREADS, new Args().buf(acc)
                            .buf(hold(held, gpu.upload(f.diff().data()))).i(code(f.diff().entry().dtype())).l(n).d(f.strength()));
                }
            }
            DeviceBuffer f32 = hold(held, gpu.alloc(4 * n));
            gpu.launch("f64_to_f32", CudaKernels.grid(n), 1, 1, CudaKernels.THREADS, new Args().buf(acc).l(n).buf(f32));
            gpu.downloadInto(f32, out);
        } finally {
            held.forEach(DeviceBuffer::close);
        }
    }

    private DeviceBuffer wide(List<DeviceBuffer> held, Checkpoint.Tensor t) {
        long n = t.entry().numel();
        DeviceBuffer out = hold(held, gpu.alloc(8 * n));
        widen(hold(held, gpu.upload(t.data())), t.entry().dtype(), n, out);
        return out;
    }

    private void widen(DeviceBuffer raw, DType dtype, long n, DeviceBuffer out) {
        gpu.launch("widen_f64", CudaKernels.grid(n), 1, 1, CudaKernels.THREADS, new Args().buf(raw).i(code(dtype)).l(n).buf(out));
    }

    private static DeviceBuffer hold(List<DeviceBuffer> held, DeviceBuffer b) {
        held.add(b);
        return b;
    }

    private interface Call<T> {
        T run() throws Exception;
    }

    private <T> T onThread(Call<T> call) {
        try {
            return thread.submit(call::run).get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException r) {
                throw r;
            }
            if (e.getCause() instanceof Error err) {
                throw err;
            }
            throw new IllegalStateException(e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while the GPU merged", e);
        }
    }

    @Override
    public void close() {
        try {
            onThread(() -> {
                gpu.close();
                return null;
            });
        } finally {
            thread.shutdownNow();
        }
    }
}
