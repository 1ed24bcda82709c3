package dev.fp8q.cli;

import dev.fp8q.converter.ConvertException;
import dev.fp8q.converter.calibrate.InputScales;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.verifier.Calibration;
import dev.fp8q.verifier.qwen.QwenNaming;
import dev.fp8q.verifier.wan.WanNaming;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Calibrates an fp8q output against its source: the chained reference forward of each converted Wan or Qwen-Image component
 * ({@link Calibration}), then the input scales written by layout ({@link InputScales}), published at {@code to}.
 */
final class Calibrator {

    private Calibrator() {}

    static Manifest run(Path src, Path from, Path to, Calibration.Options options, List<String> commandLine,
            PrintWriter out, Consumer<String> warn) throws Exception {
        Manifest m = Manifest.find(from).filter(x -> Manifest.TOOL.equals(x.tool())).orElseThrow(() -> new ConvertException(
                from + " is not an fp8q output (no fp8q manifest beside it or in it): convert first"));
        requireSource(src, m);
        Map<String, Map<String, Float>> scales = new LinkedHashMap<>();
        Map<String, Object> perComponent = new LinkedHashMap<>();
        Calibration.Result last = null;
        for (Manifest.ComponentRecord c : m.components()) {
            if (!c.action().equals("converted")) {
                continue;
            }
            Path s = c.source().isEmpty() ? src : src.resolve(c.source());
            Set<String> layers = new LinkedHashSet<>();
            for (Manifest.TensorRecord r : m.tensors()) {
                if (c.name().equals(r.component()) && r.action().equals("quantize") && r.name().endsWith(".weight")
                        && r.shape() != null && r.shape().size() == 2 && !String.valueOf(r.rule()).startsWith("weight-only")) {
                    layers.add(r.name().substring(0, r.name().length() - ".weight".length()));
                }
            }
            try (Checkpoint cp = Checkpoint.open(s)) {
                if (layers.isEmpty() || WanNaming.detect(cp).isEmpty() && QwenNaming.detect(cp).isEmpty()) {
                    warn.accept("component '" + c.name() + "': not a Wan or Qwen-Image transformer with FP8 Linears: no input scales");
                    continue;
                }
                Calibration.Result r = Calibration.run(c.name(), cp, layers, options);
                last = r;
                Map<String, Float> layerScales = new LinkedHashMap<>();
                Map<String, Object> record = new LinkedHashMap<>();
                r.layers().forEach((l, ls) -> {
                    layerScales.put(l, ls.scale());
                    Map<String, Object> e = new LinkedHashMap<>();
                    e.put("amax", ls.amax());
                    e.put("method_amax", ls.methodAmax());
                    e.put("scale_amax", ls.scaleAmax());
                    e.put("input_scale", ls.scale());
                    e.put("amax_spread", ls.spread());
                    e.put("amax_per_timestep", new java.util.TreeMap<>(r.amaxPerStep().get(l)));
                    if (!ls.group().equals(l) || r.layers().values().stream().anyMatch(o -> o.group().equals(l) && !o.layer().equals(l))) {
                        e.put("shares_input_with", ls.group());
                    }
                    record.put(l, e);
                });
                scales.put(c.name(), layerScales);
                perComponent.put(c.name(), record);
                print(out, c.name(), r);
            }
        }
        if (last == null) {
            throw new ConvertException(from + ": no converted Wan or Qwen-Image transformer to calibrate (calibration runs the chained model)");
        }
        Map<String, Object> calibration = new LinkedHashMap<>();
        calibration.put("method", last.method());
        calibration.put("percentile", last.percentile());
        calibration.put("samples", last.samples());
        calibration.put("timesteps", last.timesteps());
        calibration.put("inputs", last.inputs());
        calibration.put("grid", last.grid());
        calibration.put("input_scale", "amax / 448 in float32; Linears sharing an input take the max of their amax");
        calibration.put("command_line", commandLine);
        calibration.put("layers", perComponent);
        return InputScales.apply(from, to, m, scales, calibration, warn);
    }

    /** The output's manifest must name SRC's files as they are (same relative names and sizes). */
    private static void requireSource(Path src, Manifest m) throws Exception {
        if (m.sources() == null) {
            return;
        }
        for (Manifest.Source s : m.sources()) {
            Path p = Files.isDirectory(src) ? src.resolve(s.file()) : src.resolveSibling(s.file());
            if (!Files.isRegularFile(p) || Files.size(p) != s.bytes()) {
                throw new ConvertException("the output was converted from " + s.file() + " (" + s.bytes() + " bytes), which "
                        + src + (Files.isRegularFile(p) ? " holds with " + Files.size(p) + " bytes" : " does not hold")
                        + ": is SRC the model DST was made from?");
            }
        }
    }

    private static void print(PrintWriter out, String component, Calibration.Result r) {
        Map<String, List<String>> groups = new LinkedHashMap<>();
        r.layers().values().forEach(l -> groups.computeIfAbsent(l.group(), g -> new ArrayList<>()).add(l.layer()));
        long shared = groups.values().stream().filter(g -> g.size() > 1).count();
        double worst = r.layers().values().stream().filter(l -> l.spread() != null).mapToDouble(Calibration.LayerScale::spread).max().orElse(1);
        out.printf(Locale.ROOT, "calibrated %s%s: %d FP8 Linears, method %s%s, timesteps %s, %s%n", component.isEmpty() ? "" : "'",
                component.isEmpty() ? "" : component + "'", r.layers().size(), r.method(),
                r.percentile() != null ? " (" + r.percentile() + ")" : "", r.timesteps(), r.inputs());
        out.printf(Locale.ROOT, "  %d group(s) of Linears share their input (q/k/v; cross-attention k/v): equal scales, the max of "
                + "their amax, as vLLM fuses them; widest amax spread across timesteps %.2fx%n", shared, worst);
    }
}
