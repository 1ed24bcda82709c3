package dev.fp8q.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fp8q.converter.SourcePlan;
import dev.fp8q.converter.plan.Action;
import dev.fp8q.converter.plan.Decision;
import dev.fp8q.converter.report.MemoryReport;
import dev.fp8q.verifier.Simulation;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;

/**
 * plan --budget-db: the fewest bytes to keep in BF16 so that the whole model's end-to-end SQNR meets the budget.
 * Each of the preset's FP8 Linears is measured alone in FP8 (its own error energy); layers are kept in order of
 * error per byte saved, and the smallest such prefix that meets the budget is found by bisection over chained
 * runs, the last of which confirms it. The result can be written as a rules file that convert --rules takes.
 */
final class ErrorBudget {

    record Layer(String name, long savedBytes, double aloneDb) {}

    static void plan(SourcePlan.Part part, double budgetDb, String run, Simulation sim, Path emit, Path curve,
            PrintWriter out) throws Exception {
        List<Layer> layers = new ArrayList<>();
        for (Decision d : part.decisions()) {
            String n = d.tensor().name();
            if (d.action() == Action.QUANTIZE && n.endsWith(".weight") && d.tensor().rank() == 2) {
                String base = n.substring(0, n.length() - ".weight".length());
                long saved = d.tensor().byteSize() - d.tensor().numel() - 4;
                layers.add(new Layer(base, saved, sim.endToEnd(Set.of(base)).get(run).sqnrDb()));
            }
        }
        // most error per byte first: 10^(-dB/10) is the layer's error energy relative to the output's
        layers.sort(Comparator.comparingDouble((Layer l) -> -Math.pow(10, -l.aloneDb() / 10) / Math.max(1, l.savedBytes())));
        Map<Integer, Double> measured = new HashMap<>();
        int lo = 0;
        int hi = layers.size(); // keeping all: no FP8 Linear, no error
        if (measure(layers, 0, sim, run, measured) < budgetDb) {
            while (lo + 1 < hi) {
                int mid = (lo + hi) / 2;
                if (measure(layers, mid, sim, run, measured) >= budgetDb) {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
        } else {
            hi = 0;
        }
        int keep = hi;
        double confirmed = keep == layers.size() ? Double.POSITIVE_INFINITY : measure(layers, keep, sim, run, new HashMap<>());
        long keptBytes = layers.subList(0, keep).stream().mapToLong(Layer::savedBytes).sum();
        long allSaved = layers.stream().mapToLong(Layer::savedBytes).sum();
        if (curve != null) { // more of the curve than bisection needed: 0, 1, 2, 4, ... layers kept
            for (int k = 0; k < layers.size(); k = Math.max(1, 2 * k)) {
                if (!measured.containsKey(k)) {
                    measure(layers, k, sim, run, measured);
                }
            }
            List<CurveSvg.Point> points = new ArrayList<>();
            measured.forEach((k, db) -> points.add(new CurveSvg.Point(k, allSaved
                    - layers.subList(0, k).stream().mapToLong(Layer::savedBytes).sum(), db)));
            java.nio.file.Files.writeString(curve, CurveSvg.render(String.format(Locale.ROOT,
                    "%s: end-to-end SQNR (%s) as layers are kept in high precision, most error per byte first",
                    part.name().isEmpty() ? part.component().path().getFileName() : part.name(), run), points, budgetDb, keep));
        }
        out.printf(Locale.ROOT, "budget %.2f dB (%s): keep %d of %d FP8 Linears in high precision (%s of the %s FP8 saves); "
                + "end-to-end SQNR %.2f dB, confirmed by a chained run%n", budgetDb, run, keep, layers.size(),
                MemoryReport.human(keptBytes), MemoryReport.human(allSaved), confirmed);
        out.printf("%-8s %14s %12s%n", "kept", "saved", "SQNR dB");
        measured.keySet().stream().sorted().forEach(k -> out.printf(Locale.ROOT, "%-8d %14s %12.2f%n", k,
                MemoryReport.human(allSaved - layers.subList(0, k).stream().mapToLong(Layer::savedBytes).sum()), measured.get(k)));
        for (Layer l : layers.subList(0, keep)) {
            out.printf(Locale.ROOT, "  keep %-44s alone in FP8: %.2f dB%n", l.name(), l.aloneDb());
        }
        if (emit != null) {
            ObjectMapper m = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
            ObjectNode root = m.createObjectNode();
            root.put("label", String.format(Locale.ROOT, "budget:%s>=%.2fdB(measured %.2f)", run, budgetDb, confirmed));
            var ignore = root.putArray("ignore");
            layers.subList(0, keep).forEach(l -> ignore.add("^" + (l.name() + ".weight").replace(".", "\\.") + "$"));
            m.writeValue(emit.toFile(), root);
        }
    }

    /** The end-to-end figure with the first k layers kept in high precision and the rest in FP8. */
    private static double measure(List<Layer> layers, int k, Simulation sim, String run, Map<Integer, Double> measured)
            throws Exception {
        Set<String> fp8 = new LinkedHashSet<>();
        layers.subList(k, layers.size()).forEach(l -> fp8.add(l.name()));
        double db = fp8.isEmpty() ? Double.POSITIVE_INFINITY : sim.endToEnd(fp8).get(run).sqnrDb();
        measured.put(k, db);
        return db;
    }
}
