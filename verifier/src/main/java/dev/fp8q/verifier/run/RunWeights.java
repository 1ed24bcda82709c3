package dev.fp8q.verifier.run;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.math.Attention;
import dev.fp8q.verifier.math.Mat;

/**
 * The weights one run computes with (the source's for the reference, the FP8 checkpoint's as a runtime sees them)
 * and where it computes: the CPU by default, the GPU for {@link dev.fp8q.verifier.cuda.CudaRunWeights}.
 */
public interface RunWeights {

    /** A tensor's values (norm weights, modulation, biases, embeddings). */
    float[] tensor(String name) throws FormatException;

    boolean has(String name);

    /** y = x Wᵀ + b for the Linear module {@code base} (its ".weight" and optional ".bias"); x is [rows, in]. */
    float[] linear(String base, float[] x, int rows) throws FormatException;

    /** Multi-head attention without masks: q [queries, dim], k and v [keys, dim]; see {@link Attention}. */
    default float[] attend(float[] q, int queries, float[] k, float[] v, int keys, int dim, int heads) {
        Linear.count(4L * queries * keys * dim);
        return Attention.forward(Mat.of(q, queries, dim), Mat.of(k, keys, dim), Mat.of(v, keys, dim), heads).data();
    }
}
