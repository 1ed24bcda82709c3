package dev.fp8q.verifier.cuda;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.math.Rope;
import dev.fp8q.verifier.run.Linear;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.wan.BlockMath;
import java.util.ArrayList;
import java.util.List;

/**
 * The block's ops on the GPU: activations stay in device memory for the whole forward pass. Linears of a
 * {@link CudaRunWeights} run there on the device input; any other run's Linears (the reference run's probes)
 * go through the host. Every buffer made during a pass is freed by {@link #close()}.
 */
public final class CudaBlockMath implements BlockMath<DeviceBuffer> {

    private final CudaKernels k;
    private final CudaDevice gpu;
    private final int[] ropeWidths;
    private final List<DeviceBuffer> live = new ArrayList<>();

    public CudaBlockMath(CudaKernels kernels, int headDim) {
        this.k = kernels;
        this.gpu = kernels.device();
        int[] pairs = new Rope(headDim).pairsPerPart();
        this.ropeWidths = new int[] {2 * pairs[0], 2 * pairs[1], 2 * pairs[2]};
    }

    private DeviceBuffer track(DeviceBuffer b) {
        live.add(b);
        return b;
    }

    /** Small host vectors (norm weights, modulation) for one call. */
    private DeviceBuffer vector(float[] v) {
        return v == null ? null : track(gpu.upload(v));
    }

    @Override
    public DeviceBuffer input(float[] x) {
        return track(gpu.upload(x));
    }

    @Override
    public float[] output(DeviceBuffer x) {
        return gpu.download(x, (int) (x.bytes() / 4));
    }

    @Override
    public DeviceBuffer layerNorm(DeviceBuffer x, int rows, int dim, float eps, float[] weight, float[] bias) {
        DeviceBuffer out = track(gpu.alloc((long) rows * dim * 4));
        k.layerNorm(x, out, rows, dim, eps, vector(weight), vector(bias));
        return out;
    }

    @Override
    public void modulate(DeviceBuffer h, int rows, int dim, float[] scale, float[] shift, boolean perToken) {
        k.modulate(h, (long) rows * dim, dim, vector(scale), vector(shift), perToken);
    }

    @Override
    public void gatedAdd(DeviceBuffer x, DeviceBuffer y, int rows, int dim, float[] gate, boolean perToken) {
        k.gatedAdd(x, y, (long) rows * dim, dim, vector(gate), perToken);
    }

    @Override
    public void rmsNorm(DeviceBuffer x, int rows, int dim, float eps, float[] weight) {
        k.rmsNorm(x, rows, dim, eps, vector(weight));
    }

    @Override
    public void rope(DeviceBuffer x, int frames, int height, int width, int dim) {
        k.rope(x, frames * height * width, height, width, dim, ropeWidths);
    }

    @Override
    public void geluTanh(DeviceBuffer x) {
        k.geluTanh(x, x.bytes() / 4);
    }

    @Override
    public DeviceBuffer linear(RunWeights w, String base, DeviceBuffer x, int rows) throws FormatException {
        if (w instanceof CudaRunWeights c) {
            return track(c.linear(base, x, rows));
        }
        return input(w.linear(base, output(x), rows));
    }

    @Override
    public DeviceBuffer attend(RunWeights w, DeviceBuffer q, int queries, DeviceBuffer kk, DeviceBuffer v, int keys,
            int dim, int heads) {
        Linear.count(4L * queries * keys * dim);
        DeviceBuffer out = track(gpu.alloc((long) queries * dim * 4));
        k.attention(q, queries, kk, v, keys, dim, heads, out);
        return out;
    }

    @Override
    public void close() {
        live.forEach(DeviceBuffer::close);
        live.clear();
    }
}
