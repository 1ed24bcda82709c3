package dev.fp8q.converter;

import dev.fp8q.converter.plan.Action;
import dev.fp8q.converter.plan.Decision;
import dev.fp8q.converter.plan.Planner;
import dev.fp8q.converter.plan.UserRules;
import dev.fp8q.converter.layout.ComfyMetadata;
import dev.fp8q.converter.layout.Layout;
import dev.fp8q.converter.layout.LayoutConfig;
import dev.fp8q.converter.quant.ChunkBuffers;
import dev.fp8q.converter.quant.Scaling;
import dev.fp8q.converter.quant.NonFiniteException;
import dev.fp8q.converter.quant.QuantResult;
import dev.fp8q.converter.quant.TensorQuantizer;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.FileTrees;
import dev.fp8q.formats.Interrupts;
import dev.fp8q.formats.OutputGuard;
import dev.fp8q.formats.TreeMirror;
import dev.fp8q.formats.OutputLock;
import dev.fp8q.formats.TensorFile;
import dev.fp8q.formats.pth.PthFile;
import dev.fp8q.formats.codec.Amax;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.lora.LoraMerge;
import dev.fp8q.formats.lora.LoraSpec;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.ShardIndex;
import dev.fp8q.formats.safetensors.TensorEntry;
import dev.fp8q.formats.safetensors.TensorSpec;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ForkJoinPool;

/**
 * fp8q convert: E4M3 from BF16/F16/F32 safetensors or .pth (per-tensor, channel or block scales, in one of the
 * runtimes' layouts), streamed shard by shard into a temporary folder that is renamed to DST only when
 * everything, manifest included, is written. DST mirrors SRC: a file gives a file (its manifest beside it), a
 * folder a folder with every file not converted carried over unchanged; output shards keep the source's names.
 */
public final class Converter {

    public static final String VERSION = Manifest.TOOL_VERSION;

    /**
     * How to convert. preset: auto, wan, t5, vae or generic. components: --components entries (names or kinds)
     * converted besides the transformers.
     */
    public record Options(String preset, UserRules rules, boolean preserveAsBf16, boolean nonFinitePreserve,
            int threads, boolean force, List<String> commandLine, Scaling scaling, Layout layout, String pthKey,
            List<String> components, List<LoraSpec> loras, boolean loraLenient) {

        public Options {
            loras = List.copyOf(loras);
        }

        /** No LoRA merged. */
        public Options(String preset, UserRules rules, boolean preserveAsBf16, boolean nonFinitePreserve, int threads,
                boolean force, List<String> commandLine, Scaling scaling, Layout layout, String pthKey,
                List<String> components) {
            this(preset, rules, preserveAsBf16, nonFinitePreserve, threads, force, commandLine, scaling, layout, pthKey,
                    components, List.of(), false);
        }

        /** Per-tensor scales in the default (ComfyUI) layout. */
        public Options(String preset, UserRules rules, boolean preserveAsBf16, boolean nonFinitePreserve, int threads,
                boolean force, List<String> commandLine) {
            this(preset, rules, preserveAsBf16, nonFinitePreserve, threads, force, commandLine, Scaling.PER_TENSOR,
                    Layout.COMFY, null, List.of());
        }
    }

    private final Options options;
    private final Progress progress;
    private final ForkJoinPool pool;
    /** The LoRAs resolved against the one converted component (none: {@link LoraMerge#NONE}). */
    private LoraMerge loras = LoraMerge.NONE;
    private LoraTensors merged;

    public Converter(Options options, Progress progress) {
        this.options = options;
        this.progress = progress;
        this.pool = new ForkJoinPool(Math.max(1, options.threads()));
    }

    /** The path a conversion of src into dst writes ({@link OutputGuard#outputPath}). */
    public static Path outputPath(Path src, Path dst) throws ConvertException {
        try {
            return OutputGuard.outputPath(src, dst);
        } catch (OutputGuard.RefusedException e) {
            throw new ConvertException(e.getMessage());
        }
    }

