package dev.fp8q.converter;

import dev.fp8q.converter.layout.Layout;
import dev.fp8q.converter.layout.LayoutConfig;
import dev.fp8q.converter.quant.Scaling;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.OutputGuard;
import dev.fp8q.formats.StagedOutput;
import dev.fp8q.formats.TreeMirror;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.formats.manifest.PartManifest;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * fp8q merge: assembles the partial outputs of {@code convert --part I/N} into the output a single run writes,
 * byte for byte: the shards from every part (hard-linked where the file system allows, else copied), then what a
 * single run writes once all shards are done (shard indexes, layout configs), the files part 1 carried, and the
 * manifest, whose command line is the single run's. The parts are only read: never changed, moved or deleted.
 */
public final class Merger {

    private final boolean force;
    private final Progress progress;

    public Merger(boolean force, Progress progress) {
        this.force = force;
        this.progress = progress;
    }

    private record Loaded(Path dir, PartManifest part) {
        String label() {
            return dir + " (part " + part.part() + "/" + part.of() + ")";
        }
    }

    /**
     * @param dstArg DST as the user typed it: the merged manifest's command line holds it where the single run's would
     * @return the merged manifest
     */
    public Manifest merge(List<Path> parts, Path dst, String dstArg) throws Exception {
        Map<Integer, Loaded> byIndex = complete(read(parts));
        PartManifest first = byIndex.get(1).part();
        Path target = outputPath(first, dst).toAbsolutePath().normalize();
        Path manifestPath = first.fileOutput() ? Manifest.locate(target) : target.resolve(Manifest.FILE);
        guard(byIndex, target, manifestPath);
        return StagedOutput.write(target, progress::warn, () -> guard(byIndex, target, manifestPath),
                tmp -> mergeLocked(byIndex, tmp, target, manifestPath, dstArg));
    }

    private static List<Loaded> read(List<Path> parts) throws ConvertException, FormatException {
        List<Loaded> out = new ArrayList<>();
        for (Path p : parts) {
            Path file = p.resolve(PartManifest.FILE);
            if (!Files.isDirectory(p) || !Files.isRegularFile(file)) {
                throw new ConvertException(p + ": not a partial output of 'fp8q convert --part I/N' (no " + PartManifest.FILE + ")");
            }
            out.add(new Loaded(p, PartManifest.read(file)));
        }
        return out;
    }

    /** The parts by number, refusing parts of another conversion, duplicates and missing parts, each by name. */
    private static Map<Integer, Loaded> complete(List<Loaded> parts) throws ConvertException {
        Loaded ref = parts.getFirst();
        Map<Integer, Loaded> byIndex = new TreeMap<>();
        for (Loaded l : parts) {
            PartManifest p = l.part();
            if (p.of() != ref.part().of() || !p.fingerprint().equals(ref.part().fingerprint())) {
                throw new ConvertException(l.label() + " comes from another conversion than " + ref.label()
                        + " (plan " + p.fingerprint() + " of " + p.of() + " parts, not " + ref.part().fingerprint() + " of "
                        + ref.part().of() + "): every part must be converted from the same SRC with the same options");
            }
            Loaded twin = byIndex.putIfAbsent(p.part(), l);
            if (twin != null) {
                throw new ConvertException(twin.dir() + " and " + l.dir() + " are both part " + p.part() + "/" + p.of()
                        + ": give each part once");
            }
        }
        List<String> missing = new ArrayList<>();
        for (int i = 1; i <= ref.part().of(); i++) {
            if (!byIndex.containsKey(i)) {
                int n = i;
                List<String> holds = ref.part().shards().stream().filter(s -> s.part() == n).map(PartManifest.Shard::output).toList();
                missing.add(i + "/" + ref.part().of() + (holds.isEmpty() ? " (no shards" : " (shards " + shorten(holds))
                        + (i == 1 && !ref.part().fileOutput() ? ", and the files not converted)" : ")"));
            }
        }
        if (!missing.isEmpty()) {
            throw new ConvertException("part" + (missing.size() > 1 ? "s " : " ") + String.join(", ", missing) + " missing: "
                    + "run 'fp8q convert SRC PART --part I/N' for " + (missing.size() > 1 ? "them" : "it") + " and give every part");
        }
        return byIndex;
    }

    private static String shorten(List<String> names) {
        return names.size() <= 3 ? String.join(", ", names)
                : String.join(", ", names.subList(0, 3)) + " and " + (names.size() - 3) + " more";
    }

