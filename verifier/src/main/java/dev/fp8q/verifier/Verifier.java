package dev.fp8q.verifier;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.KeyPrefix;
import dev.fp8q.formats.lora.LoraMerge;
import dev.fp8q.formats.lora.LoraSpec;
import dev.fp8q.formats.lora.MergedSource;
import dev.fp8q.formats.safetensors.TensorEntry;
import dev.fp8q.formats.Components;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.verifier.check.Bound;
import dev.fp8q.verifier.check.Bounds;
import dev.fp8q.verifier.check.Check;
import dev.fp8q.verifier.check.PairCheck;
import dev.fp8q.verifier.check.WeightCheck;
import dev.fp8q.verifier.cuda.CudaDevice;
import dev.fp8q.verifier.cuda.GpuUnavailableException;
import dev.fp8q.verifier.metrics.ErrorMetrics;
import dev.fp8q.verifier.model.CapturedInputs;
import dev.fp8q.verifier.model.ChainedModel;
import dev.fp8q.verifier.model.ChainedModels;
import dev.fp8q.verifier.qwen.QwenBlock;
import dev.fp8q.verifier.qwen.QwenInputs;
import dev.fp8q.verifier.qwen.QwenNaming;
import dev.fp8q.verifier.qwen.QwenRope;
import dev.fp8q.verifier.run.Linear;
import dev.fp8q.verifier.run.ProbedWeights;
import dev.fp8q.verifier.run.ReferenceWeights;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.wan.WanBlock;
import dev.fp8q.verifier.wan.WanInputs;
import dev.fp8q.verifier.wan.WanNaming;
import dev.fp8q.verifier.weights.ActivationQuantizer.Scheme;
import dev.fp8q.verifier.weights.Fp8Checkpoint;
import dev.fp8q.verifier.weights.ScaleGrid;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.SplittableRandom;
import java.util.TreeSet;
import java.util.function.Consumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * fp8q verify: every FP8 weight against its source, then sample Wan or Qwen-Image blocks rerun three ways (reference,
 * weight-only, W8A8) on the same inputs; other architectures get each sampled Linear checked on its own.
 */
public final class Verifier {

    public enum WeightScope { ALL, SAMPLED, NONE }

    /** Where the block reruns compute: a GPU when one is usable (auto), the CPU, or a GPU or an error (cuda). */
    public enum Device { AUTO, CPU, CUDA }

    /**
     * blocks: null for first, middle and last. grid: video tokens F x H x W. sampledLinears: how many FP8
     * Linears the per-linear check takes when the architecture cannot be run; linearRows: its input rows.
     */
    public record Options(List<Integer> blocks, int[] grid, int contextTokens, long seed, Path activations,
            WeightScope weights, Bounds bounds, int sampledLinears, int linearRows, Consumer<String> log,
            Device device, Whole whole, Scheme actScheme, List<LoraSpec> loras, boolean loraLenient) {

        public Options(List<Integer> blocks, int[] grid, int contextTokens, long seed, Path activations,
                WeightScope weights, Bounds bounds, int sampledLinears, int linearRows, Consumer<String> log,
                Device device) {
            this(blocks, grid, contextTokens, seed, activations, weights, bounds, sampledLinears, linearRows, log, device,
                    null);
        }

        public Options(List<Integer> blocks, int[] grid, int contextTokens, long seed, Path activations,
                WeightScope weights, Bounds bounds, int sampledLinears, int linearRows, Consumer<String> log,
                Device device, Whole whole) {
            this(blocks, grid, contextTokens, seed, activations, weights, bounds, sampledLinears, linearRows, log, device,
                    whole, null, List.of(), false);
        }

        public Options withWhole(Whole w) {
            return new Options(blocks, grid, contextTokens, seed, activations, weights, bounds, sampledLinears,
                    linearRows, log, device, w, actScheme, loras, loraLenient);
        }

        /** W8A8's activation scheme instead of the one the checkpoint's layout declares (null: the declared one). */
        public Options withActScheme(Scheme s) {
            return new Options(blocks, grid, contextTokens, seed, activations, weights, bounds, sampledLinears,
                    linearRows, log, device, whole, s, loras, loraLenient);
        }

        /** The reference is SRC with these LoRAs merged, as convert --lora merged them. */
        public Options withLoras(List<LoraSpec> l, boolean lenient) {
            return new Options(blocks, grid, contextTokens, seed, activations, weights, bounds, sampledLinears,
                    linearRows, log, device, whole, actScheme, List.copyOf(l), lenient);
        }

        public static Options defaults() {
            return new Options(null, new int[] {4, 16, 16}, 512, 0, null, WeightScope.ALL, Bounds.defaults(), 32, 256,
                    s -> { }, Device.AUTO);
        }
    }