    public Manifest convert(Path src, Path dst) throws Exception {
        String refusal = options.layout().refusal(options.scaling());
        if (refusal != null) {
            throw new ConvertException("--layout " + options.layout().id() + " cannot express "
                    + options.scaling().granularity().name().toLowerCase(java.util.Locale.ROOT) + " scaling"
                    + (options.layout().refusal(options.scaling().withBf16Scales(false)) == null ? " with BF16 scales" : "")
                    + ": " + refusal);
        }
        if (options.layout() == Layout.COMFY_LEGACY) {
            progress.warn("--layout comfy-legacy: ComfyUI casts EVERY Linear of such a file to FP8, preserved ones "
                    + "with scale 1.0; use the default layout to keep layers in high precision");
        }
        boolean folder = Files.isDirectory(src);
        Path target = outputPath(src, dst).toAbsolutePath().normalize();
        Path manifestPath = folder ? target.resolve(Manifest.FILE) : Manifest.locate(target);
        guard(src, target, manifestPath);
        try (SourcePlan plan = SourcePlan.of(src, options.preset(), options.rules(), options.components(), options.pthKey())) {
            plan.requireWork(options.preset());
            plan.notes().forEach(progress::warn);
            loras = resolveLoras(plan, options.loras(), options.loraLenient(), progress::warn);
            Files.createDirectories(target.getParent());
            Path tmp = target.resolveSibling("." + target.getFileName() + ".fp8q-tmp-" + UUID.randomUUID());
            try (OutputLock lock = OutputLock.acquire(target);
                    Interrupts armed = Interrupts.cleanUp(List.of(tmp, OutputLock.lockFile(target)))) {
                for (Path stale : lock.removeStale(target)) {
                    progress.warn("removed " + stale + ", left by an interrupted run");
                }
                guard(src, target, manifestPath); // again, now that no other run can write it
                return convertLocked(src, plan, tmp, target, manifestPath);
            }
        } finally {
            loras.close();
            pool.shutdownNow();
        }
    }

    /**
     * Every LoRA file parsed and each key matched to a weight of the one converted component, shapes checked,
     * before anything is written. Lenient: the keys skipped are listed as warnings.
     */
    public static LoraMerge resolveLoras(SourcePlan plan, List<LoraSpec> specs, boolean lenient,
            java.util.function.Consumer<String> warn) throws ConvertException, dev.fp8q.formats.FormatException {
        if (specs.isEmpty()) {
            return LoraMerge.NONE;
        }
        List<SourcePlan.Part> conv = plan.converted();
        if (conv.size() != 1) {
            throw new ConvertException("--lora merges into one transformer, but " + conv.size() + " components are converted ("
                    + String.join(", ", conv.stream().map(SourcePlan.Part::name).toList())
                    + "): convert each expert's folder on its own with the LoRA made for it");
        }
        SourcePlan.Part part = conv.getFirst();
        LoraMerge m = LoraMerge.resolve(specs, part.checkpoint().tensors().stream().map(Checkpoint.Tensor::entry).toList(),
                part.prefix(), lenient);
        for (LoraMerge.Applied a : m.applied()) {
            for (String skipped : a.skipped()) {
                warn.accept(a.file() + ": skipped (--lora-lenient): " + skipped);
            }
        }
        return m;
    }

    private void guard(Path src, Path target, Path manifestPath) throws java.io.IOException, ConvertException {
        try {
            OutputGuard.check(src, target, manifestPath, options.force());
        } catch (OutputGuard.RefusedException e) {
            throw new ConvertException(e.getMessage());
        }
    }

