package dev.fp8q.verifier.cuda;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.run.Linear;
import dev.fp8q.verifier.weights.Fp8Checkpoint;
import dev.fp8q.verifier.weights.ScaleGrid;
import dev.fp8q.verifier.weights.TensorValues;
import java.util.HashMap;
import java.util.Map;

/**
 * Linear layers on the GPU, four ways: the reference (source weights and activations in BF16, tensor cores),
 * weight-only (FP8 codes widened exactly to BF16, the weight scale in the epilogue), W8A8 (activations
 * quantized on the GPU with a dynamic per-tensor scale, E4M3 x E4M3 on FP8 tensor cores) and the float32
 * simulation of that W8A8 (both operands dequantized, CUDA-core FMA): the last is what the CPU computes.
 * Weights are copied from the mapped files once and kept until {@link #release()} (the end of a block).
 */
public final class CudaLinears implements AutoCloseable {

    public enum Way { REFERENCE, WEIGHT_ONLY, W8A8, W8A8_SIMULATED }

    private final CudaKernels k;
    private final Checkpoint source;
    private final Fp8Checkpoint fp8;
    private final Map<String, DeviceBuffer> cache = new HashMap<>();

    public CudaLinears(CudaKernels kernels, Checkpoint source, Fp8Checkpoint fp8) {
        this.k = kernels;
        this.source = source;
        this.fp8 = fp8;
    }

    public CudaDevice device() {
        return k.device();
    }

    public CudaKernels kernels() {
        return k;
    }

    /**
     * True when the GPU computes this Linear: rows of 16 bytes for the tensor cores and, for an FP8 weight,
     * per-tensor or per-channel scales (block and MX scales need the scale inside the K loop: those stay on the CPU).
     */
    public boolean supports(String base) throws FormatException {
        String weight = base + ".weight";
        Checkpoint.Tensor w = fp8.require(weight);
        long in = w.entry().numel() / Math.max(1, w.entry().dim(0));
        if (in % 16 != 0) {
            return false;
        }
        if (!fp8.isFp8(weight)) {
            return true;
        }
        ScaleGrid.Granularity g = fp8.scales(weight).granularity();
        return g == ScaleGrid.Granularity.TENSOR || g == ScaleGrid.Granularity.CHANNEL;
    }

    /** y = x Wᵀ + b, x [rows, in], the given way. */
    public float[] apply(Way way, String base, float[] x, int rows) throws FormatException {
        CudaDevice gpu = k.device();
        try (DeviceBuffer xd = gpu.upload(x); DeviceBuffer y = apply(way, base, xd, rows)) {
            return gpu.download(y, (int) (y.bytes() / 4));
        }
    }