    /**
     * verify --whole: the chained forward of the whole model at these timesteps (0..1000; null: three spread over
     * the expert's range) for samples seeds, from captured latents / context when given (else synthetic).
     */
    public record Whole(List<Double> timesteps, int samples, Path latents, Path context, boolean sensitivity) {

        public Whole(List<Double> timesteps, int samples, Path latents, Path context) {
            this(timesteps, samples, latents, context, false);
        }
    }

    static final int HEAD_DIM = 128;
    private static final Pattern BLOCK = Pattern.compile("^blocks\\.(\\d{1,6})\\.");

    private final Options options;
    private final List<Check> checks = new ArrayList<>();
    private final List<VerifyReport.ComponentRun> runs = new ArrayList<>();
    private final List<VerifyReport.StaticScale> staticScales = new ArrayList<>();
    private final Map<String, Double> phases = new LinkedHashMap<>();
    private CudaDevice gpu;
    /** The W8A8 activation scheme of the component being verified. */
    private Scheme scheme = Scheme.TENSOR;

    private Verifier(Options options) {
        this.options = options;
    }

    public static VerifyReport verify(Path source, Path fp8, Options options) throws FormatException, VerifyException {
        return new Verifier(options).run(source, fp8);
    }

    private VerifyReport run(Path source, Path fp8) throws FormatException, VerifyException {
        gpu = openDevice();
        try {
            return runOn(source, fp8);
        } catch (jcuda.CudaException e) {
            throw new VerifyException("the GPU failed (" + e.getMessage().lines().findFirst().orElse("") + "); "
                    + "rerun with --device cpu");
        } finally {
            if (gpu != null) {
                gpu.close();
            }
        }
    }

    private CudaDevice openDevice() throws VerifyException {
        if (options.device() == Device.CPU) {
            return null;
        }
        try {
            CudaDevice d = CudaDevice.open();
            options.log().accept("GPU: " + d.describe());
            return d;
        } catch (GpuUnavailableException e) {
            if (options.device() == Device.CUDA) {
                throw new VerifyException("--device cuda: " + e.getMessage());
            }
            options.log().accept("no GPU (" + e.getMessage() + "): computing on the CPU");
            return null;
        }
    }

