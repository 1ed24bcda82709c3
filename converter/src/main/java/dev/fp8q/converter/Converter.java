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
import dev.fp8q.converter.quant.QuantKernel;
import dev.fp8q.converter.quant.TensorQuantizer;
import dev.fp8q.converter.quant.VectorQuantKernel;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.FileTrees;
import dev.fp8q.formats.OutputGuard;
import dev.fp8q.formats.TreeMirror;
import dev.fp8q.formats.StagedOutput;
import dev.fp8q.formats.TensorFile;
import dev.fp8q.formats.pth.PthFile;
import dev.fp8q.formats.codec.Amax;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.lora.LoraMerge;
import dev.fp8q.formats.lora.LoraSpec;
import dev.fp8q.formats.lora.MergeDevice;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.formats.manifest.PartManifest;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.TensorEntry;
import dev.fp8q.formats.safetensors.TensorSpec;
import java.lang.foreign.MemorySegment;


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
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Predicate;
import java.util.concurrent.ForkJoinPool;
import java.util.function.Supplier;

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
            List<String> components, List<LoraSpec> loras, boolean loraLenient, boolean calibrated) {

        public Options {
            loras = List.copyOf(loras);
        }

        /** No LoRA merged, no calibration. */
        public Options(String preset, UserRules rules, boolean preserveAsBf16, boolean nonFinitePreserve, int threads,
                boolean force, List<String> commandLine, Scaling scaling, Layout layout, String pthKey,
                List<String> components) {
            this(preset, rules, preserveAsBf16, nonFinitePreserve, threads, force, commandLine, scaling, layout, pthKey,
                    components, List.of(), false, false);
        }

        /** The same options for an output that will be calibrated (static activation scales allowed). */
        public Options calibratedOutput() {
            return new Options(preset, rules, preserveAsBf16, nonFinitePreserve, threads, false, commandLine, scaling, layout,
                    pthKey, components, loras, loraLenient, true);
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
    private final PartOf partOf;
    private final int dstArg;
    /** The LoRAs resolved against the one converted component (none: {@link LoraMerge#NONE}). */
    private LoraMerge loras = LoraMerge.NONE;
    private LoraTensors merged;
    private Supplier<MergeDevice> mergeDevice;

    public Converter(Options options, Progress progress) {
        this(options, progress, null, -1);
    }

    /**
     * A converter that writes only part partOf of the output (null: all of it) into a partial-output folder for
     * {@link Merger}. options.commandLine() is then the single run's command line, DST at index dstArg.
     */
    public Converter(Options options, Progress progress, PartOf partOf, int dstArg) {
        this.options = options;
        this.progress = progress;
        this.pool = new ForkJoinPool(Math.max(1, options.threads()));
        this.partOf = partOf;
        this.dstArg = dstArg;
    }

    /**
     * LoRA merges on the device this gives (asked at the first merge, so it may still be opening; null: the CPU)
     * where it takes the target: the values are the CPU's bit for bit, and each is spot-checked against it. The
     * caller opens and closes the device.
     */
    public Converter mergeOn(Supplier<MergeDevice> device) {
        this.mergeDevice = device;
        return this;
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
        if (!options.loras().isEmpty()) { // compile the F32 kernel while the source and the LoRA files are read
            LoraTensors.warmUpF32();
        }
        String refusal = options.layout().refusal(options.scaling(), options.calibrated());
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
        Path target = (partOf != null ? dst : outputPath(src, dst)).toAbsolutePath().normalize(); // a part is a folder
        Path manifestPath = partOf != null ? target.resolve(PartManifest.FILE)
                : folder ? target.resolve(Manifest.FILE) : Manifest.locate(target);
        guard(src, target, manifestPath);
        if (partOf != null && folder && Files.exists(src.resolve(PartManifest.FILE))) {
            throw new ConvertException(src.resolve(PartManifest.FILE) + ": SRC holds a part manifest, which the part written here would replace; "
                    + "convert --part a folder without it");
        }
        try (SourcePlan plan = SourcePlan.of(src, options.preset(), options.rules(), options.components(), options.pthKey())) {
            plan.requireWork(options.preset());
            plan.notes().forEach(progress::warn);
            loras = resolveLoras(plan, options.loras(), options.loraLenient(), progress::warn);
            return StagedOutput.write(target, progress::warn, () -> guard(src, target, manifestPath),
                    tmp -> convertLocked(src, plan, tmp, target, manifestPath));
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
        boolean folder = Files.isDirectory(src);
        List<Manifest.Source> sources = new ArrayList<>();
        List<Manifest.TensorRecord> records = new ArrayList<>();
        List<Manifest.ComponentRecord> components = new ArrayList<>();
        Set<Path> consumed = new HashSet<>();
        List<Checkpoint> open = plan.converted().stream().map(SourcePlan.Part::checkpoint).toList();
        SourceSnapshot snapshot = SourceSnapshot.of(open);
        Path srcRoot = src.toAbsolutePath().normalize();
        Map<String, Integer> assigned = partOf == null ? null : assign(plan, folder, srcRoot);
        long total = 0;
        for (Checkpoint cp : open) {
            if (cp.shards().getFirst() instanceof PthFile pth && !pth.skipped().isEmpty()) {
                progress.warn(pth.path() + ": not tensors, not carried over: " + String.join(", ", pth.skipped()));
            }
            for (Checkpoint.Tensor t : cp.tensors()) {
                total += mine(assigned, sourceName(t.shard(), folder ? srcRoot : null)) ? t.entry().byteSize() : 0;
            }
        }
        progress.start(total);
        Trace.mark("sources open");
        List<PartManifest.Shard> shardPlan = new ArrayList<>();
        List<PartManifest.ComponentOutput> outputs = new ArrayList<>();
        ComponentFiles finish = new ComponentFiles(options.layout(), options.scaling(), progress);
        for (SourcePlan.Part part : plan.parts()) {
            Path compPath = part.component().path().toAbsolutePath().normalize();
            String srcRel = folder ? srcRoot.relativize(compPath).toString() : "";
            if (!part.converted()) {
                components.add(new Manifest.ComponentRecord(part.name(), part.kind().label(), "copied", srcRel, srcRel));
                continue;
            }
            Output o = outputOf(part, folder, target, srcRel);
            Checkpoint cp = part.checkpoint();
            Path srcBase = folder ? srcRoot : compPath.getParent();
            boolean writes = cp.shards().stream().anyMatch(sh -> mine(assigned, sourceName(sh, srcBase)));
            Path out = o.dir().isEmpty() || !writes ? tmp.resolve(o.dir()) : Files.createDirectories(tmp.resolve(o.dir()));
            List<String> outNames = convertComponent(part, out, o, srcBase, sources, records, assigned);
            String dirPrefix = o.dir().isEmpty() ? "" : o.dir() + "/";
            String index = cp.index().map(ix -> ix.file().getFileName().toString()).orElse(null);
            Path config = part.component().path().resolve(LayoutConfig.CONFIG);
            boolean hasConfig = o.file() == null && Files.isRegularFile(config);
            boolean weightOnly = part.planner().preset().weightOnly();
            if (partOf == null) {
                finish.write(out, part.name(), o.file(), index, weightOnly, hasConfig ? config : null, records);
            } else {
                for (int i = 0; i < cp.shards().size(); i++) {
                    TensorFile sh = cp.shards().get(i);
                    String name = sourceName(sh, srcBase);
                    shardPlan.add(new PartManifest.Shard(part.name(), name, Files.size(sh.path()),
                            dirPrefix + outNames.get(i), assigned.get(name)));
                }
                outputs.add(new PartManifest.ComponentOutput(part.name(), o.dir(), o.file(),
                        index == null ? null : dirPrefix + index, hasConfig, weightOnly));
            }
            cp.shards().forEach(sh -> consumed.add(sh.path().toAbsolutePath().normalize()));
            components.add(new Manifest.ComponentRecord(part.name(), part.kind().label(), "converted", srcRel,
                    o.file() == null ? o.dir() : o.path()));
        }
        snapshot.verifyUnchanged();
        if (folder && (partOf == null || partOf.index() == 1)) { // part 1 carries every file not converted
            TreeMirror.carry(src, tmp, consumed, SafetensorsWriter.syncs());
        }
        if (partOf != null) {
            return writePart(tmp, target, folder, sources, components, records, shardPlan, outputs);
        }
        List<String> files = new ArrayList<>(OutputGuard.relativeFiles(tmp));
        if (folder) {
            files.add(Manifest.FILE);
        }
        Manifest m = manifest(sources, components, files.stream().sorted().toList(), records);
        StagedOutput.publish(m, tmp, target, manifestPath, folder);
        Trace.mark("published");
        progress.done();
        return m;
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

    private Output outputOf(SourcePlan.Part part, boolean folder, Path target, String srcRel) {
        if (!folder) { // a part keeps the source's name: merge renames it to DST's
            return new Output("", partOf != null ? outputName(part.checkpoint().shards().getFirst()) : target.getFileName().toString());
        }
        if (part.component().isPth()) {
            Path parent = Path.of(srcRel).getParent();
            return new Output(parent == null ? "" : parent.toString(), SourcePlan.pthOutputName(part.component().path()));
        }
        return new Output(srcRel, null);
    }

    /**
     * Converts the component's shards (only those of this part when assigned is not null) into out, adding every
     * shard to sources and the written tensors to records. Returns each shard's output file name, in shard order.
     */
    private List<String> convertComponent(SourcePlan.Part part, Path out, Output o, Path srcRoot, List<Manifest.Source> sources,
            List<Manifest.TensorRecord> records, Map<String, Integer> assigned) throws Exception {
        Checkpoint cp = part.checkpoint();
        Set<String> names = new HashSet<>();
        cp.tensors().forEach(t -> names.add(t.name()));
        Planner planner = part.planner();
        boolean marker = options.layout() == Layout.COMFY_LEGACY;
        String legacyMarker = part.prefix() + Layout.LEGACY_MARKER;
        if (marker && names.contains(legacyMarker)) {
            throw new ConvertException("cannot add the marker tensor '" + legacyMarker
                    + "': the source already has a tensor of that name");
        }
        List<TensorFile> shards = cp.shards();
        List<String> outNames = shards.stream().map(shard -> o.file() != null ? o.file() : outputName(shard)).toList();
        for (TensorFile shard : shards) {
            sources.add(new Manifest.Source(part.name(), sourceName(shard, srcRoot), Files.size(shard.path())));
        }
        // Shards at once, each tensor by tensor: one shard's final fsync then overlaps the next one's work, and
        // each file has its own writer (writes to one file go one at a time).
        @SuppressWarnings("unchecked")
        List<Manifest.TensorRecord>[] converted = new List[shards.size()];
        long largest = 0;
        for (Checkpoint.Tensor t : cp.tensors()) {
            largest = loras.targets(t.name()) ? Math.max(largest, 4 * t.entry().numel()) : largest;
        }
        merged = new LoraTensors(pool, loras, largest, mergeDevice);
        ChunkBuffers.onThreads(shards.size(), i -> { // shards wait on their loops (and lanes) outside the pool
            TensorFile shard = shards.get(i);
            if (!mine(assigned, sourceName(shard, srcRoot))) {
                converted[i] = List.of();
                return;
            }
            List<Checkpoint.Tensor> tensors = cp.tensors().stream().filter(t -> t.shard() == shard).toList();
            converted[i] = convertShard(part.name(), tensors, planner, out.resolve(outNames.get(i)), names,
                    marker && i == 0 ? legacyMarker : null); // the marker in the first shard only
        });
        String dirPrefix = o.dir().isEmpty() ? "" : o.dir() + "/";
        for (int i = 0; i < shards.size(); i++) {
            for (Manifest.TensorRecord r : converted[i]) {
                records.add(withFile(r, dirPrefix + outNames.get(i)));
            }
        }
        return outNames;
    }

    /** Every converted shard's part: {@link PartOf#assign} over the shards of all converted components. */
    private Map<String, Integer> assign(SourcePlan plan, boolean folder, Path srcRoot) throws java.io.IOException {
        Map<String, Long> sizes = new LinkedHashMap<>();
        for (SourcePlan.Part part : plan.converted()) {
            for (TensorFile sh : part.checkpoint().shards()) {
                sizes.put(sourceName(sh, folder ? srcRoot : null), Files.size(sh.path()));
            }
        }
        return PartOf.assign(sizes, partOf.count());
    }

    /**
     * Publishes a partial output: this part's shards (and, for part 1, every file not converted), with
     * fp8q-part.json saying which part of which plan it is and what merge needs to finish the output.
     */
    private Manifest writePart(Path tmp, Path target, boolean folder, List<Manifest.Source> sources,
            List<Manifest.ComponentRecord> components, List<Manifest.TensorRecord> records,
            List<PartManifest.Shard> shards, List<PartManifest.ComponentOutput> outputs) throws Exception {
        List<String> files = new ArrayList<>(OutputGuard.relativeFiles(tmp));
        files.add(PartManifest.FILE);
        Map<String, Object> settings = settings();
        Manifest m = new Manifest(Manifest.TOOL, VERSION, null, sources, settings, components,
                files.stream().sorted().toList(), records, totals(records));
        Map<String, Object> planned = new LinkedHashMap<>();
        planned.put("version", VERSION);
        planned.put("parts", partOf.count());
        planned.put("sources", sources);
        planned.put("settings", settings);
        planned.put("components", components);
        planned.put("key", options.pthKey() == null ? "" : options.pthKey());
        planned.put("file_output", !folder);
        String fingerprint = java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256")
                .digest(Manifest.JSON.writeValueAsBytes(planned))).substring(0, 16);
        new PartManifest(Manifest.TOOL, VERSION, partOf.index(), partOf.count(), fingerprint, options.commandLine(), dstArg,
                !folder, shards, outputs, m).write(tmp.resolve(PartManifest.FILE));
        FileTrees.publish(tmp, target);
        Trace.mark("published");
        progress.done();
        return m;
    }

    /** A shard as the manifest's sources name it: relative to SRC (a file SRC: its name). */
    private static String sourceName(TensorFile shard, Path srcRoot) {
        Path p = shard.path().toAbsolutePath().normalize();
        return srcRoot == null ? p.getFileName().toString() : srcRoot.relativize(p).toString();
    }

    /** Whether this run writes the shard: always, unless it is one part of several and the shard is another's. */
    private boolean mine(Map<String, Integer> assigned, String shard) {
        return assigned == null || assigned.get(shard) == partOf.index();
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

    static Manifest.TensorRecord withFile(Manifest.TensorRecord r, String file) {
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
                specs.add(new TensorSpec(scale, options.layout().scaleDType(options.scaling()),
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
        metadata.putAll(options.layout().shardMetadata(layers, options.scaling()));
        if (marker != null) {
            specs.add(new TensorSpec(marker, DType.F8_E4M3, new long[] {0}));
        }
        Map<String, QuantResult> results = new ConcurrentHashMap<>();
        TensorQuantizer quantizer = new TensorQuantizer(pool);
        // merged weights are quantized one or two at a time: smaller chunks spread each one over the cores
        TensorQuantizer mergedQuantizer = new TensorQuantizer(pool, QuantKernel.best(), 1 << 20);
        Trace.mark(target.getFileName() + ": start");
        try (SafetensorsWriter w = SafetensorsWriter.create(target, metadata, specs)) {
            ChunkBuffers.Each<Job> convert = j -> {
                TensorEntry e = j.source().entry();
                MemorySegment data = j.source().data();
                if (j.decision().action() == Action.QUANTIZE) {
                    QuantResult r;
                    try {
                        if (merged.targets(e.name())) { // the merged weight, rounded once to float32, takes the F32 path
                            Trace.mark(e.name(), "merge");
                            try (LoraTensors.Merged m = merged.float32(j.source())) {
                                Trace.mark(e.name(), "merged");
                                // the first ones come from the GPU within half a second, before the JIT has
                                // compiled the vector kernel: waiting for it beat the scalar kernel (H200 machine)
                                VectorQuantKernel.awaitReady(2000);
                                r = mergedQuantizer.quantize(e.name(), m.values, DType.F32, e.shape(), options.scaling(),
                                        (el, bytes) -> w.write(e.name(), el, bytes));
                            }
                            Trace.mark(e.name(), "quantized");
                        } else {
                            r = quantizer.quantize(e.name(), data, e.dtype(), e.shape(), options.scaling(),
                                    (el, bytes) -> w.write(e.name(), el, bytes));
                        }
                    } catch (NonFiniteException nf) {
                        throw new ConvertException(j.source().shard().path() + ": " + nf.getMessage());
                    }
                    if (r.amax() == 0f) {
                        progress.warn("tensor '" + e.name() + "' is all zeros: scale " + (options.scaling().mx() ? "2^-127 (E8M0 byte 0)" : "1.0"));
                    }
                    w.write(j.scaleName(), MemorySegment.ofArray(options.layout().scaleBytes(options.scaling(), r.scales(), e.shape())));
                    results.put(e.name(), r);
                } else if (merged.targets(e.name())) {
                    merged.writeKept(j.source(), j.outType(), w);
                } else {
                    copy(w, e, data, j.outType());
                }
                release(data);
                progress.advance(e.byteSize());
            };
            // tensors in parallel too (small ones alone cannot fill the cores); merged weights in a few lanes
            Predicate<Job> lane = j -> j.decision().action() == Action.QUANTIZE && merged.targets(j.source().name());
            merged.run(jobs.stream().filter(lane.negate()).toList(), jobs.stream().filter(lane).toList(), convert);
            Trace.mark(target.getFileName() + ": tensors written");
            w.commit(); // the marker holds no bytes
            Trace.mark(target.getFileName() + ": committed");
            return records(component, jobs, results, w, target, marker);
        }
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
        Map<String, Object> settings = settings();
        List<Manifest.LoraRecord> loraRecords = null;
        if (!loras.isEmpty()) {
            settings.put("lora_merge", LoraMerge.NOTE);
            loraRecords = loras.applied().stream().map(a -> new Manifest.LoraRecord(a.file().toAbsolutePath().normalize()
                    .toString(), a.crc32c(), a.strength(), a.style(), a.keysApplied(), a.targets(), a.skipped())).toList();
        }
        return new Manifest(Manifest.TOOL, VERSION, options.commandLine(), sources, settings, components, files, records,
                totals(records), loraRecords);
    }

    /** The options that decide the output's bytes, as the manifest records them. */
    private Map<String, Object> settings() {
        Map<String, Object> settings = new LinkedHashMap<>();
        settings.put("preset", options.preset());
        settings.put("components", options.components());
        settings.put("scaling", options.scaling().describe());
        settings.put("scale_dtype", options.scaling().mx() ? "e8m0" : options.scaling().scaleDType() == DType.BF16 ? "bf16" : "f32");
        settings.put("layout", options.layout().id());
        settings.put("preserve_dtype", options.preserveAsBf16() ? "bf16" : "keep");
        settings.put("nonfinite", options.nonFinitePreserve() ? "preserve" : "refuse");
        settings.put("ignore", options.rules().ignore().stream().map(Object::toString).toList());
        settings.put("quantize", options.rules().quantize().stream().map(Object::toString).toList());
        return settings;
    }

    /** Counts and bytes of a manifest's tensor records (source bytes from their source dtype and shape). */
    public static Manifest.Totals totals(List<Manifest.TensorRecord> records) {
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
        return new Manifest.Totals(records.size(), q, p, srcBytes, outBytes);
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