    private Manifest convertLocked(Path src, SourcePlan plan, Path tmp, Path target, Path manifestPath) throws Exception {
        Files.createDirectory(tmp);
        boolean folder = Files.isDirectory(src);
        try {
            List<Manifest.Source> sources = new ArrayList<>();
            List<Manifest.TensorRecord> records = new ArrayList<>();
            List<Manifest.ComponentRecord> components = new ArrayList<>();
            Set<Path> consumed = new HashSet<>();
            List<Checkpoint> open = plan.converted().stream().map(SourcePlan.Part::checkpoint).toList();
            SourceSnapshot snapshot = SourceSnapshot.of(open);
            long total = 0;
            for (Checkpoint cp : open) {
                if (cp.shards().getFirst() instanceof PthFile pth && !pth.skipped().isEmpty()) {
                    progress.warn(pth.path() + ": not tensors, not carried over: " + String.join(", ", pth.skipped()));
                }
                total += cp.totalBytes();
            }
            progress.start(total);
            Trace.mark("sources open");
            Path srcRoot = src.toAbsolutePath().normalize();
            for (SourcePlan.Part part : plan.parts()) {
                Path compPath = part.component().path().toAbsolutePath().normalize();
                String srcRel = folder ? srcRoot.relativize(compPath).toString() : "";
                if (!part.converted()) {
                    components.add(new Manifest.ComponentRecord(part.name(), part.kind().label(), "copied", srcRel, srcRel));
                    continue;
                }
                Output o = outputOf(part, folder, target, srcRel);
                Path out = o.dir().isEmpty() ? tmp : Files.createDirectories(tmp.resolve(o.dir()));
                convertComponent(part, out, o, folder ? srcRoot : compPath.getParent(), sources, records);
                part.checkpoint().shards().forEach(sh -> consumed.add(sh.path().toAbsolutePath().normalize()));
                components.add(new Manifest.ComponentRecord(part.name(), part.kind().label(), "converted", srcRel,
                        o.file() == null ? o.dir() : o.path()));
            }
            snapshot.verifyUnchanged();
            if (folder) {
                TreeMirror.carry(src, tmp, consumed, SafetensorsWriter.syncs());
            }
            List<String> files = new ArrayList<>(OutputGuard.relativeFiles(tmp));
            if (folder) {
                files.add(Manifest.FILE);
            }
            Manifest m = manifest(sources, components, files.stream().sorted().toList(), records);
            if (folder) {
                m.write(tmp.resolve(Manifest.FILE));
                FileTrees.publish(tmp, target);
            } else {
                Path written = tmp.resolve(target.getFileName().toString());
                m.write(tmp.resolve(manifestPath.getFileName().toString()));
                FileTrees.publishFile(written, target, tmp.resolve(manifestPath.getFileName().toString()), manifestPath);
                FileTrees.delete(tmp);
            }
            Trace.mark("published");
            progress.done();
            return m;
        } catch (Exception | Error e) {
            FileTrees.delete(tmp);
            throw e;
        }
    }

    /**
     * A single-file output (a file SRC, or a .pth converted beside its release's other files) has no folder of its
     * own for the configs a layout writes: writing them beside it would replace the folder's own config.json. They
     * are rendered in a scratch folder and the user is told what the runtime would have read.
     */
    private void singleFileConfigs(Path out, List<String> ignore) throws java.io.IOException {
        Path scratch = Files.createTempDirectory(out, ".fp8q-config");
        try {
            new LayoutConfig(options.layout(), options.scaling(), s -> { }).write(null, scratch, ignore);
            for (String name : List.of(LayoutConfig.CONFIG, LayoutConfig.MODELOPT_CONFIG)) {
                Path f = scratch.resolve(name);
                if (Files.isRegularFile(f)) {
                    String json = Files.readString(f).replaceAll("\\s*\n\\s*", " ");
                    progress.warn("a single-file output has no " + name + " of its own; --layout " + options.layout().id()
                            + " runtimes read it from the model's folder: convert the folder, or add this to its " + name + ": " + json);
                }
            }
        } finally {
            FileTrees.delete(scratch);
        }
    }

    /**
     * Where a converted component goes, relative to DST: dir ("" for DST itself) and, for a single-file output, the
     * file's name (a file SRC keeps DST's name; a .pth becomes a .safetensors beside where it was).
     */
    private record Output(String dir, String file) {
        String path() {
            return dir.isEmpty() ? file : dir + "/" + file;
        }
    }

