package dev.fp8q.verifier.wan;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.math.Ops;
import dev.fp8q.verifier.math.Rope;
import dev.fp8q.verifier.run.RunWeights;

/** The block's ops in float32 on the heap ({@link Ops}): the definition the GPU's are compared with. */
public final class CpuBlockMath implements BlockMath<float[]> {

    private final Rope rope;

    public CpuBlockMath(int headDim) {
        this.rope = new Rope(headDim);
    }

    @Override
    public float[] input(float[] x) {
        return x.clone();
    }

    @Override
    public float[] output(float[] x) {
        return x;
    }

    @Override
    public float[] layerNorm(float[] x, int rows, int dim, float eps, float[] weight, float[] bias) {
        return Ops.layerNorm(x, rows, dim, eps, weight, bias);
    }

    @Override
    public void modulate(float[] h, int rows, int dim, float[] scale, float[] shift, boolean perToken) {
        for (int t = 0; t < rows; t++) {
            int eo = perToken ? t * dim : 0;
            for (int i = 0, o = t * dim; i < dim; i++) {
                h[o + i] = h[o + i] * (1 + scale[eo + i]) + shift[eo + i];
            }
        }
    }

    @Override
    public void gatedAdd(float[] x, float[] y, int rows, int dim, float[] gate, boolean perToken) {
        for (int t = 0; t < rows; t++) {
            int eo = perToken ? t * dim : 0;
            for (int i = 0, o = t * dim; i < dim; i++) {
                x[o + i] += gate == null ? y[o + i] : y[o + i] * gate[eo + i];
            }
        }
    }

    @Override
    public void rmsNorm(float[] x, int rows, int dim, float eps, float[] weight) {
        Ops.rmsNorm(x, rows, dim, eps, weight);
    }

    @Override
    public void rope(float[] x, int frames, int height, int width, int dim) {
        rope.apply(x, frames, height, width, dim);
    }

    @Override
    public void geluTanh(float[] x) {
        Ops.geluTanh(x);
    }

    @Override
    public float[] linear(RunWeights w, String base, float[] x, int rows) throws FormatException {
        return w.linear(base, x, rows);
    }

    @Override
    public float[] attend(RunWeights w, float[] q, int queries, float[] k, float[] v, int keys, int dim, int heads) {
        return w.attend(q, queries, k, v, keys, dim, heads);
    }

    @Override
    public void close() {}
}
