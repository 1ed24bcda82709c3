package dev.fp8q.verifier;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.metrics.ErrorMetrics;
import dev.fp8q.verifier.model.CapturedInputs;
import dev.fp8q.verifier.model.ChainedModel;
import dev.fp8q.verifier.model.ChainedModels;
import dev.fp8q.verifier.run.MixedWeights;
import dev.fp8q.verifier.run.ReferenceWeights;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.run.SimulatedFp8Weights;
import dev.fp8q.verifier.run.WeightSimulation;
import dev.fp8q.verifier.wan.CpuBlockMath;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The end-to-end error a set of FP8 Linears would give a model, measured before converting: the whole model (any
 * family of the model seam) chained on the CPU with those Linears simulated per tensor ({@link SimulatedFp8Weights}),
 * weight-only and W8A8, against the source; the worst over the given timesteps.
 */
public final class Simulation {

    /** The model output of one input for the given weights. */
    @FunctionalInterface
    private interface Output {
        float[] of(RunWeights w) throws FormatException;
    }

    /** One input: the model's output on it for any weights, and the reference's, computed once. */
    private record Step(Output output, float[] reference) {}

    private final Checkpoint source;
    private final String family;
    private final List<Step> steps;

    private Simulation(Checkpoint source, String family, List<Step> steps) {
        this.source = source;
        this.family = family;
        this.steps = steps;
    }

    /** Empty when no family of the model seam runs the checkpoint as a whole model. */
    public static Optional<Simulation> of(Checkpoint source, int[] grid, int contextTokens, long seed, List<Double> timesteps)
            throws FormatException {
        ReferenceWeights ref = new ReferenceWeights(source);
        Optional<ChainedModel<?>> model = ChainedModels.of(source, ref, grid, contextTokens, CapturedInputs.NONE);
        return model.isEmpty() ? Optional.empty()
                : Optional.of(new Simulation(source, model.get().family(), steps(model.get(), ref, seed, timesteps)));
    }

    private static <S extends ChainedModel.Step> List<Step> steps(ChainedModel<S> model, RunWeights ref, long seed,
            List<Double> timesteps) throws FormatException {
        List<Step> out = new ArrayList<>();
        for (double t : timesteps) {
            S step = model.inputs(t, seed, ref);
            Output o = w -> model.output(step, 0, step.streams(), w, new CpuBlockMath(ChainedModels.HEAD_DIM));
            out.add(new Step(o, o.of(ref))); // every endToEnd compares with it: plan --budget-db calls it per layer
        }
        return out;
    }

    /** "wan", "qwen-image". */
    public String family() {
        return family;
    }

    /** "weight_only" and "w8a8": the worst model-output figure over the timesteps with these Linears (module names) in FP8. */
    public Map<String, ErrorMetrics> endToEnd(Set<String> fp8Linears) throws FormatException {
        return endToEnd(fp8Linears, WeightSimulation.PER_TENSOR);
    }

    /** The same with the Linears stored as the simulation says (a scaling: channel, block, MX). */
    public Map<String, ErrorMetrics> endToEnd(Set<String> fp8Linears, WeightSimulation simulation) throws FormatException {
        ReferenceWeights ref = new ReferenceWeights(source);
        Map<String, RunWeights> runs = new LinkedHashMap<>();
        runs.put("weight_only", new MixedWeights(ref, new SimulatedFp8Weights(ref, false, simulation), fp8Linears));
        runs.put("w8a8", new MixedWeights(ref, new SimulatedFp8Weights(ref, true, simulation), fp8Linears));
        Map<String, ErrorMetrics> worst = new LinkedHashMap<>();
        for (Step step : steps) {
            for (Map.Entry<String, RunWeights> r : runs.entrySet()) {
                ErrorMetrics m = ErrorMetrics.of(step.reference(), step.output().of(r.getValue()));
                ErrorMetrics prev = worst.get(r.getKey());
                if (prev == null || m.sqnrDb() < prev.sqnrDb()) {
                    worst.put(r.getKey(), m);
                }
            }
        }
        return worst;
    }
}
