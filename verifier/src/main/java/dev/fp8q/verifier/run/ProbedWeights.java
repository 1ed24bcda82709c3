package dev.fp8q.verifier.run;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.metrics.ErrorMetrics;
import java.util.ArrayList;
import java.util.List;

/**
 * The reference run, which also feeds each FP8 Linear's reference input through the FP8 weight (weight-only,
 * W8A8 and, on the GPU, W8A8's float32 simulation): the per-layer error free of the errors of the layers before it.
 */
public final class ProbedWeights implements LinearsOver {

    /**
     * One Linear's error on the reference input; w8a8Simulated is null where W8A8 itself is the simulation (CPU);
     * w8a8Static (with the fraction of its input that saturated) only when the checkpoint has the layer's input_scale.
     */
    public record Probe(String layer, ErrorMetrics weightOnly, ErrorMetrics w8a8, ErrorMetrics w8a8Simulated,
            ErrorMetrics w8a8Static, Double clipped) {}

    /**
     * The FP8 ways of one Linear on an input: {weight-only, W8A8[, W8A8 simulated or null[, W8A8 static]]}, or null
     * when it is not FP8.
     */
    @FunctionalInterface
    public interface Prober {
        float[][] fp8Ways(String base, float[] x, int rows) throws FormatException;
    }

    private final RunWeights reference;
    private final Prober prober;
    private final List<Probe> probes = new ArrayList<>();

    public ProbedWeights(RunWeights reference, Prober prober) {
        this.reference = reference;
        this.prober = prober;
    }

    /** The CPU's prober: the checkpoint's FP8 Linears both ways. */
    public static Prober cpu(Fp8Weights fp8) {
        return (base, x, rows) -> fp8.quantized(base) ? fp8.bothWays(base, x, rows) : null;
    }

    /** A prober with the static run added where the Linear has an input_scale (static null: none in the checkpoint). */
    public static Prober withStatic(Prober prober, Fp8Weights staticRun) {
        if (staticRun == null) {
            return prober;
        }
        return (base, x, rows) -> {
            float[][] ways = prober.fp8Ways(base, x, rows);
            if (ways == null) {
                return ways;
            }
            float[] y = staticRun.linear(base, x, rows);
            Double clipped = staticRun.clipped(base);
            return clipped == null ? ways : new float[][] {ways[0], ways[1], ways.length > 2 ? ways[2] : null, y,
                    {clipped.floatValue()}};
        };
    }

    @Override
    public RunWeights reference() {
        return reference;
    }

    @Override
    public float[] linear(String base, float[] x, int rows) throws FormatException {
        float[] y = reference.linear(base, x, rows);
        probe(base, y, prober.fp8Ways(base, x, rows));
        return y;
    }

    /** Records a Linear's FP8 outputs (from {@link Prober#fp8Ways}; null: not FP8) against its reference output. */
    public void probe(String base, float[] reference, float[][] ways) {
        if (ways != null) {
            probes.add(new Probe(base, ErrorMetrics.of(reference, ways[0]), ErrorMetrics.of(reference, ways[1]),
                    ways.length > 2 && ways[2] != null ? ErrorMetrics.of(reference, ways[2]) : null,
                    ways.length > 3 ? ErrorMetrics.of(reference, ways[3]) : null,
                    ways.length > 4 ? (double) ways[4][0] : null));
        }
    }

    /** The probes recorded since the last call, in the order the layers ran. */
    public List<Probe> drain() {
        List<Probe> out = List.copyOf(probes);
        probes.clear();
        return out;
    }
}