    private VerifyReport runOn(Path source, Path fp8) throws FormatException, VerifyException {
        long start = System.nanoTime();
        long flops0 = Linear.flops();
        Optional<Manifest> manifest = readManifest(fp8);
        this.manifest = manifest;
        List<Pair> pairs = pairs(source, fp8, manifest);
        if (!options.loras().isEmpty() && pairs.size() != 1) {
            throw new VerifyException("--lora: DST has " + pairs.size() + " converted components; LoRAs merge into one");
        }
        if (options.loras().isEmpty() && manifest.map(m -> m.loras() != null && !m.loras().isEmpty()).orElse(false)) {
            options.log().accept("DST was converted with LoRAs merged (" + String.join(", ", manifest.get().loras().stream()
                    .map(l -> l.file() + ":" + l.strength()).toList()) + "): pass the same --lora to compare with the merged reference");
        }
        for (Pair p : pairs) { // every component is one model with its source before any is verified
            try (Checkpoint sc = source(p); Checkpoint dc = Checkpoint.open(p.fp8().path())) {
                PairCheck.Result pair = PairCheck.of(sc, dc, recordsOf(manifest, p.fp8().name()));
                if (!pair.oneModel()) {
                    throw new VerifyException(pair.message(p.fp8().name()));
                }
            }
        }
        for (Pair p : pairs) {
            List<Manifest.TensorRecord> records = recordsOf(manifest, p.fp8().name());
            try (Checkpoint sc = source(p); Checkpoint dc = Checkpoint.open(p.fp8().path())) {
                ActSchemes.Declared declared = ActSchemes.declared(p.fp8().path(), manifest,
                        new Fp8Checkpoint(dc, records).hasInputScales());
                scheme = options.actScheme() != null ? options.actScheme() : declared.scheme();
                actNotes = List.of((scheme == Scheme.STATIC ? "w8a8_static (w8a8 beside it: dynamic tensor)" : "w8a8")
                        + ": activations " + scheme.id() + (options.actScheme() != null
                        ? " (--act-scheme; the checkpoint declares " + declared.scheme().id() + ": " + declared.why() + ")"
                        : " (" + declared.why() + ")"));
                component(p.fp8().name(), sc, new Fp8Checkpoint(dc, records), manifest);
            }
        }
        double seconds = (System.nanoTime() - start) / 1e9;
        int failed = (int) checks.stream().filter(c -> !c.passed()).count();
        Map<String, Object> settings = new LinkedHashMap<>();
        settings.put("blocks", options.blocks());
        settings.put("grid", options.grid());
        settings.put("context_tokens", options.contextTokens());
        settings.put("seed", options.seed());
        settings.put("activations", options.activations() == null ? null : options.activations().toString());
        settings.put("weights", options.weights().name().toLowerCase(java.util.Locale.ROOT));
        settings.put("device", gpu == null ? "cpu" : "cuda: " + gpu.describe());
        settings.put("act_scheme", options.actScheme() == null ? "declared" : options.actScheme().id());
        settings.put("bounds", new java.util.TreeMap<>(options.bounds().asMap()));
        return new VerifyReport(Manifest.TOOL, Manifest.TOOL_VERSION, source.toString(), fp8.toString(), settings,
                List.copyOf(runs), List.copyOf(checks), staticScales.isEmpty() ? null : List.copyOf(staticScales),
                new VerifyReport.Summary(checks.size(), failed, failed == 0 && !checks.isEmpty(),
                        (Linear.flops() - flops0) / 1e9, seconds, Map.copyOf(phases)));
    }

    private record Pair(Components.Component source, Components.Component fp8) {}

    /**
     * The reference checkpoint of a pair: SRC itself, or with --lora SRC with the LoRAs merged (resolved as convert
     * resolves them; the weights DST holds in FP8 rounded once to float32, the rest to their own dtype).
     */
    private Checkpoint source(Pair p) throws FormatException {
        Checkpoint sc = Checkpoint.open(p.source().path());
        if (options.loras().isEmpty()) {
            return sc;
        }
        try (Checkpoint dc = Checkpoint.open(p.fp8().path())) {
            List<TensorEntry> entries = sc.tensors().stream().map(Checkpoint.Tensor::entry).toList();
            LoraMerge merge = LoraMerge.resolve(options.loras(), entries,
                    KeyPrefix.of(entries.stream().map(TensorEntry::name).toList()), options.loraLenient());
            Set<String> fp8 = new java.util.HashSet<>();
            dc.tensors().forEach(t -> {
                if (t.entry().dtype() == DType.F8_E4M3 || t.entry().dtype() == DType.F8_E5M2) {
                    fp8.add(t.name());
                }
            });
            return MergedSource.of(sc, merge, fp8);
        } catch (FormatException | RuntimeException e) {
            sc.close();
            throw e;
        }
    }

    private static List<Manifest.TensorRecord> recordsOf(Optional<Manifest> manifest, String component) {
        return manifest.map(m -> m.tensors().stream()
                .filter(r -> component.equals(r.component() == null ? "" : r.component())).toList()).orElse(List.of());
    }

    /**
     * The components to compare: the ones the manifest says were converted (where each came from and went), or,
     * for another tool's output, the components of DST by name. Copied ones are listed in the report, not rerun.
     */
    private List<Pair> pairs(Path source, Path fp8, Optional<Manifest> manifest) throws FormatException, VerifyException {
        List<Pair> out = new ArrayList<>();
        if (manifest.isPresent() && manifest.get().components() != null) {
            for (Manifest.ComponentRecord c : manifest.get().components()) {
                if (!c.action().equals("converted")) {
                    runs.add(new VerifyReport.ComponentRun(c.name(), "none", null, null, List.of(),
                            List.of("copied unchanged by convert: nothing to rerun")));
                    continue;
                }
                Path s = c.source().isEmpty() ? source : source.resolve(c.source());
                Path d = c.output().isEmpty() || !Files.isDirectory(fp8) ? fp8 : fp8.resolve(c.output());
                if (!Files.exists(s)) {
                    throw new VerifyException("component '" + c.name() + "' of " + fp8 + " was converted from "
                            + c.source() + ", which " + source + " does not hold: is SRC the model DST was made from?");
                }
                out.add(new Pair(new Components.Component(c.name(), s), new Components.Component(c.name(), d)));
            }
            return out;
        }
        List<Components.Component> src = Components.of(source);
        for (Components.Component d : Components.of(fp8)) {
            Components.Component s = src.stream().filter(c -> c.name().equals(d.name())).findFirst()
                    .orElseThrow(() -> new VerifyException("component '" + d.name() + "' of " + fp8
                            + " has no counterpart in " + source));
            out.add(new Pair(s, d));
        }
        return out;
    }

