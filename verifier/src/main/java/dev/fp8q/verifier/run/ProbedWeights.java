package dev.fp8q.verifier.run;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.metrics.ErrorMetrics;
import java.util.ArrayList;
import java.util.List;

/**
 * The reference run, which also feeds each FP8 Linear's reference input through the FP8 weight both ways
 * (weight-only, W8A8): the per-layer error free of the errors of the layers before it.
 */
public final class ProbedWeights implements RunWeights {

    /** One Linear's error on the reference input. */
    public record Probe(String layer, ErrorMetrics weightOnly, ErrorMetrics w8a8) {}

    private final RunWeights reference;
    private final Fp8Weights fp8;
    private final List<Probe> probes = new ArrayList<>();

    public ProbedWeights(RunWeights reference, Fp8Weights fp8) {
        this.reference = reference;
        this.fp8 = fp8;
    }

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
        float[] y = reference.linear(base, x, rows);
        if (fp8.quantized(base)) {
            float[][] both = fp8.bothWays(base, x, rows);
            probes.add(new Probe(base, ErrorMetrics.of(y, both[0]), ErrorMetrics.of(y, both[1])));
        }
        return y;
    }

    /** The probes recorded since the last call, in the order the layers ran. */
    public List<Probe> drain() {
        List<Probe> out = List.copyOf(probes);
        probes.clear();
        return out;
    }
}
