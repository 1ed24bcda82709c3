package dev.fp8q.verifier;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.check.Bound;
import dev.fp8q.verifier.check.Check;
import dev.fp8q.verifier.cuda.CudaRunWeights;
import dev.fp8q.verifier.metrics.ErrorMetrics;
import dev.fp8q.verifier.model.ChainedModel;
import dev.fp8q.verifier.run.MixedWeights;
import dev.fp8q.verifier.run.RunWeights;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;

/**
 * verify --whole: the chained forward of the whole model (any family of the model seam: embeddings, every block in
 * order, the head) for the reference and each FP8 run at several timesteps and seeds. Checks: the model output (the
 * velocity prediction) against its bound, and the drift of each residual stream after each block (reported,
 * bounded only when the user sets a "drift" bound). The runs advance block by block together, so each block's
 * weights are loaded once. With input scales, the reference run also feeds {@link StaticFits}.
 */
final class WholeModel {

    private WholeModel() {}

    static <S extends ChainedModel.Step> List<Check> run(String component, ChainedModel<S> model, Runs runs,
            Collection<String> fp8Names, Verifier.Options options, Double capturedTimestep, List<String> notes,
            StaticFits fits) throws FormatException {
        Verifier.Whole whole = options.whole();
        List<Double> timesteps = whole.timesteps() != null ? whole.timesteps()
                : capturedTimestep != null ? List.of(capturedTimestep)
                : model.defaultTimesteps(component, notes);
        Map<String, RunWeights> fp8Runs = new LinkedHashMap<>();
        fp8Runs.put("weight_only", runs.weightOnly());
        fp8Runs.put("w8a8", runs.w8a8());
        if (runs.w8a8Simulated() != null) {
            fp8Runs.put("w8a8_simulated", runs.w8a8Simulated());
        }
        if (runs.w8a8Static() != null) {
            fp8Runs.put("w8a8_static", runs.w8a8Static());
        }
        List<String> streams = model.streamNames();
        int layers = model.layers();
        List<Check> checks = new ArrayList<>();
        S first = null;
        for (double t : timesteps) {
            for (int s = 0; s < whole.samples(); s++) {
                S step = model.inputs(t, options.seed() + s, runs.reference());
                if (first == null) {
                    first = step;
                    step.notes().forEach(n -> notes.add("whole model: " + n));
                }
                options.log().accept("whole model, " + step.description() + ": " + layers + " blocks, "
                        + (1 + fp8Runs.size()) + " runs");
                float[][] ref = step.streams();
                RunWeights reference = runs.reference();
                if (fits != null) {
                    fits.input(t, step.description());
                    reference = fits.weights();
                }
                Map<String, float[][]> xs = new LinkedHashMap<>();
                fp8Runs.keySet().forEach(r -> xs.put(r, step.streams()));
                for (int b = 0; b < layers; b++) {
                    ref = model.block(b, step, ref, reference, runs.math());
                    for (Map.Entry<String, RunWeights> r : fp8Runs.entrySet()) {
                        float[][] x = model.block(b, step, xs.get(r.getKey()), r.getValue(), runs.math());
                        xs.put(r.getKey(), x);
                        for (int k = 0; k < x.length; k++) {
                            checks.add(Check.of(component, "drift", b, step.description(), null, r.getKey(),
                                    ErrorMetrics.of(ref[k], x[k]), null, null, null,
                                    options.bounds().of("drift", bound(r.getKey()), null))
                                    .ofStream(streams.size() > 1 ? streams.get(k) : null));
                        }
                    }
                    runs.endBlock();
                }
                float[] refOut = model.head(step, ref, reference);
                for (Map.Entry<String, RunWeights> r : fp8Runs.entrySet()) {
                    float[] out = model.head(step, xs.get(r.getKey()), r.getValue());
                    checks.add(Check.of(component, "model_output", null, step.description(), null, r.getKey(),
                            ErrorMetrics.of(refOut, out), null, null, null,
                            options.bounds().of("model_output", bound(r.getKey()), null)));
                }
                runs.endBlock();
            }
        }
        notes.add(String.format(Locale.ROOT, "whole model (%s): %d blocks chained at timesteps %s, %d sample(s) each",
                model.family(), layers, timesteps.stream().map(t -> String.valueOf(Math.round(t))).toList(),
                whole.samples()));
        if (streams.size() > 1) {
            notes.add("whole model: drift per residual stream (" + String.join(", ", streams) + "); the head reads "
                    + streams.getFirst());
        }
        if (whole.sensitivity()) {
            double t = whole.timesteps() != null ? whole.timesteps().getFirst()
                    : capturedTimestep != null ? capturedTimestep
                    : model.defaultTimesteps(component, new ArrayList<>()).get(1);
            checks.addAll(sensitivity(component, model, model.inputs(t, options.seed(), runs.reference()), runs, fp8Names,
                    options, notes));
        }
        return checks;
    }

    private static String bound(String run) {
        return run.startsWith("w8a8") ? "w8a8" : run;
    }

    /**
     * Each FP8 Linear's own share of the end-to-end error: the chained model with only that layer in FP8 (weight-only
     * and W8A8), restarted from the reference's input to the layer's block, at one timestep and seed. One
     * "sensitivity" check per layer and run, unbounded, figures against the reference output.
     */
    private static <S extends ChainedModel.Step> List<Check> sensitivity(String component, ChainedModel<S> model, S step,
            Runs runs, Collection<String> fp8Names, Verifier.Options options, List<String> notes) throws FormatException {
        int layers = model.layers();
        float[][][] inputs = new float[layers + 1][][]; // the reference's streams entering each block
        inputs[0] = step.streams();
        for (int b = 0; b < layers; b++) {
            inputs[b + 1] = model.block(b, step, inputs[b], runs.reference(), runs.math());
        }
        float[] refOut = model.head(step, inputs[layers], runs.reference());
        Map<String, RunWeights> fp8Runs = new LinkedHashMap<>();
        fp8Runs.put("weight_only", runs.weightOnly());
        fp8Runs.put("w8a8", runs.w8a8());
        List<Check> checks = new ArrayList<>();
        for (String weight : fp8Names) {
            Matcher m = model.blockName().matcher(weight);
            if (!weight.endsWith(".weight") || !m.find()) {
                continue;
            }
            int from = Integer.parseInt(m.group(1));
            String layer = weight.substring(0, weight.length() - ".weight".length());
            options.log().accept("sensitivity: " + layer);
            for (Map.Entry<String, RunWeights> r : fp8Runs.entrySet()) {
                RunWeights only = single(runs.reference(), r.getValue(), layer);
                float[] out = model.output(step, from, inputs[from], only, runs.math());
                checks.add(Check.of(component, "sensitivity", from, layer, null, r.getKey(),
                        ErrorMetrics.of(refOut, out), null, null, null, Bound.NONE));
            }
        }
        runs.endBlock(); // every block's weights stay on the GPU through the layers: each restart reuses them
        notes.add("sensitivity: each FP8 Linear alone in FP8, the rest reference, at " + step.description()
                + "; figures are the model output's against the reference");
        return checks;
    }

    /** Only this layer as the FP8 run computes it: on the GPU when the runs are there. */
    private static RunWeights single(RunWeights reference, RunWeights fp8, String layer) {
        if (reference instanceof CudaRunWeights ref && fp8 instanceof CudaRunWeights f) {
            return ref.withLayer(new MixedWeights(ref.cpu(), f.cpu(), Set.of(layer)), layer, f);
        }
        return new MixedWeights(reference, fp8, Set.of(layer));
    }
}