    private static Output outputOf(SourcePlan.Part part, boolean folder, Path target, String srcRel) {
        if (!folder) {
            return new Output("", target.getFileName().toString());
        }
        if (part.component().isPth()) {
            Path parent = Path.of(srcRel).getParent();
            return new Output(parent == null ? "" : parent.toString(), SourcePlan.pthOutputName(part.component().path()));
        }
        return new Output(srcRel, null);
    }

    private void convertComponent(SourcePlan.Part part, Path out, Output o, Path srcRoot, List<Manifest.Source> sources,
            List<Manifest.TensorRecord> records) throws Exception {
        Checkpoint cp = part.checkpoint();
        Set<String> names = new HashSet<>();
        cp.tensors().forEach(t -> names.add(t.name()));
        Planner planner = part.planner();
        Map<String, String> weightMap = new LinkedHashMap<>();
        long totalOut = 0;
        boolean marker = options.layout() == Layout.COMFY_LEGACY;
        String legacyMarker = part.prefix() + Layout.LEGACY_MARKER;
        if (marker && names.contains(legacyMarker)) {
            throw new ConvertException("cannot add the marker tensor '" + legacyMarker
                    + "': the source already has a tensor of that name");
        }
        List<TensorFile> shards = cp.shards();
        List<Path> targets = shards.stream().map(shard -> out.resolve(o.file() != null ? o.file() : outputName(shard))).toList();
        for (TensorFile shard : shards) {
            sources.add(new Manifest.Source(part.name(), srcRoot.relativize(shard.path().toAbsolutePath().normalize()).toString(),
                    Files.size(shard.path())));
        }
        // Shards at once, each tensor by tensor: one shard's final fsync then overlaps the next one's work, and
        // each file has its own writer (writes to one file go one at a time).
        @SuppressWarnings("unchecked")
        List<Manifest.TensorRecord>[] converted = new List[shards.size()];
        long largest = 0;
        for (Checkpoint.Tensor t : cp.tensors()) {
            largest = loras.targets(t.name()) ? Math.max(largest, 4 * t.entry().numel()) : largest;
        }
        merged = new LoraTensors(pool, loras, largest);
        ChunkBuffers.forEachIndex(pool, shards.size(), i -> {
            TensorFile shard = shards.get(i);
            List<Checkpoint.Tensor> tensors = cp.tensors().stream().filter(t -> t.shard() == shard).toList();
            converted[i] = convertShard(part.name(), tensors, planner, targets.get(i), names,
                    marker && i == 0 ? legacyMarker : null); // the marker in the first shard only
        });
        String dirPrefix = o.dir().isEmpty() ? "" : o.dir() + "/";
        for (int i = 0; i < shards.size(); i++) {
            Path target = targets.get(i);
            List<Manifest.TensorRecord> shardRecords = converted[i];
            for (Manifest.TensorRecord r : shardRecords) {
                weightMap.put(r.name(), target.getFileName().toString());
                totalOut += r.bytes();
            }
            for (Manifest.TensorRecord r : shardRecords) {
                records.add(withFile(r, dirPrefix + target.getFileName()));
            }
        }
        if (cp.index().isPresent()) {
            ShardIndex.write(out.resolve(cp.index().get().file().getFileName().toString()), totalOut, weightMap);
        }
        if (planner.preset().weightOnly()) {
            return; // weight-only storage runs no FP8 GEMM: no runtime is told to quantize, config.json is carried as it is
        }
        if (o.file() != null) {
            singleFileConfigs(out, preservedLinears(records, part.name()));
            return;
        }
        Path config = part.component().path().resolve(LayoutConfig.CONFIG);
        new LayoutConfig(options.layout(), options.scaling(), progress::warn)
                .write(Files.isRegularFile(config) ? config : null, out, preservedLinears(records, part.name()));
    }