    /** The same on an input already on the device; the caller closes the result. */
    public DeviceBuffer apply(Way way, String base, DeviceBuffer xd, int rows) throws FormatException {
        String weight = base + ".weight";
        boolean quantized = way != Way.REFERENCE && fp8.isFp8(weight);
        Checkpoint.Tensor w = way == Way.REFERENCE ? sourceTensor(weight) : fp8.require(weight);
        int out = (int) w.entry().dim(0);
        int in = (int) (w.entry().numel() / out);
        long n = (long) rows * in;
        if (n * 4 != xd.bytes()) {
            throw new IllegalArgumentException("linear " + base + ": input of " + xd.bytes() / 4 + " values is not "
                    + rows + " rows of " + in);
        }
        CudaDevice gpu = k.device();
        Linear.count(2L * rows * in * out);
        String biasName = base + ".bias";
        boolean hasBias = way == Way.REFERENCE ? source.tensor(biasName).isPresent() : fp8.tensor(biasName).isPresent();
        DeviceBuffer b = !hasBias ? null : cached(way == Way.REFERENCE ? "ref:" + biasName : biasName,
                () -> gpu.upload(way == Way.REFERENCE ? TensorValues.of(sourceTensor(biasName))
                        : fp8.values(biasName)));
        DeviceBuffer y = gpu.alloc((long) rows * out * 4);
        try {
            if (!quantized) {
                try (DeviceBuffer xb = bf16(xd, n)) {
                    DeviceBuffer wb = bf16Weight((way == Way.REFERENCE ? "ref:" : "hp:") + weight, w);
                    k.gemmTensorCores(false, xb, wb, y, rows, out, in, 1f, null, null, b);
                }
                return y;
            }
            ScaleGrid grid = fp8.scales(weight);
            boolean perChannel = grid.granularity() == ScaleGrid.Granularity.CHANNEL;
            float alpha = perChannel ? 1f : grid.scales()[0];
            DeviceBuffer colScale = perChannel ? cached("scales:" + weight, () -> gpu.upload(grid.scales())) : null;
            switch (way) {
                case WEIGHT_ONLY -> {
                    DeviceBuffer wb = cached("bf16:" + weight, () -> {
                        DeviceBuffer o = gpu.alloc(w.entry().numel() * 2);
                        k.e4m3ToBf16(codes(weight, w), w.entry().numel(), o);
                        return o;
                    });
                    try (DeviceBuffer xb = bf16(xd, n)) {
                        k.gemmTensorCores(false, xb, wb, y, rows, out, in, alpha, null, colScale, b);
                    }
                }
                case W8A8 -> {
                    DeviceBuffer codes = codes(weight, w);
                    try (DeviceBuffer xs = k.activationScale(xd, n); DeviceBuffer xq = gpu.alloc(n)) {
                        k.quantize(xd, n, xs, xq);
                        k.gemmTensorCores(true, xq, codes, y, rows, out, in, alpha, xs, colScale, b);
                    }
                }
                case W8A8_SIMULATED -> {
                    DeviceBuffer wf = cached("f32:" + weight, () -> {
                        try (DeviceBuffer s = gpu.upload(grid.scales())) {
                            DeviceBuffer o = gpu.alloc(w.entry().numel() * 4);
                            k.e4m3ToF32(codes(weight, w), w.entry().numel(), in, s, perChannel, o);
                            return o;
                        }
                    });
                    try (DeviceBuffer xs = k.activationScale(xd, n); DeviceBuffer xq = gpu.alloc(n);
                            DeviceBuffer xf = gpu.alloc(n * 4L)) {
                        k.quantize(xd, n, xs, xq);
                        k.e4m3ToF32(xq, n, n, xs, false, xf);
                        k.gemmF32(xf, wf, y, rows, out, in, 1f, null, null, b);
                    }
                }
                default -> throw new IllegalStateException(way.name());
            }
            return y;
        } catch (RuntimeException | FormatException e) {
            y.close();
            throw e;
        }
    }

    private Checkpoint.Tensor sourceTensor(String name) throws FormatException {
        return source.tensor(name).orElseThrow(() -> new FormatException(FormatException.Rule.TENSOR_NOT_FOUND,
                source.root(), name, "not in the source checkpoint"));
    }

    /** The FP8 weight's codes on the device, copied from the mapped file once per block. */
    private DeviceBuffer codes(String weight, Checkpoint.Tensor w) throws FormatException {
        return cached("codes:" + weight, () -> k.device().upload(w.data()));
    }

    private DeviceBuffer bf16(DeviceBuffer f32, long n) {
        DeviceBuffer o = k.device().alloc(n * 2);
        k.toBf16(f32, n, o);
        return o;
    }

    /** A high-precision weight as BF16 on the device: BF16 bytes as they are, other dtypes rounded (RNE). */
    private DeviceBuffer bf16Weight(String key, Checkpoint.Tensor w) throws FormatException {
        return cached(key, () -> {
            if (w.entry().dtype() == DType.BF16) {
                return k.device().upload(w.data());
            }
            try (DeviceBuffer f = k.device().upload(TensorValues.of(w))) {
                return bf16(f, w.entry().numel());
            }
        });
    }

    private interface Upload {
        DeviceBuffer get() throws FormatException;
    }

    private DeviceBuffer cached(String key, Upload upload) throws FormatException {
        DeviceBuffer b = cache.get(key);
        if (b == null) {
            b = upload.get();
            cache.put(key, b);
        }
        return b;
    }

    /** Frees the weights copied so far (call after each block). */
    public void release() {
        cache.values().forEach(DeviceBuffer::close);
        cache.clear();
    }

    @Override
    public void close() {
        release();
    }
}
