package dev.fp8q.verifier;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.check.Check;
import dev.fp8q.verifier.metrics.ErrorMetrics;
import dev.fp8q.verifier.run.MixedWeights;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.wan.WanBlock;
import dev.fp8q.verifier.wan.WanModel;
import dev.fp8q.verifier.wan.WanNaming;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * verify --whole: the chained forward of the whole Wan model (embeddings, every block in order, the head) for the
 * reference and each FP8 run at several timesteps and seeds. Checks: the model output (the velocity prediction)
 * against its bound, and the drift of the residual stream after each block (reported, bounded only when the user
 * sets a "drift" bound). The runs advance block by block together, so each block's weights are loaded once.
 */
final class WholeModel {

    private WholeModel() {}

    static List<Check> run(String component, WanNaming naming, int dim, int layers, Runs runs,
            java.util.Collection<String> fp8Names, Verifier.Options options, List<String> notes) throws FormatException {
        Verifier.Whole whole = options.whole();
        WanModel.Captured captured = WanModel.captured(whole.latents(), whole.context());
        int[] grid = captured.grid() != null ? captured.grid() : options.grid();
        List<Double> timesteps = whole.timesteps() != null ? whole.timesteps()
                : captured.timestep() != null ? List.of(captured.timestep())
                : defaultTimesteps(component, runs.reference(), naming, dim, notes);
        Map<String, RunWeights> fp8Runs = new LinkedHashMap<>();
        fp8Runs.put("weight_only", runs.weightOnly());
        fp8Runs.put("w8a8", runs.w8a8());
        if (runs.w8a8Simulated() != null) {
            fp8Runs.put("w8a8_simulated", runs.w8a8Simulated());
        }
        if (runs.w8a8Static() != null) {
            fp8Runs.put("w8a8_static", runs.w8a8Static());
        }
        WanBlock block = new WanBlock(naming, dim, Verifier.HEAD_DIM);
        List<Check> checks = new ArrayList<>();
        for (double t : timesteps) {
            for (int s = 0; s < whole.samples(); s++) {
                WanModel.Step step = WanModel.inputs(naming, dim, grid, options.contextTokens(), options.seed() + s, t,
                        runs.reference(), captured.latents(), captured.context());
                if (t == timesteps.getFirst() && s == 0) {
                    step.inputs().notes().forEach(n -> notes.add("whole model: " + n));
                }
                options.log().accept("whole model, " + step.description() + ": " + layers + " blocks, "
                        + (1 + fp8Runs.size()) + " runs");
                float[] ref = step.inputs().x();
                Map<String, float[]> xs = new LinkedHashMap<>();
                fp8Runs.keySet().forEach(r -> xs.put(r, step.inputs().x()));
                for (int b = 0; b < layers; b++) {
                    ref = runs.forward(block, b, WanModel.withX(step.inputs(), ref), runs.reference());
                    for (Map.Entry<String, RunWeights> r : fp8Runs.entrySet()) {
                        float[] x = runs.forward(block, b, WanModel.withX(step.inputs(), xs.get(r.getKey())), r.getValue());
                        xs.put(r.getKey(), x);
                        checks.add(Check.of(component, "drift", b, step.description(), null, r.getKey(),
                                ErrorMetrics.of(ref, x), null, null, null, options.bounds().of("drift", bound(r.getKey()), null)));
                    }
                    runs.endBlock();
                }
                float[] refOut = WanModel.head(naming, dim, ref, step.inputs().tokens(), step.timeEmbedding(), runs.reference());
                for (Map.Entry<String, RunWeights> r : fp8Runs.entrySet()) {
                    float[] out = WanModel.head(naming, dim, xs.get(r.getKey()), step.inputs().tokens(), step.timeEmbedding(),
                            r.getValue());
                    checks.add(Check.of(component, "model_output", null, step.description(), null, r.getKey(),
                            ErrorMetrics.of(refOut, out), null, null, null,
                            options.bounds().of("model_output", bound(r.getKey()), null)));
                }
                runs.endBlock();
            }
        }
        notes.add(String.format(Locale.ROOT, "whole model: %d blocks chained at timesteps %s, %d sample(s) each; grid %dx%dx%d",
                layers, timesteps.stream().map(t -> String.valueOf(Math.round(t))).toList(), whole.samples(), grid[0], grid[1],
                grid[2]));
        if (whole.sensitivity()) {
            checks.addAll(sensitivity(component, naming, dim, layers, runs, fp8Names, captured, grid, options, notes));
        }
        return checks;
    }

    private static String bound(String run) {
        return run.startsWith("w8a8") ? "w8a8" : run;
    }

