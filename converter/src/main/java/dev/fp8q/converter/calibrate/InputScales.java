package dev.fp8q.converter.calibrate;

import dev.fp8q.converter.ConvertException;
import dev.fp8q.converter.ComponentFiles;
import dev.fp8q.converter.Converter;
import dev.fp8q.converter.layout.Layout;
import dev.fp8q.converter.layout.LayoutConfig;
import dev.fp8q.converter.quant.Scaling;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.OutputGuard;
import dev.fp8q.formats.StagedOutput;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.formats.safetensors.SafetensorsFile;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.ShardIndex;
import dev.fp8q.formats.safetensors.TensorEntry;
import dev.fp8q.formats.safetensors.TensorSpec;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * Adds (or replaces) the static input scales of an fp8q output: the shards holding calibrated Linears are rewritten
 * with one float32 input scale per Linear beside its weight scale (name and shape by layout), every other tensor's
 * bytes copied as they were; the shard index, the layout's configs (static activations) and the manifest follow.
 * Everything else is hard-linked (copied where links fail) into a temporary sibling, which replaces the output by
 * one rename, as convert publishes.
 */
public final class InputScales {

    private InputScales() {}

    /**
     * from: the fp8q output to read (its manifest m); to: where the result is published (from itself for fp8q
     * calibrate). scales: per component name, per Linear (module name) its input scale. calibration: what the
     * manifest records under settings.calibration.
     */
    public static Manifest apply(Path from, Path to, Manifest m, Map<String, Map<String, Float>> scales,
            Map<String, Object> calibration, Consumer<String> warn) throws Exception {
        Layout layout = Layout.parse(String.valueOf(m.settings().getOrDefault("layout", "comfy")));
        String scalingName = String.valueOf(m.settings().getOrDefault("scaling", "tensor"));
        Scaling scaling = Scaling.parse(scalingName.replace("+pow2", ""), scalingName.endsWith("+pow2"));
        String refusal = layout.staticRefusal(scaling);
        if (refusal != null) {
            throw new ConvertException("--layout " + layout.id() + " with " + scalingName + " scaling cannot carry static input scales: " + refusal);
        }
        boolean folder = Files.isDirectory(from);
        Path target = to.toAbsolutePath().normalize();
        Path manifestPath = folder ? target.resolve(Manifest.FILE) : Manifest.locate(target);
        return StagedOutput.write(target, warn, () -> { }, tmp -> {
            Manifest out = stage(from, folder, tmp, target.getFileName().toString(), m, layout, scaling, scales,
                    calibration, warn);
            StagedOutput.publish(out, tmp, target, manifestPath, folder);
            return out;
        });
    }

    private static Manifest stage(Path from, boolean folder, Path tmp, String fileName, Manifest m, Layout layout,
            Scaling scaling, Map<String, Map<String, Float>> scales, Map<String, Object> calibration,
            Consumer<String> warn) throws Exception {
        if (folder) {
            for (String f : OutputGuard.relativeFiles(from)) {
                if (f.equals(Manifest.FILE)) {
                    continue;
                }
                Path dst = tmp.resolve(f);
                Files.createDirectories(dst.getParent());
                try {
                    Files.createLink(dst, from.resolve(f));
                } catch (IOException | UnsupportedOperationException e) {
                    Files.copy(from.resolve(f), dst);
                }
            }
        }
        List<Manifest.TensorRecord> records = new ArrayList<>(m.tensors());
        for (Manifest.ComponentRecord c : m.components()) {
            Map<String, Float> layers = scales.get(c.name());
            if (layers == null || layers.isEmpty()) {
                continue;
            }
            String dir = folder ? (c.output().contains(".safetensors") && !Files.isDirectory(from.resolve(c.output()))
                    ? parent(c.output()) : c.output()) : "";
            records = component(from, folder, tmp, fileName, dir, c.name(), layers, layout, records);
            Path compDir = dir.isEmpty() ? from : from.resolve(dir);
            if (folder && Files.isDirectory(compDir) && !c.output().endsWith(".safetensors")) {
                configs(compDir, dir.isEmpty() ? tmp : tmp.resolve(dir), layout, scaling, records, c.name(), warn);
            } else {
                warn.accept("a single-file output has no config.json of its own: runtimes that read the scheme from "
                        + "config.json (" + layout.id() + ") need static activations declared there");
            }
        }
        Map<String, Object> settings = new LinkedHashMap<>(m.settings());
        settings.put("calibration", calibration);
        return new Manifest(m.tool(), m.version(), m.commandLine(), m.sources(), settings, m.components(), m.files(),
                records, Converter.totals(records), m.loras());
    }

    private static String parent(String rel) {
        int i = rel.lastIndexOf('/');
        return i < 0 ? "" : rel.substring(0, i);
    }

