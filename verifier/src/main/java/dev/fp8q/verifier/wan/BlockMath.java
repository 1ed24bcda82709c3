package dev.fp8q.verifier.wan;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.run.RunWeights;

/**
 * Where a block's activations live and how its ops run on them: {@link CpuBlockMath} (float[] on the heap) or
 * the GPU's (device buffers). Matrices are row-major [rows, cols]; ops named "in place" change their first
 * argument. Vectors given as float[] (norm weights, modulation) are [cols], or [rows, cols] when perToken.
 */
public interface BlockMath<A> extends AutoCloseable {

    /** A copy of host values as an activation. */
    A input(float[] x);

    float[] output(A x);

    A layerNorm(A x, int rows, int dim, float eps, float[] weight, float[] bias);

    /** In place: h * (1 + scale) + shift. */
    void modulate(A h, int rows, int dim, float[] scale, float[] shift, boolean perToken);

    /** In place: x += y * gate, or x += y when gate is null. */
    void gatedAdd(A x, A y, int rows, int dim, float[] gate, boolean perToken);

    /** In place. */
    void rmsNorm(A x, int rows, int dim, float eps, float[] weight);

    /** In place: Wan's 3D RoPE over the token grid F x H x W. */
    void rope(A x, int frames, int height, int width, int dim);

    /** In place. */
    void geluTanh(A x);

    A linear(RunWeights w, String base, A x, int rows) throws FormatException;

    A attend(RunWeights w, A q, int queries, A k, A v, int keys, int dim, int heads);

    /** Frees what this forward pass allocated (device memory); the math can be used again. */
    @Override
    void close();
}