    /** Module names of the component's preserved 2-D ".weight" tensors: the layouts' ignore lists. */
    private static List<String> preservedLinears(List<Manifest.TensorRecord> records, String component) {
        List<String> out = new ArrayList<>();
        for (Manifest.TensorRecord r : records) {
            if (r.component().equals(component) && r.action().equals("preserve") && r.name().endsWith(".weight")
                    && r.shape() != null && r.shape().size() == 2) {
                out.add(ComfyMetadata.layerOf(r.name()));
            }
        }
        return out;
    }

    /**
     * A shard keeps its name; a .pth becomes "<stem>.safetensors", and a safetensors file named otherwise gets the
     * extension added, so that DST is a folder every reader (fp8q's own included) finds the checkpoint in.
     */
    private static String outputName(TensorFile shard) {
        String n = shard.path().getFileName().toString();
        if (shard instanceof PthFile) {
            return n.substring(0, n.lastIndexOf('.')) + ".safetensors";
        }
        return n.endsWith(".safetensors") ? n : n + ".safetensors";
    }

    private static Manifest.TensorRecord withFile(Manifest.TensorRecord r, String file) {
        return new Manifest.TensorRecord(r.name(), r.component(), file, r.sourceDtype(), r.sourceShape(), r.dtype(),
                r.shape(), r.action(), r.rule(), r.scale(), r.scaleTensor(), r.amax(), r.sqnrDb(), r.underflow(),
                r.crc32c(), r.bytes());
    }

    /** What one source tensor becomes before any byte is written. */
    private record Job(Checkpoint.Tensor source, Decision decision, DType outType, String scaleName) {}

    private List<Manifest.TensorRecord> convertShard(String component, List<Checkpoint.Tensor> tensors, Planner planner,
            Path target, Set<String> allNames, String marker) throws Exception {
        List<Job> jobs = new ArrayList<>();
        List<TensorSpec> specs = new ArrayList<>();
        Set<String> layers = new java.util.TreeSet<>();
        for (Checkpoint.Tensor t : tensors) {
            Decision d = planner.decide(t.entry());
            TensorEntry e = t.entry();
            if (d.action() == Action.QUANTIZE) {
                long bad = options.nonFinitePreserve() ? Amax.of(t.data(), e.dtype()).nonFinite() : 0;
                if (bad > 0) {
                    d = new Decision(e, Action.PRESERVE, "nonfinite:preserved(" + bad + " NaN/Inf)");
                    progress.warn("tensor '" + e.name() + "' holds " + bad + " NaN/Inf value(s): kept in " + e.dtype());
                }
            }
            String shapeRefusal = d.action() == Action.QUANTIZE ? options.layout().shapeRefusal(e.shape(), options.scaling()) : null;
            if (shapeRefusal != null) {
                d = new Decision(e, Action.PRESERVE, "layout:" + shapeRefusal);
            }
            if (d.action() == Action.QUANTIZE) {
                String scale = options.layout().scaleName(e.name(), options.scaling());
                if (allNames.contains(scale)) {
                    throw new ConvertException("cannot add scale tensor '" + scale + "': the source already has a tensor of that name");
                }
                jobs.add(new Job(t, d, DType.F8_E4M3, scale));
                specs.add(new TensorSpec(e.name(), DType.F8_E4M3, e.shape()));
                specs.add(new TensorSpec(scale, options.scaling().scaleDType(),
                        options.layout().scaleShape(e.shape(), options.scaling())));
                layers.add(ComfyMetadata.layerOf(e.name()));
            } else {
                DType outType = options.preserveAsBf16() && (e.dtype() == DType.F32 || e.dtype() == DType.F16) ? DType.BF16 : e.dtype();
                jobs.add(new Job(t, d, outType, null));
                specs.add(new TensorSpec(e.name(), outType, e.shape()));
            }
        }
        Map<String, String> metadata = new TreeMap<>();
        Map<String, String> srcMeta = tensors.isEmpty() ? null : tensors.getFirst().shard().metadata();
        if (srcMeta != null) {
            metadata.putAll(srcMeta);
        }
        metadata.putAll(options.layout().shardMetadata(layers));
        if (marker != null) {
            specs.add(new TensorSpec(marker, DType.F8_E4M3, new long[] {0}));
        }
        Map<String, QuantResult> results = new ConcurrentHashMap<>();
        TensorQuantizer quantizer = new TensorQuantizer(pool);
        Trace.mark(target.getFileName() + ": start");
        try (SafetensorsWriter w = SafetensorsWriter.create(target, metadata, specs)) {
            ChunkBuffers.forEach(pool, jobs, j -> { // tensors in parallel too: small ones alone cannot fill the cores
                TensorEntry e = j.source().entry();
                MemorySegment data = j.source().data();
                if (j.decision().action() == Action.QUANTIZE) {
                    QuantResult r;
                    try {
                        if (merged.targets(e.name())) { // the merged weight, rounded once to float32, takes the F32 path
                            try (LoraTensors.Merged m = merged.float32(j.source())) {
                                r = quantizer.quantize(e.name(), m.values, DType.F32, e.shape(), options.scaling(),
                                        (el, bytes) -> w.write(e.name(), el, bytes));
                            }
                        } else {
                            r = quantizer.quantize(e.name(), data, e.dtype(), e.shape(), options.scaling(),
                                    (el, bytes) -> w.write(e.name(), el, bytes));
                        }
                    } catch (NonFiniteException nf) {
                        throw new ConvertException(j.source().shard().path() + ": " + nf.getMessage());
                    }
                    if (r.amax() == 0f) {
                        progress.warn("tensor '" + e.name() + "' is all zeros: scale 1.0");
                    }
                    w.write(j.scaleName(), scaleBytes(r.scales()));
                    results.put(e.name(), r);
                } else if (merged.targets(e.name())) {
                    merged.writeKept(j.source(), j.outType(), w);
                } else {
                    copy(w, e, data, j.outType());
                }
                release(data);
                progress.advance(e.byteSize());
            });
            Trace.mark(target.getFileName() + ": tensors written");
            w.commit(); // the marker holds no bytes
            Trace.mark(target.getFileName() + ": committed");
            return records(component, jobs, results, w, target, marker);
        }
    }

