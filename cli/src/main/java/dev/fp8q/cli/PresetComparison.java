package dev.fp8q.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import dev.fp8q.converter.SourcePlan;
import dev.fp8q.converter.layout.Layout;
import dev.fp8q.converter.plan.Action;
import dev.fp8q.converter.plan.Decision;
import dev.fp8q.converter.plan.LayerKind;
import dev.fp8q.converter.plan.Planner;
import dev.fp8q.converter.plan.Preset;
import dev.fp8q.converter.plan.UserRules;
import dev.fp8q.converter.report.MemoryReport;
import dev.fp8q.converter.quant.QuantResult;
import dev.fp8q.converter.quant.Scaling;
import dev.fp8q.converter.quant.TensorQuantizer;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.verifier.Simulation;
import dev.fp8q.verifier.metrics.ErrorMetrics;
import java.io.PrintWriter;
import java.util.HashMap;
import java.util.List;
import java.util.TreeMap;
import java.util.concurrent.ForkJoinPool;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * plan --compare: the deployments' presets side by side on one component, under each scaling asked for (--scalings:
 * tensor, channel, block, mx), each with the memory it keeps, the weight SQNR per kind of layer (the converter's own
 * quantizer) and the end-to-end error it would give (the whole model chained with its Linears simulated in that
 * scaling; Wan and Qwen-Image).
 */
final class PresetComparison {

    /** The presets compared for a family when --compare names none. */
    static List<String> defaults(String family) {
        return switch (family) {
            case "wan" -> List.of("wan", "wan-ffn-only", "wan-modelopt");
            case "qwen-image" -> List.of("qwen-image", "qwen-image-sglang");
            default -> List.of("generic");
        };
    }

    static void compare(SourcePlan.Part part, List<String> presets, UserRules rules, List<Scaling> scalings, int[] grid,
            int contextTokens, List<Double> timesteps, PrintWriter out, ArrayNode json) throws Exception {
        Checkpoint cp = part.checkpoint();
        Optional<Simulation> sim = Simulation.of(cp, grid, contextTokens, 0, timesteps);
        String label = part.name().isEmpty() ? part.component().path().toString() : part.name();
        out.printf("== %s: presets compared%s%n", label, sim.isPresent() ? String.format(Locale.ROOT,
                " (end-to-end SQNR: whole model chained, %dx%dx%d tokens, t=%s, worst of them)", grid[0], grid[1], grid[2],
                timesteps.stream().map(t -> String.valueOf(Math.round(t))).toList()) : " (no chained model for this family: memory only)");
        if (scalings.stream().anyMatch(Scaling::mx)) {
            out.println("   mx: simulated MX GEMM in float32 (weights and W8A8 inputs in 32-value E8M0 blocks along K); "
                    + "Hopper GPUs (H200) have no MX tensor cores");
        }
        out.printf("%-20s %-8s %5s %12s %8s %14s %10s  %s%n", "preset", "scaling", "fp8", "after", "saved",
                "weight-only dB", "w8a8 dB", "weight SQNR dB by kind");
        Map<String, double[]> figures = new HashMap<>(); // "scaling|tensor" -> signal, noise (presets share tensors)
        try (ForkJoinPool pool = new ForkJoinPool(Runtime.getRuntime().availableProcessors())) {
            for (String id : presets) {
                Preset preset;
                try {
                    preset = Preset.resolve(id, part.model());
                } catch (IllegalArgumentException e) {
                    throw new Fp8q.UsageException("--compare: " + e.getMessage());
                }
                List<Decision> ds = new Planner(preset, rules, part.prefix())
                        .plan(cp.tensors().stream().map(Checkpoint.Tensor::entry).toList());
                for (Scaling scaling : scalings) {
                    row(part, cp, preset, ds, scaling, sim, figures, pool, out, json);
                }
            }
        }
        out.println();
    }

    /** One preset under one scaling: bytes, weight SQNR per kind of layer, and the chained model's error. */
    private static void row(SourcePlan.Part part, Checkpoint cp, Preset preset, List<Decision> ds, Scaling scaling,
            Optional<Simulation> sim, Map<String, double[]> figures, ForkJoinPool pool, PrintWriter out, ArrayNode json)
            throws Exception {
        Set<String> fp8 = new TreeSet<>();
        Map<LayerKind, double[]> byKind = new TreeMap<>();
        long before = 0;
        long after = 0;
        for (Decision d : ds) {
            long b = d.tensor().byteSize();
            before += b;
            // convert keeps what no MX layout can store (inputs not a multiple of 32): so does the comparison
            boolean quantized = d.action() == Action.QUANTIZE
                    && (!scaling.mx() || Layout.MODELOPT.shapeRefusal(d.tensor().shape(), scaling) == null);
            if (!quantized) {
                after += b;
                continue;
            }
            long[] g = scaling.grid(d.tensor().shape());
            after += d.tensor().numel() + (long) scaling.scaleBytes() * g[0] * g[1];
            String name = d.tensor().name();
            if (name.endsWith(".weight")) {
                fp8.add(name.substring(0, name.length() - ".weight".length()));
            }
            double[] f = figures.get(scaling.describe() + "|" + name);
            if (f == null) {
                Checkpoint.Tensor t = cp.tensor(name).orElseThrow();
                QuantResult r = new TensorQuantizer(pool).quantize(name, t.data(), t.entry().dtype(), t.entry().shape(),
                        scaling, (from, bytes) -> { });
                f = new double[] {r.signal(), r.noise()};
                figures.put(scaling.describe() + "|" + name, f);
            }
            double[] k = byKind.computeIfAbsent(LayerKind.of(name), x -> new double[2]);
            k[0] += f[0];
            k[1] += f[1];
        }
        Map<String, ErrorMetrics> e = sim.isPresent() ? sim.get().endToEnd(fp8, new ScalingSimulation(scaling, pool)) : Map.of();
        StringBuilder kinds = new StringBuilder();
        var row = json.addObject().put("component", part.name()).put("preset", preset.id).put("scaling", scaling.describe())
                .put("fp8_linears", fp8.size()).put("bytes_before", before).put("bytes_after", after);
        var kindJson = row.putObject("weight_sqnr_db");
        byKind.forEach((kind, f) -> {
            double db = f[1] == 0 ? Double.POSITIVE_INFINITY : 10 * Math.log10(f[0] / f[1]);
            kinds.append(kinds.isEmpty() ? "" : " ").append(kind.label()).append(String.format(Locale.ROOT, " %.2f", db));
            kindJson.put(kind.label(), db);
        });
        out.printf(Locale.ROOT, "%-20s %-8s %5d %12s %7.1f%% %14s %10s  %s%n", preset.id, scaling.describe(), fp8.size(),
                MemoryReport.human(after), before == 0 ? 0.0 : 100.0 * (before - after) / before, db(e.get("weight_only")),
                db(e.get("w8a8")), kinds);
        e.forEach((run, m) -> row.put("sqnr_db_" + run, m.sqnrDb()));
    }

    private static String db(ErrorMetrics m) {
        return m == null ? "-" : String.format(Locale.ROOT, "%.2f", m.sqnrDb());
    }
}
