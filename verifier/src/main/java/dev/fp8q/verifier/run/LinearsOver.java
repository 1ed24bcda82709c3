package dev.fp8q.verifier.run;

import dev.fp8q.formats.FormatException;

/**
 * A run that changes or watches some Linears of another run and takes everything else from it: its tensors, and
 * its attention (on the CPU or the GPU, as that run computes it).
 */
public interface LinearsOver extends RunWeights {

    /** The run everything but the Linears comes from. */
    RunWeights reference();

    @Override
    default float[] tensor(String name) throws FormatException {
        return reference().tensor(name);
    }

    @Override
    default boolean has(String name) {
        return reference().has(name);
    }

    @Override
    default float[] attend(float[] q, int queries, float[] k, float[] v, int keys, int dim, int heads) {
        return reference().attend(q, queries, k, v, keys, dim, heads);
    }
}
