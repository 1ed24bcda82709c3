package dev.fp8q.verifier.run;

import dev.fp8q.formats.FormatException;
import java.util.Set;

/**
 * Some Linears as one run computes them, the reference's everything else: the model as if just those layers were
 * converted (sensitivity: one layer; plan: a preset's or a budget's set).
 */
public record MixedWeights(RunWeights reference, RunWeights fp8, Set<String> layers) implements RunWeights {

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
        return (layers.contains(base) ? fp8 : reference).linear(base, x, rows);
    }

    @Override
    public float[] attend(float[] q, int queries, float[] k, float[] v, int keys, int dim, int heads) {
        return reference.attend(q, queries, k, v, keys, dim, heads);
    }
}
