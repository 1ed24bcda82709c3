package dev.fp8q.verifier;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.metrics.ErrorMetrics;
import dev.fp8q.verifier.run.MixedWeights;
import dev.fp8q.verifier.run.ReferenceWeights;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.run.SimulatedFp8Weights;
import dev.fp8q.verifier.run.WeightSimulation;
import dev.fp8q.verifier.wan.WanBlock;
import dev.fp8q.verifier.wan.WanModel;
import dev.fp8q.verifier.wan.WanNaming;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;

/**
 * The end-to-end error a set of FP8 Linears would give a Wan model, measured before converting: the whole model
 * chained on the CPU with those Linears simulated per tensor ({@link SimulatedFp8Weights}), weight-only and W8A8,
 * against the source; the worst over the given timesteps.
 */
public final class Simulation {

    private final Checkpoint source;
    private final WanNaming naming;
    private final int dim;
    private final int layers;
    private final List<WanModel.Step> steps;

    private Simulation(Checkpoint source, WanNaming naming, int dim, int layers, List<WanModel.Step> steps) {
        this.source = source;
        this.naming = naming;
        this.dim = dim;
        this.layers = layers;
        this.steps = steps;
    }

    /** Empty when the checkpoint is not a Wan model the verifier runs. */
    public static Optional<Simulation> of(Checkpoint source, int[] grid, int contextTokens, long seed, List<Double> timesteps)
            throws FormatException {
        Optional<WanNaming> naming = WanNaming.detect(source);
        if (naming.isEmpty()) {
            return Optional.empty();
        }
        ReferenceWeights ref = new ReferenceWeights(source);
        int dim = ref.tensor(naming.get().weight(WanNaming.Param.MODULATION, 0)).length / 6;
        if (dim % Verifier.HEAD_DIM != 0 || !ref.has(naming.get().weight(WanNaming.Param.HEAD, 0))) {
            return Optional.empty();
        }
        List<WanModel.Step> steps = new java.util.ArrayList<>();
        for (double t : timesteps) {
            steps.add(WanModel.inputs(naming.get(), dim, grid, contextTokens, seed, t, ref, null, null));
        }
        return Optional.of(new Simulation(source, naming.get(), dim, Verifier.blockCount(source), steps));
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
        WanBlock block = new WanBlock(naming, dim, Verifier.HEAD_DIM);
        Map<String, ErrorMetrics> worst = new LinkedHashMap<>();
        for (WanModel.Step step : steps) {
            float[] refOut = WanModel.forward(naming, dim, layers, step, ref, (b, in) -> block.forward(b, in, ref))[layers];
            for (Map.Entry<String, RunWeights> r : runs.entrySet()) {
                RunWeights w = r.getValue();
                float[] out = WanModel.forward(naming, dim, layers, step, w, (b, in) -> block.forward(b, in, w))[layers];
                ErrorMetrics m = ErrorMetrics.of(refOut, out);
                ErrorMetrics prev = worst.get(r.getKey());
                if (prev == null || m.sqnrDb() < prev.sqnrDb()) {
                    worst.put(r.getKey(), m);
                }
            }
        }
        return worst;
    }
}