    /** The output's manifest, when there is one ({@link Manifest#find}). */
    public static Optional<Manifest> readManifest(Path fp8) throws FormatException {
        return Manifest.find(fp8);
    }

    private List<String> actNotes = List.of();
    /** DST's manifest (its calibration record feeds the static scales section). */
    private Optional<Manifest> manifest = Optional.empty();

    private void component(String name, Checkpoint source, Fp8Checkpoint fp8, Optional<Manifest> manifest)
            throws FormatException, VerifyException {
        List<String> notes = new ArrayList<>(actNotes);
        if (fp8.hasInputScales()) {
            notes.add("w8a8_static: activations through the checkpoint's input_scale, saturating at +-448 as vLLM does");
        } else if (scheme == Scheme.STATIC) {
            notes.add("the static scheme needs input_scale tensors, which this checkpoint lacks: no w8a8_static run");
        }
        boolean ownOutput = manifest.map(m -> Manifest.TOOL.equals(m.tool())).orElse(false);
        if (manifest.isEmpty()) {
            notes.add("no fp8q manifest: scales found by layout naming; codes one step off are not bounded");
        }
        if (fp8.fp8Names().isEmpty()) {
            if (ownOutput && manifest.get().tensors().stream().noneMatch(r -> name.equals(r.component()) && r.action().equals("quantize"))) {
                notes.add("the plan kept every tensor of this component in high precision: nothing to rerun");
                runs.add(new VerifyReport.ComponentRun(name, "none", null, null, List.of(), notes));
                return;
            }
            checks.add(Check.failure(name, "weight", null, "no FP8 E4M3 tensor in the checkpoint: nothing was quantized"));
        }
        Optional<QwenNaming> qwen = QwenNaming.detect(source);
        if (qwen.isPresent() && qwenDim(qwen.get(), source) % QwenRope.HEAD_DIM == 0) {
            qwen(name, qwen.get(), source, fp8, notes, ownOutput);
            return;
        } else if (qwen.isPresent()) {
            notes.add("Qwen-Image names, but dim " + qwenDim(qwen.get(), source) + " is not a multiple of head_dim "
                    + QwenRope.HEAD_DIM + ": checked per linear");
        }
        Optional<WanNaming> naming = WanNaming.detect(source);
        String unrunnable = naming.isPresent() ? wanUnrunnable(naming.get(), source) : null;
        if (naming.isPresent() && unrunnable == null) {
            wan(name, naming.get(), source, fp8, notes, ownOutput);
        } else {
            if (unrunnable != null) {
                notes.add(unrunnable);
            }
            perLinear(name, source, fp8, notes, ownOutput);
        }
    }

    /** Why Wan-named weights cannot run as a Wan block, or null when they can. */
    private static String wanUnrunnable(WanNaming naming, Checkpoint source) throws FormatException {
        Optional<Checkpoint.Tensor> mod = source.tensor(naming.weight(WanNaming.Param.MODULATION, 0));
        long dim = mod.map(t -> t.entry().numel() / 6).orElse(0L);
        return dim > 0 && dim % HEAD_DIM == 0 ? null
                : "Wan names, but dim " + dim + " is not a multiple of Wan's head_dim " + HEAD_DIM + ": checked per linear";
    }