    private static Path outputPath(PartManifest first, Path dst) throws ConvertException {
        try {
            return OutputGuard.outputPath(!first.fileOutput(), first.manifest().sources().getFirst().file(), dst);
        } catch (OutputGuard.RefusedException e) {
            throw new ConvertException(e.getMessage());
        }
    }

    /** DST must be none of the parts, hold none and lie in none; an existing one is replaced only as convert's is. */
    private void guard(Map<Integer, Loaded> parts, Path target, Path manifestPath) throws IOException, ConvertException {
        try {
            for (Loaded l : parts.values()) {
                OutputGuard.checkApart(l.dir(), target, manifestPath);
            }
        } catch (OutputGuard.RefusedException e) {
            throw new ConvertException(e.getMessage().replace("SRC", "a PART"));
        }
        try {
            OutputGuard.check(null, target, manifestPath, force);
        } catch (OutputGuard.RefusedException e) {
            throw new ConvertException(e.getMessage());
        }
    }

    private Manifest mergeLocked(Map<Integer, Loaded> parts, Path tmp, Path target, Path manifestPath, String dstArg)
            throws Exception {
        PartManifest first = parts.get(1).part();
        boolean fileOutput = first.fileOutput();
        boolean sync = SafetensorsWriter.syncs();
        List<Manifest.TensorRecord> records = new ArrayList<>();
        for (PartManifest.Shard sh : first.shards()) { // in the single run's order: component by component, shard by shard
            Loaded from = parts.get(sh.part());
            Path file = from.dir().resolve(sh.output());
            List<Manifest.TensorRecord> rs = from.part().manifest().tensors().stream()
                    .filter(r -> r.file().equals(sh.output())).toList();
            if (!Files.isRegularFile(file) || rs.isEmpty()) {
                throw new ConvertException(from.label() + ": lacks its shard " + sh.output() + " (of source " + sh.source() + ")");
            }
            String outName = fileOutput ? target.getFileName().toString() : sh.output();
            Path to = tmp.resolve(outName);
            Files.createDirectories(to.getParent());
            TreeMirror.link(file, to, sync);
            rs.forEach(r -> records.add(fileOutput ? Converter.withFile(r, outName) : r));
        }
        Loaded carrier = parts.get(1);
        Map<String, Object> settings = first.manifest().settings();
        String granularity = String.valueOf(settings.get("scaling"));
        Scaling scaling = Scaling.parse(granularity.replace("+pow2", ""), granularity.endsWith("+pow2"))
                .withBf16Scales("bf16".equals(settings.get("scale_dtype")));
        ComponentFiles finish = new ComponentFiles(Layout.parse(String.valueOf(settings.get("layout"))), scaling, progress);
        for (PartManifest.ComponentOutput c : first.outputs()) {
            Path out = c.dir().isEmpty() ? tmp : Files.createDirectories(tmp.resolve(c.dir()));
            String index = c.index() == null ? null : c.index().substring(c.index().lastIndexOf('/') + 1);
            Path config = c.config() ? carrier.dir().resolve(c.dir()).resolve(LayoutConfig.CONFIG) : null;
            if (config != null && !Files.isRegularFile(config)) {
                throw new ConvertException(carrier.label() + ": lacks " + carrier.dir().relativize(config)
                        + ", the source's config of component '" + c.component() + "' that part 1 carries");
            }
            finish.write(out, c.component(), c.file(), index, c.weightOnly(), config, records);
        }
        if (!fileOutput) {
            Path root = carrier.dir().toAbsolutePath().normalize();
            Set<Path> skip = new HashSet<>(List.of(root.resolve(PartManifest.FILE)));
            TreeMirror.carry(root, tmp, skip, sync); // what part 1 carried; shards, indexes and configs are in place already
        }
        List<String> files = new ArrayList<>(OutputGuard.relativeFiles(tmp));
        if (!fileOutput) {
            files.add(Manifest.FILE);
        }
        List<String> commandLine = new ArrayList<>(first.commandLine());
        if (first.dstArg() >= 0 && first.dstArg() < commandLine.size()) {
            commandLine.set(first.dstArg(), dstArg);
        }
        Manifest fm = first.manifest();
        List<Manifest.ComponentRecord> components = fm.components().stream() // a file output is named by DST, not by its part
                .map(c -> fileOutput ? new Manifest.ComponentRecord(c.name(), c.kind(), c.action(), c.source(),
                        target.getFileName().toString()) : c).toList();
        Manifest m = new Manifest(Manifest.TOOL, Converter.VERSION, commandLine, fm.sources(), settings, components,
                files.stream().sorted().toList(), records, Converter.totals(records));
        StagedOutput.publish(m, tmp, target, manifestPath, !fileOutput);
        progress.done();
        return m;
    }
}
