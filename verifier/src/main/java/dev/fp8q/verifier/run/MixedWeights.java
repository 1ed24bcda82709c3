package dev.fp8q.verifier.run;

import dev.fp8q.formats.FormatException;
import java.util.Set;

/**
 * Some Linears as one run computes them, the reference's everything else: the model as if just those layers were
 * converted (sensitivity: one layer; plan: a preset's or a budget's set).
 */
public record MixedWeights(RunWeights reference, RunWeights fp8, Set<String> layers) implements LinearsOver {

    @Override
    public float[] linear(String base, float[] x, int rows) throws FormatException {
        return (layers.contains(base) ? fp8 : reference).linear(base, x, rows);
    }
}