    private void wan(String name, WanNaming naming, Checkpoint source, Fp8Checkpoint fp8, List<String> notes,
            boolean ownOutput) throws FormatException, VerifyException {
        ReferenceWeights reference = new ReferenceWeights(source);
        float[] modulation = reference.tensor(naming.weight(WanNaming.Param.MODULATION, 0));
        int dim = modulation.length / 6;
        int layers = blockCount(source);
        List<Integer> blocks = pickBlocks(layers);
        Set<String> sampled = new LinkedHashSet<>();
        for (String n : fp8.fp8Names()) {
            Matcher m = BLOCK.matcher(n);
            if (m.find() && blocks.contains(Integer.parseInt(m.group(1)))) {
                sampled.add(n);
            }
        }
        weights(name, source, fp8, sampled, ownOutput);

        long t0 = System.nanoTime();
        WanInputs in = options.activations() != null
                ? WanInputs.captured(options.activations(), dim, options.grid())
                : WanInputs.synthetic(naming, dim, options.grid(), options.contextTokens(), options.seed(), reference);
        notes.addAll(in.notes());
        notes.add("every block gets the same input x (blocks are not chained)");
        phase("inputs", t0);

        t0 = System.nanoTime();
        WanBlock block = new WanBlock(naming, dim, HEAD_DIM);
        try (Runs runs = Runs.of(gpu, source, fp8, HEAD_DIM, notes, scheme)) {
            for (int b : blocks) {
                options.log().accept(String.format("block %d: reference run (with per-layer probes)", b));
                ProbedWeights probed = new ProbedWeights(runs.reference(), runs.prober());
                float[] ref = runs.forward(block, b, in, probed);
                Set<String> probedLayers = new TreeSet<>();
                for (ProbedWeights.Probe p : probed.drain()) {
                    probedLayers.add(p.layer() + ".weight");
                    linearChecks(name, b, p);
                }
                options.log().accept(String.format("block %d: weight-only run", b));
                blockChecks(name, b, in.x(), ref, runs.forward(block, b, in, runs.weightOnly()), "weight_only");
                options.log().accept(String.format("block %d: W8A8 run", b));
                blockChecks(name, b, in.x(), ref, runs.forward(block, b, in, runs.w8a8()), "w8a8");
                if (runs.w8a8Simulated() != null) {
                    options.log().accept(String.format("block %d: W8A8 float32 simulation run", b));
                    blockChecks(name, b, in.x(), ref, runs.forward(block, b, in, runs.w8a8Simulated()), "w8a8_simulated");
                }
                if (runs.w8a8Static() != null) {
                    options.log().accept(String.format("block %d: W8A8 static-scale run", b));
                    blockChecks(name, b, in.x(), ref, runs.forward(block, b, in, runs.w8a8Static()), "w8a8_static");
                }
                for (String n : sampled) {
                    Matcher m = BLOCK.matcher(n);
                    if (m.find() && Integer.parseInt(m.group(1)) == b && !probedLayers.contains(n) && n.endsWith(".weight")) {
                        notes.add(n + " is not on the block's text path: checked as a single Linear");
                        singleLinear(name, b, n, runs, source);
                    }
                }
                runs.endBlock();
            }
        }
        phase("blocks", t0);
        wholeModel(name, source, fp8, notes);
        runs.add(new VerifyReport.ComponentRun(name, "wan", naming.name().toLowerCase(java.util.Locale.ROOT), blocks,
                null, notes));
    }

    /** verify --whole: the chained model of the seam, when asked; a checkpoint of blocks only fails it. */
    private void wholeModel(String name, Checkpoint source, Fp8Checkpoint fp8, List<String> notes)
            throws FormatException {
        if (options.whole() == null) {
            return;
        }
        long t0 = System.nanoTime();
        CapturedInputs captured = CapturedInputs.read(options.whole().latents(), options.whole().context());
        Optional<ChainedModel<?>> model = ChainedModels.of(source, new ReferenceWeights(source), options.grid(),
                options.contextTokens(), captured);
        if (model.isEmpty()) {
            checks.add(Check.failure(name, "model_output", null, "--whole needs the model's embeddings and head, "
                    + "which this checkpoint lacks (blocks only?)"));
            return;
        }
        try (Runs whole = Runs.of(gpu, source, fp8, HEAD_DIM, new ArrayList<>(), scheme)) {
            StaticFits fits = whole.w8a8Static() != null ? new StaticFits(whole.reference(), whole.prober()) : null;
            checks.addAll(WholeModel.run(name, model.get(), whole, fp8.fp8Names(), options, captured.timestep(), notes,
                    fits));
            if (fits != null) {
                staticScales.addAll(fits.result(name, calibratedLayers(manifest, name)));
                notes.add("static scales: per FP8 Linear, the amax spread across timesteps and the dB w8a8_static loses "
                        + "against dynamic w8a8 on the reference input where it loses most (the report's static scales section)");
            }
        }
        phase("whole model", t0);
    }