    /**
     * Three timesteps spread over what the expert serves: Wan 2.2's A14B high-noise expert (high_noise_model/, or
     * diffusers' transformer/) takes t >= boundary, the low-noise one (low_noise_model/, transformer_2/) t < boundary;
     * boundary 0.875 for T2V, 0.9 for I2V (36 input channels); anything else the whole range.
     */
    static List<Double> defaultTimesteps(String component, RunWeights w, WanNaming naming, int dim, List<String> notes)
            throws FormatException {
        int inDim = w.tensor(naming.weight(WanNaming.Param.PATCH, 0)).length / dim / 4;
        double boundary = inDim == 36 ? 900 : 875;
        String c = component.toLowerCase(Locale.ROOT);
        double lo;
        double hi;
        if (c.contains("high_noise") || c.equals("transformer")) {
            lo = boundary;
            hi = 1000;
        } else if (c.contains("low_noise") || c.equals("transformer_2")) {
            lo = 0;
            hi = boundary;
        } else {
            lo = 0;
            hi = 1000;
        }
        notes.add(String.format(Locale.ROOT, "whole model: timesteps spread over [%.0f, %.0f)%s", lo, hi,
                lo == 0 && hi == 1000 ? " (no expert named by the component)" : " (the expert's range, boundary " + boundary / 1000 + ")"));
        List<Double> out = new ArrayList<>();
        for (int k = 1; k <= 3; k++) {
            out.add((double) Math.round(lo + (hi - lo) * k / 4));
        }
        return out;
    }

    /**
     * Each FP8 Linear's own share of the end-to-end error: the chained model with only that layer in FP8 (weight-only
     * and W8A8), restarted from the reference's input to the layer's block, at the first timestep and seed. One
     * "sensitivity" check per layer and run, unbounded, figures against the reference output.
     */
    private static List<Check> sensitivity(String component, WanNaming naming, int dim, int layers, Runs runs,
            java.util.Collection<String> fp8Names, WanModel.Captured captured, int[] grid, Verifier.Options options,
            List<String> notes) throws FormatException {
        Verifier.Whole whole = options.whole();
        double t = whole.timesteps() != null ? whole.timesteps().getFirst()
                : captured.timestep() != null ? captured.timestep()
                : defaultTimesteps(component, runs.reference(), naming, dim, new ArrayList<>()).get(1);
        WanModel.Step step = WanModel.inputs(naming, dim, grid, options.contextTokens(), options.seed(), t, runs.reference(),
                captured.latents(), captured.context());
        WanBlock block = new WanBlock(naming, dim, Verifier.HEAD_DIM);
        float[][] inputs = new float[layers + 1][]; // the reference's residual stream entering each block
        inputs[0] = step.inputs().x();
        for (int b = 0; b < layers; b++) {
            inputs[b + 1] = runs.forward(block, b, WanModel.withX(step.inputs(), inputs[b]), runs.reference());
        }
        float[] refOut = WanModel.head(naming, dim, inputs[layers], step.inputs().tokens(), step.timeEmbedding(), runs.reference());
        Map<String, RunWeights> fp8Runs = new LinkedHashMap<>();
        fp8Runs.put("weight_only", runs.weightOnly());
        fp8Runs.put("w8a8", runs.w8a8());
        List<Check> checks = new ArrayList<>();
        java.util.regex.Pattern blockOf = java.util.regex.Pattern.compile("^blocks\\.(\\d+)\\.");
        for (String weight : fp8Names) {
            java.util.regex.Matcher m = blockOf.matcher(weight);
            if (!weight.endsWith(".weight") || !m.find()) {
                continue;
            }
            int first = Integer.parseInt(m.group(1));
            String layer = weight.substring(0, weight.length() - ".weight".length());
            options.log().accept("sensitivity: " + layer);
            for (Map.Entry<String, RunWeights> r : fp8Runs.entrySet()) {
                RunWeights only = single(runs.reference(), r.getValue(), layer);
                float[] x = inputs[first];
                for (int b = first; b < layers; b++) {
                    x = runs.forward(block, b, WanModel.withX(step.inputs(), x), only);
                }
                float[] out = WanModel.head(naming, dim, x, step.inputs().tokens(), step.timeEmbedding(), only);
                checks.add(Check.of(component, "sensitivity", first, layer, null, r.getKey(),
                        ErrorMetrics.of(refOut, out), null, null, null, dev.fp8q.verifier.check.Bound.NONE));
            }
        }
        runs.endBlock(); // every block's weights stay on the GPU through the layers: each restart reuses them
        notes.add("sensitivity: each FP8 Linear alone in FP8, the rest reference, at " + step.description()
                + "; figures are the model output's against the reference");
        return checks;
    }

    /** Only this layer as the FP8 run computes it: on the GPU when the runs are there. */
    private static RunWeights single(RunWeights reference, RunWeights fp8, String layer) {
        if (reference instanceof dev.fp8q.verifier.cuda.CudaRunWeights ref && fp8 instanceof dev.fp8q.verifier.cuda.CudaRunWeights f) {
            return ref.withLayer(new MixedWeights(ref.cpu(), f.cpu(), Set.of(layer)), layer, f);
        }
        return new MixedWeights(reference, fp8, Set.of(layer));
    }
}