    /** The scales as stored: F32, or BF16 (already BF16 values, so the narrowing is exact). */
    private MemorySegment scaleBytes(float[] scales) {
        boolean bf16 = options.scaling().scaleDType() == DType.BF16;
        ByteBuffer s = ByteBuffer.allocate((bf16 ? 2 : 4) * scales.length).order(ByteOrder.LITTLE_ENDIAN);
        for (float v : scales) {
            if (bf16) {
                s.putShort(Elements.floatToBf16(v));
            } else {
                s.putFloat(v);
            }
        }
        return MemorySegment.ofBuffer(s.flip());
    }

    private void copy(SafetensorsWriter w, TensorEntry e, MemorySegment data, DType outType) throws Exception {
        if (outType == e.dtype()) {
            long chunk = 64L << 20;
            for (long off = 0; off < data.byteSize(); off += chunk) {
                w.write(e.name(), off, data.asSlice(off, Math.min(chunk, data.byteSize() - off)));
            }
            return;
        }
        long n = e.numel();
        ChunkBuffers.forEachChunk(pool, n, TensorQuantizer.CHUNK, 2, (from, to, out) -> {
            for (long i = from; i < to; i++) {
                out.setAtIndex(Elements.SHORT, i - from, Elements.floatToBf16(Elements.get(data, e.dtype(), i)));
            }
            w.write(e.name(), from * 2, out);
        });
    }

