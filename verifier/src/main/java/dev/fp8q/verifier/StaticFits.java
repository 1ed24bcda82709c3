package dev.fp8q.verifier;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.metrics.ErrorMetrics;
import dev.fp8q.verifier.run.LinearsOver;
import dev.fp8q.verifier.run.ProbedWeights;
import dev.fp8q.verifier.run.RunWeights;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * verify --whole's "static scales" section: how well one static input_scale fits a diffusion model, whose
 * activations change with the timestep. The chained reference run goes through {@link #weights()}: per FP8 Linear
 * with an input_scale and per input (timestep, seed), its input's amax and its error on that reference input under
 * dynamic W8A8 and under w8a8_static (the block reruns' probes). Per Linear: the amax spread across timesteps (max /
 * min of the per-timestep amax; the calibration's, from the manifest, when it recorded them) and the dB static loses
 * against dynamic at the input where it loses most.
 */
final class StaticFits {

    /** The worst input of one Linear so far. */
    private record Worst(String input, double dynamicDb, double staticDb, Double clipped) {
        double lost() {
            return dynamicDb - staticDb;
        }
    }

    private final ProbedWeights probed;
    private final Map<String, Map<String, Float>> amax = new LinkedHashMap<>();
    private final Map<String, Worst> worst = new LinkedHashMap<>();
    private final RunWeights recording;
    private String timestep = "";
    private String input = "";

    StaticFits(RunWeights reference, ProbedWeights.Prober prober) {
        this.probed = new ProbedWeights(reference, prober);
        this.recording = new LinearsOver() { // tensors and attention from the probed run
            @Override
            public RunWeights reference() {
                return probed;
            }

            @Override
            public float[] linear(String base, float[] x, int rows) throws FormatException {
                float[] y = probed.linear(base, x, rows);
                float m = 0;
                for (float v : x) {
                    m = Math.max(m, Math.abs(v));
                }
                float a = m;
                amax.computeIfAbsent(base, k -> new LinkedHashMap<>()).merge(timestep, a, Math::max);
                drain();
                return y;
            }
        };
    }

    /** The reference weights that record: the chained reference run computes with these. */
    RunWeights weights() {
        return recording;
    }

    /** The input the next forward runs: its timestep (0..1000) and its description (timestep and seed). */
    void input(double t, String description) {
        timestep = "t=" + Math.round(t);
        input = description;
    }

    private void drain() {
        for (ProbedWeights.Probe p : probed.drain()) {
            if (p.w8a8Static() == null) {
                amax.remove(p.layer()); // no input_scale: not a static Linear
                continue;
            }
            ErrorMetrics dynamic = p.w8a8Simulated() != null ? p.w8a8Simulated() : p.w8a8();
            Worst w = new Worst(input, dynamic.sqnrDb(), p.w8a8Static().sqnrDb(), p.clipped());
            Worst old = worst.get(p.layer());
            if (old == null || w.lost() > old.lost() || Double.isNaN(old.lost()) && !Double.isNaN(w.lost())) {
                worst.put(p.layer(), w);
            }
        }
    }

    /**
     * One row per static Linear. calibrated: the manifest's settings.calibration.layers entry of this component
     * (layer -> {amax_per_timestep, ...}), or null.
     */
    List<VerifyReport.StaticScale> result(String component, Map<?, ?> calibrated) {
        List<VerifyReport.StaticScale> out = new ArrayList<>();
        for (Map.Entry<String, Worst> e : worst.entrySet()) {
            String layer = e.getKey();
            Map<String, Float> perStep = new TreeMap<>(amax.getOrDefault(layer, Map.of()));
            String from = "measured";
            if (calibrated != null && calibrated.get(layer) instanceof Map<?, ?> rec
                    && rec.get("amax_per_timestep") instanceof Map<?, ?> steps && !steps.isEmpty()) {
                perStep = new TreeMap<>();
                for (Map.Entry<?, ?> s : steps.entrySet()) {
                    perStep.put(String.valueOf(s.getKey()), ((Number) s.getValue()).floatValue());
                }
                from = "calibration";
            }
            double min = perStep.values().stream().mapToDouble(Float::doubleValue).min().orElse(0);
            double max = perStep.values().stream().mapToDouble(Float::doubleValue).max().orElse(0);
            Worst w = e.getValue();
            out.add(new VerifyReport.StaticScale(component, layer, min > 0 ? max / min : null, from, perStep, w.input(),
                    w.dynamicDb(), w.staticDb(), w.lost(), w.clipped()));
        }
        return out;
    }
}
