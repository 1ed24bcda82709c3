package dev.fp8q.verifier.run;

import dev.fp8q.formats.FormatException;

/** The weights one run computes with: the source's (reference) or the FP8 checkpoint's, as a runtime sees them. */
public interface RunWeights {

    /** A tensor's values (norm weights, modulation, biases, embeddings). */
    float[] tensor(String name) throws FormatException;

    boolean has(String name);

    /** y = x Wᵀ + b for the Linear module {@code base} (its ".weight" and optional ".bias"); x is [rows, in]. */
    float[] linear(String base, float[] x, int rows) throws FormatException;
}