    /** The manifest's settings.calibration.layers entry of a component (layer -> its record), or null. */
    private static Map<?, ?> calibratedLayers(Optional<Manifest> manifest, String component) {
        return manifest.map(Manifest::settings).map(s -> s.get("calibration")).filter(c -> c instanceof Map<?, ?>)
                .map(c -> ((Map<?, ?>) c).get("layers")).filter(l -> l instanceof Map<?, ?>)
                .map(l -> ((Map<?, ?>) l).get(component)).filter(l -> l instanceof Map<?, ?>)
                .map(l -> (Map<?, ?>) l).orElse(null);
    }

    private static long qwenDim(QwenNaming n, Checkpoint source) {
        return source.tensor(n.block(0, "img_mod.1.weight")).map(t -> t.entry().rank() == 2 ? t.entry().dim(1) : 0)
                .orElse(0L);
    }

    /** Qwen-Image dual-stream blocks, three runs like Wan's; block figures per stream (image, text). */
    private void qwen(String name, QwenNaming naming, Checkpoint source, Fp8Checkpoint fp8, List<String> notes,
            boolean ownOutput) throws FormatException, VerifyException {
        ReferenceWeights reference = new ReferenceWeights(source);
        int dim = (int) qwenDim(naming, source);
        Pattern blockName = naming.blockPattern();
        List<Integer> blocks = pickBlocks(blockCount(source, blockName));
        Set<String> sampled = new LinkedHashSet<>();
        for (String n : fp8.fp8Names()) {
            Matcher m = blockName.matcher(n);
            if (m.find() && blocks.contains(Integer.parseInt(m.group(1)))) {
                sampled.add(n);
            }
        }
        weights(name, source, fp8, sampled, ownOutput);

        long t0 = System.nanoTime();
        QwenInputs in = options.activations() != null
                ? QwenInputs.captured(options.activations(), dim, options.grid())
                : QwenInputs.synthetic(naming, dim, options.grid(), options.contextTokens(), options.seed(), reference);
        notes.addAll(in.notes());
        notes.add("every block gets the same img, txt and temb (blocks are not chained); no text mask");
        phase("inputs", t0);

        t0 = System.nanoTime();
        QwenBlock block = new QwenBlock(naming, dim);
        try (Runs runs = Runs.of(gpu, source, fp8, HEAD_DIM, notes, scheme)) {
            if (gpu != null) {
                notes.add("Qwen's RoPE and the joins of the text and image streams run on the host between GPU ops");
            }
            for (int b : blocks) {
                options.log().accept(String.format("block %d: reference run (with per-layer probes)", b));
                ProbedWeights probed = new ProbedWeights(runs.reference(), runs.prober());
                QwenBlock.Streams ref = runs.forward(block, b, in, probed);
                Set<String> probedLayers = new TreeSet<>();
                for (ProbedWeights.Probe p : probed.drain()) {
                    probedLayers.add(p.layer() + ".weight");
                    linearChecks(name, b, p);
                }
                for (String run : List.of("weight_only", "w8a8", "w8a8_simulated", "w8a8_static")) {
                    RunWeights w = switch (run) {
                        case "weight_only" -> runs.weightOnly();
                        case "w8a8" -> runs.w8a8();
                        case "w8a8_static" -> runs.w8a8Static();
                        default -> runs.w8a8Simulated();
                    };
                    if (w == null) {
                        continue;
                    }
                    options.log().accept(String.format("block %d: %s run", b, run));
                    QwenBlock.Streams out = runs.forward(block, b, in, w);
                    blockChecks(name, b, in.img(), ref.img(), out.img(), run, "image");
                    blockChecks(name, b, in.txt(), ref.txt(), out.txt(), run, "text");
                }
                for (String n : sampled) {
                    Matcher m = blockName.matcher(n);
                    if (m.find() && Integer.parseInt(m.group(1)) == b && !probedLayers.contains(n) && n.endsWith(".weight")) {
                        notes.add(n + " is not on the block's path: checked as a single Linear");
                        singleLinear(name, b, n, runs, source);
                    }
                }
                runs.endBlock();
            }
        }
        phase("blocks", t0);
        wholeModel(name, source, fp8, notes);
        runs.add(new VerifyReport.ComponentRun(name, "qwen-image", "diffusers", blocks, null, notes));
    }

