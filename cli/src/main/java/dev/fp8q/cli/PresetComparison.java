package dev.fp8q.cli;

import com.fasterxml.jackson.databind.node.ArrayNode;
import dev.fp8q.converter.SourcePlan;
import dev.fp8q.converter.plan.Action;
import dev.fp8q.converter.plan.Decision;
import dev.fp8q.converter.plan.Planner;
import dev.fp8q.converter.plan.Preset;
import dev.fp8q.converter.plan.UserRules;
import dev.fp8q.converter.report.MemoryReport;
import dev.fp8q.converter.quant.Scaling;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.verifier.Simulation;
import dev.fp8q.verifier.metrics.ErrorMetrics;
import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;

/**
 * plan --compare: the deployments' presets side by side on one component, each with the memory it keeps and the
 * end-to-end error it would give (the whole model chained with its Linears simulated per tensor; Wan and Qwen-Image).
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

    static void compare(SourcePlan.Part part, List<String> presets, UserRules rules, Scaling scaling, int[] grid,
            int contextTokens, List<Double> timesteps, PrintWriter out, ArrayNode json) throws Exception {
        Checkpoint cp = part.checkpoint();
        Optional<Simulation> sim = Simulation.of(cp, grid, contextTokens, 0, timesteps);
        String label = part.name().isEmpty() ? part.component().path().toString() : part.name();
        out.printf("== %s: presets compared%s%n", label, sim.isPresent() ? String.format(Locale.ROOT,
                " (end-to-end SQNR: whole model chained, %dx%dx%d tokens, t=%s, worst of them)", grid[0], grid[1], grid[2],
                timesteps.stream().map(t -> String.valueOf(Math.round(t))).toList()) : " (no chained model for this family: memory only)");
        out.printf("%-20s %8s %12s %8s %14s %10s%n", "preset", "fp8", "after", "saved", "weight-only dB", "w8a8 dB");
        for (String id : presets) {
            Preset preset;
            try {
                preset = Preset.resolve(id, part.model());
            } catch (IllegalArgumentException e) {
                throw new Fp8q.UsageException("--compare: " + e.getMessage());
            }
            List<Decision> ds = new Planner(preset, rules, part.prefix())
                    .plan(cp.tensors().stream().map(Checkpoint.Tensor::entry).toList());
            Set<String> fp8 = new TreeSet<>();
            long before = 0;
            long after = 0;
            for (Decision d : ds) {
                long b = d.tensor().byteSize();
                before += b;
                if (d.action() == Action.QUANTIZE) {
                    long[] g = scaling.grid(d.tensor().shape());
                    after += d.tensor().numel() + 4 * g[0] * g[1];
                    if (d.tensor().name().endsWith(".weight")) {
                        fp8.add(d.tensor().name().substring(0, d.tensor().name().length() - ".weight".length()));
                    }
                } else {
                    after += b;
                }
            }
            Map<String, ErrorMetrics> e = sim.isPresent() ? sim.get().endToEnd(fp8) : Map.of();
            out.printf(Locale.ROOT, "%-20s %8d %12s %7.1f%% %14s %10s%n", preset.id, fp8.size(), MemoryReport.human(after),
                    before == 0 ? 0.0 : 100.0 * (before - after) / before, db(e.get("weight_only")), db(e.get("w8a8")));
            var row = json.addObject().put("component", part.name()).put("preset", preset.id).put("fp8_linears", fp8.size())
                    .put("bytes_before", before).put("bytes_after", after);
            e.forEach((run, m) -> row.put("sqnr_db_" + run, m.sqnrDb()));
        }
        out.println();
    }

    private static String db(ErrorMetrics m) {
        return m == null ? "-" : String.format(Locale.ROOT, "%.2f", m.sqnrDb());
    }
}