    /** Manifest records, with the checksums of the bytes as written. */
    private static List<Manifest.TensorRecord> records(String component, List<Job> jobs, Map<String, QuantResult> results,
            SafetensorsWriter written, Path target, String marker) {
        List<Manifest.TensorRecord> out = new ArrayList<>();
        Map<String, String> crcs = written.checksums();
        for (Job j : jobs) {
            TensorEntry e = j.source().entry();
            TensorEntry o = written.entry(e.name());
            QuantResult r = results.get(e.name());
            boolean q = r != null;
            out.add(new Manifest.TensorRecord(e.name(), component, target.getFileName().toString(), e.dtype().name(),
                    boxed(e.shape()), o.dtype().name(), boxed(o.shape()), q ? "quantize" : "preserve", j.decision().rule(),
                    q ? single(r) : null, q ? j.scaleName() : null, q ? r.amax() : null,
                    q ? finiteOrNull(r.sqnrDb()) : null, q ? r.underflowFraction() : null, crcs.get(e.name()), o.byteSize()));
            if (q) {
                TensorEntry s = written.entry(j.scaleName());
                out.add(new Manifest.TensorRecord(j.scaleName(), component, target.getFileName().toString(), null, null,
                        s.dtype().name(), boxed(s.shape()), "scale", "scale-of:" + e.name(), single(r), null, null, null,
                        null, crcs.get(j.scaleName()), s.byteSize()));
            }
        }
        if (marker != null) {
            out.add(new Manifest.TensorRecord(marker, component, target.getFileName().toString(), null,
                    null, DType.F8_E4M3.name(), List.of(0L), "marker", "layout:" + Layout.COMFY_LEGACY.id(), null,
                    null, null, null, null, crcs.get(marker), 0));
        }
        return out;
    }

    /** The scale itself for a per-tensor result; a grid is found through the scale tensor. */
    private static Float single(QuantResult r) {
        return r.scales().length == 1 ? r.scales()[0] : null;
    }

    private static Double finiteOrNull(Double d) {
        return d == null || d.isInfinite() || d.isNaN() ? null : d;
    }

    static List<Long> boxed(long[] shape) {
        return Arrays.stream(shape).boxed().toList();
    }

    private Manifest manifest(List<Manifest.Source> sources, List<Manifest.ComponentRecord> components,
            List<String> files, List<Manifest.TensorRecord> records) {
        Map<String, Object> settings = new LinkedHashMap<>();
        settings.put("preset", options.preset());
        settings.put("components", options.components());
        settings.put("scaling", options.scaling().describe());
        settings.put("scale_dtype", options.scaling().scaleDType() == DType.BF16 ? "bf16" : "f32");
        settings.put("layout", options.layout().id());
        settings.put("preserve_dtype", options.preserveAsBf16() ? "bf16" : "keep");
        settings.put("nonfinite", options.nonFinitePreserve() ? "preserve" : "refuse");
        settings.put("ignore", options.rules().ignore().stream().map(Object::toString).toList());
        settings.put("quantize", options.rules().quantize().stream().map(Object::toString).toList());
        int q = 0;
        int p = 0;
        long outBytes = 0;
        for (Manifest.TensorRecord r : records) {
            q += r.action().equals("quantize") ? 1 : 0;
            p += r.action().equals("preserve") ? 1 : 0;
            outBytes += r.bytes();
        }
        long srcBytes = 0;
        for (Manifest.TensorRecord r : records) {
            if (r.sourceDtype() != null) {
                long n = 1;
                for (long d : r.sourceShape()) {
                    n *= d;
                }
                srcBytes += n * DType.valueOf(r.sourceDtype()).bits() / 8;
            }
        }
        List<Manifest.LoraRecord> loraRecords = null;
        if (!loras.isEmpty()) {
            settings.put("lora_merge", LoraMerge.NOTE);
            loraRecords = loras.applied().stream().map(a -> new Manifest.LoraRecord(a.file().toAbsolutePath().normalize().toString(),
                    a.crc32c(), a.strength(), a.style(), a.keysApplied(), a.targets(), a.skipped())).toList();
        }
        return new Manifest(Manifest.TOOL, VERSION, options.commandLine(), sources, settings, components, files, records,
                new Manifest.Totals(records.size(), q, p, srcBytes, outBytes), loraRecords);
    }

    /**
     * Drops a finished tensor's mapped pages from this process (they stay in the page cache), so the resident
     * size stays near one tensor's worth instead of growing to the whole checkpoint.
     */
    static void release(MemorySegment data) {
        if (data.isMapped() && data.byteSize() > 0) {
            data.unload();
        }
    }
}