    /** Rewrites the component's shards that hold calibrated Linears; returns the records with the input scales'. */
    private static List<Manifest.TensorRecord> component(Path from, boolean folder, Path tmp, String fileName, String dir,
            String component, Map<String, Float> layers, Layout layout, List<Manifest.TensorRecord> records)
            throws Exception {
        Set<String> inputScaleNames = new HashSet<>();
        layers.keySet().forEach(l -> inputScaleNames.add(layout.inputScaleName(l)));
        Map<String, List<String>> byFile = new TreeMap<>();
        for (Manifest.TensorRecord r : records) {
            if (component.equals(r.component()) && r.action().equals("quantize")) {
                String layer = r.name().endsWith(".weight") ? r.name().substring(0, r.name().length() - ".weight".length()) : r.name();
                if (layers.containsKey(layer)) {
                    byFile.computeIfAbsent(r.file(), k -> new ArrayList<>()).add(layer);
                }
            }
        }
        List<Manifest.TensorRecord> out = new ArrayList<>();
        for (Manifest.TensorRecord r : records) { // replaced: an earlier calibration's input scales
            if (!(component.equals(r.component()) && inputScaleNames.contains(r.name()))) {
                out.add(r);
            }
        }
        Map<String, String> newNames = new LinkedHashMap<>();
        long added = 0;
        for (Map.Entry<String, List<String>> e : byFile.entrySet()) {
            Path src = folder ? from.resolve(e.getKey()) : from;
            Path dst = folder ? tmp.resolve(e.getKey()) : tmp.resolve(fileName);
            String shard = Path.of(e.getKey()).getFileName().toString();
            try (SafetensorsFile f = SafetensorsFile.open(src)) {
                List<TensorSpec> specs = new ArrayList<>();
                for (TensorEntry t : f.tensors()) {
                    if (!inputScaleNames.contains(t.name())) {
                        specs.add(TensorSpec.of(t));
                    }
                }
                for (String layer : e.getValue()) {
                    String n = layout.inputScaleName(layer);
                    if (f.tensor(n).isEmpty() && specs.stream().anyMatch(s -> s.name().equals(n))) {
                        throw new ConvertException(src + ": tensor '" + n + "' exists and is not an input scale fp8q wrote");
                    }
                    specs.add(new TensorSpec(n, DType.F32, layout.inputScaleShape()));
                }
                Files.deleteIfExists(dst); // a link to the old output's file: never written through
                try (SafetensorsWriter w = SafetensorsWriter.create(dst, f.metadata(), specs)) {
                    for (TensorSpec s : specs) {
                        if (f.tensor(s.name()).isPresent() && !inputScaleNames.contains(s.name())) {
                            MemorySegment data = f.data(f.tensor(s.name()).get());
                            long chunk = 64L << 20;
                            for (long off = 0; off < data.byteSize(); off += chunk) {
                                w.write(s.name(), off, data.asSlice(off, Math.min(chunk, data.byteSize() - off)));
                            }
                        }
                    }
                    for (String layer : e.getValue()) {
                        ByteBuffer b = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(layers.get(layer));
                        w.write(layout.inputScaleName(layer), MemorySegment.ofBuffer(b.flip()));
                    }
                    w.commit();
                    Map<String, String> crcs = w.checksums();
                    for (String layer : e.getValue()) {
                        String n = layout.inputScaleName(layer);
                        out.add(new Manifest.TensorRecord(n, component, e.getKey(), null, null, DType.F32.name(),
                                boxed(layout.inputScaleShape()), "scale", "input-scale-of:" + layer + ".weight",
                                layers.get(layer), null, null, null, null, crcs.get(n), 4));
                        newNames.put(n, shard);
                        added += 4;
                    }
                }
            }
        }
        if (folder) {
            Path compTmp = dir.isEmpty() ? tmp : tmp.resolve(dir);
            try (var files = Files.list(compTmp)) {
                for (Path idx : files.filter(p -> p.getFileName().toString().endsWith(ShardIndex.SUFFIX)).toList()) {
                    ShardIndex old = ShardIndex.read(from.resolve(tmp.relativize(idx).toString()));
                    Map<String, String> map = new TreeMap<>(old.weightMap());
                    map.keySet().removeAll(inputScaleNames);
                    map.putAll(newNames);
                    Files.delete(idx);
                    ShardIndex.write(idx, old.totalSize() + added, map);
                }
            }
        }
        return out;
    }

    private static void configs(Path compDir, Path compTmp, Layout layout, Scaling scaling,
            List<Manifest.TensorRecord> records, String component, Consumer<String> warn) throws IOException {
        Path config = compDir.resolve(LayoutConfig.CONFIG);
        Files.deleteIfExists(compTmp.resolve(LayoutConfig.CONFIG)); // links: written anew, never through
        Files.deleteIfExists(compTmp.resolve(LayoutConfig.MODELOPT_CONFIG));
        new LayoutConfig(layout, scaling, warn, true).write(Files.isRegularFile(config) ? config : null, compTmp,
                ComponentFiles.preservedLinears(records, component));
    }

    private static List<Long> boxed(long[] shape) {
        List<Long> out = new ArrayList<>();
        for (long d : shape) {
            out.add(d);
        }
        return out;
    }
}