    private void perLinear(String name, Checkpoint source, Fp8Checkpoint fp8, List<String> notes, boolean ownOutput)
            throws FormatException {
        List<String> linears = new ArrayList<>();
        for (String n : fp8.fp8Names()) {
            if (n.endsWith(".weight") && fp8.tensor(n).orElseThrow().entry().rank() >= 2) {
                linears.add(n);
            }
        }
        List<String> picked = new ArrayList<>();
        int take = Math.min(options.sampledLinears(), linears.size());
        for (int i = 0; i < take; i++) {
            picked.add(linears.get((int) ((long) i * linears.size() / take)));
        }
        weights(name, source, fp8, new LinkedHashSet<>(picked), ownOutput);
        notes.add("not a Wan DiT: each sampled Linear checked on its own with N(0,1) inputs of "
                + options.linearRows() + " rows (" + picked.size() + " of " + linears.size() + " FP8 Linears)");
        long t0 = System.nanoTime();
        try (Runs runs = Runs.of(gpu, source, fp8, HEAD_DIM, notes, scheme)) {
            for (String n : picked) {
                singleLinear(name, null, n, runs, source);
                runs.endBlock();
            }
        }
        phase("linears", t0);
        runs.add(new VerifyReport.ComponentRun(name, "per-linear", null, null, picked, notes));
    }

