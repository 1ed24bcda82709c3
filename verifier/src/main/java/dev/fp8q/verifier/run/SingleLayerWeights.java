package dev.fp8q.verifier.run;

import dev.fp8q.formats.FormatException;

/**
 * One run's weights for one Linear only, the reference's everywhere else: the model as if just that layer were
 * converted, which is how sensitivity measures a layer's own share of the end-to-end error.
 */
public record SingleLayerWeights(RunWeights reference, RunWeights fp8, String layer) implements RunWeights {

    @Override
    public float[] tensor(String name) throws FormatException {
        return reference.tensor(name);
    }

    @Override
    public boolean has(String name) {
        return reference.has(name);
    }

    @Override
    public float[] linear(String base, float[] x, int rows) throws FormatException {
        return (base.equals(layer) ? fp8 : reference).linear(base, x, rows);
    }

    @Override
    public float[] attend(float[] q, int queries, float[] k, float[] v, int keys, int dim, int heads) {
        return reference.attend(q, queries, k, v, keys, dim, heads);
    }
}