    /** One Linear, reference vs FP8 both ways, on seeded N(0,1) inputs. */
    private void singleLinear(String component, Integer block, String weight, Runs runs, Checkpoint source)
            throws FormatException {
        String base = weight.substring(0, weight.length() - ".weight".length());
        Optional<Checkpoint.Tensor> src = source.tensor(weight);
        if (src.isEmpty()) {
            checks.add(Check.failure(component, "linear", base, "FP8 weight has no source tensor of the same name"));
            return;
        }
        long in = src.get().entry().numel() / src.get().entry().dim(0);
        int rows = options.linearRows();
        SplittableRandom r = new SplittableRandom(options.seed() ^ weight.hashCode());
        float[] x = new float[Math.toIntExact(rows * in)];
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) r.nextGaussian();
        }
        ProbedWeights probed = new ProbedWeights(runs.reference(), runs.prober());
        probed.linear(base, x, rows);
        for (ProbedWeights.Probe p : probed.drain()) {
            linearChecks(component, block, p);
        }
    }

    private void linearChecks(String component, Integer block, ProbedWeights.Probe p) {
        String kind = LayerKinds.of(p.layer());
        checks.add(Check.of(component, "linear", block, p.layer(), kind, "weight_only", p.weightOnly(), null, null,
                null, options.bounds().of("linear", "weight_only", kind)));
        checks.add(Check.of(component, "linear", block, p.layer(), kind, "w8a8", p.w8a8(), null, null, null,
                options.bounds().of("linear", "w8a8", kind)));
        if (p.w8a8Simulated() != null) {
            checks.add(Check.of(component, "linear", block, p.layer(), kind, "w8a8_simulated", p.w8a8Simulated(), null,
                    null, null, options.bounds().of("linear", "w8a8", kind)));
        }
        if (p.w8a8Static() != null) {
            checks.add(Check.of(component, "linear", block, p.layer(), kind, "w8a8_static", p.w8a8Static(), null,
                    null, null, options.bounds().of("linear", "w8a8", kind)).withClipped(p.clipped()));
        }
    }

    private void blockChecks(String component, int block, float[] x, float[] ref, float[] out, String run) {
        blockChecks(component, block, x, ref, out, run, null);
    }

    /** Block output and update of one run; stream names which of a two-stream block's streams (else null). */
    private void blockChecks(String component, int block, float[] x, float[] ref, float[] out, String run,
            String stream) {
        String boundRun = run.startsWith("w8a8") ? "w8a8" : run;
        checks.add(Check.of(component, "block_output", block, null, null, run, ErrorMetrics.of(ref, out), null, null,
                null, options.bounds().of("block_output", boundRun, null)).ofStream(stream));
        float[] refUpdate = new float[x.length];
        float[] update = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            refUpdate[i] = ref[i] - x[i];
            update[i] = out[i] - x[i];
        }
        checks.add(Check.of(component, "block_update", block, null, null, run, ErrorMetrics.of(refUpdate, update), null,
                null, null, options.bounds().of("block_update", boundRun, null)).ofStream(stream));
    }

    /** Every FP8 weight (or only the sampled ones) against its source, and the manifest against the files. */
    private void weights(String component, Checkpoint source, Fp8Checkpoint fp8, Set<String> sampled,
            boolean ownOutput) throws FormatException {
        if (options.weights() == WeightScope.NONE) {
            return;
        }
        long t0 = System.nanoTime();
        List<String> names = options.weights() == WeightScope.ALL ? fp8.fp8Names() : List.copyOf(sampled);
        options.log().accept("checking " + names.size() + " FP8 weights against their source");
        for (String n : names) {
            Optional<Checkpoint.Tensor> src = source.tensor(n);
            Checkpoint.Tensor q = fp8.tensor(n).orElseThrow();
            if (src.isEmpty()) {
                checks.add(Check.failure(component, "weight", n, "no source tensor of the same name"));
                continue;
            }
            if (!Arrays.equals(src.get().entry().shape(), q.entry().shape())) {
                checks.add(Check.failure(component, "weight", n, "shape " + Arrays.toString(q.entry().shape())
                        + " differs from the source's " + Arrays.toString(src.get().entry().shape())));
                continue;
            }
            if (!src.get().entry().dtype().isQuantizableSource() && src.get().entry().dtype() != DType.F64) {
                checks.add(Check.failure(component, "weight", n, "source dtype " + src.get().entry().dtype()
                        + " is not a floating type"));
                continue;
            }
            ScaleGrid grid = fp8.scales(n);
            manifestScale(component, fp8, n, grid);
            WeightCheck.Result r = WeightCheck.run(src.get(), q, grid);
            Bound bound = options.bounds().of("weight", null, LayerKinds.of(n));
            if (ownOutput && bound.maxCodesOffByOne() == null) {
                // fp8q rounds exactly (NUMERICS.md): on its own output any changed code is damage.
                bound = bound.overriddenBy(new Bound(null, null, null, 0L, null));
            }
            checks.add(Check.of(component, "weight", null, n, LayerKinds.of(n), null, r.metrics(), r.codesOffByOne(),
                    r.codesFar(), r.underflow(), bound));
        }
        phase("weights", t0);
    }

    /** The manifest's per-tensor scale must be the one in the file. */
    private void manifestScale(String component, Fp8Checkpoint fp8, String n, ScaleGrid grid) {
        Optional<Manifest.TensorRecord> rec = fp8.record(n);
        if (rec.isEmpty() || rec.get().scale() == null) {
            return;
        }
        float inFile = grid.scales()[0];
        if (grid.scales().length != 1 || Float.floatToIntBits(inFile) != Float.floatToIntBits(rec.get().scale())) {
            checks.add(Check.failure(component, "manifest", n, "manifest scale " + rec.get().scale()
                    + " differs from the scale in the file " + inFile));
        }
    }

    private List<Integer> pickBlocks(int layers) throws VerifyException {
        if (layers == 0) {
            throw new VerifyException("the checkpoint has no blocks.N tensors");
        }
        if (options.blocks() == null) {
            return List.copyOf(new TreeSet<>(List.of(0, (layers - 1) / 2, layers - 1)));
        }
        for (int b : options.blocks()) {
            if (b < 0 || b >= layers) {
                throw new VerifyException("block " + b + " does not exist: the checkpoint has blocks 0.." + (layers - 1));
            }
        }
        return List.copyOf(new LinkedHashSet<>(options.blocks()));
    }

    static int blockCount(Checkpoint c) {
        return blockCount(c, BLOCK);
    }

    private static int blockCount(Checkpoint c, Pattern block) {
        return ChainedModels.blockCount(c, block);
    }

    private void phase(String name, long t0) {
        phases.merge(name, (System.nanoTime() - t0) / 1e9, Double::sum);
    }
}
