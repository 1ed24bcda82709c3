package dev.fp8q.cli;

import dev.fp8q.converter.Converter;
import dev.fp8q.converter.PartOf;
import dev.fp8q.converter.layout.Layout;
import dev.fp8q.converter.report.MemoryReport;
import dev.fp8q.formats.FileTrees;
import dev.fp8q.formats.Interrupts;
import dev.fp8q.formats.OutputGuard;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.verifier.Calibration;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** fp8q convert SRC DST. */
@Command(name = "convert", mixinStandardHelpOptions = true,
        description = "Convert to FP8 E4M3 (per-tensor, channel or block scales; ComfyUI, compressed-tensors, transformers or vLLM fp8, or ModelOpt layout), with a manifest.")
final class ConvertCommand implements Callable<Integer> {

    @Parameters(index = "0", arity = "0..1", paramLabel = "SRC", description = "Checkpoint or release folder (default: the embedded tiny Wan checkpoint)")
    Path src;

    @Parameters(index = "1", arity = "0..1", paramLabel = "DST",
            description = "Output: a folder for a folder SRC, a .safetensors file for a file (default: ./fp8q-out)")
    Path dst;

    @Mixin
    ConversionOptions conversion;

    @Option(names = "--layout", defaultValue = "comfy",
            description = "comfy, comfy-legacy, compressed-tensors, hf-fp8 (transformers), vllm-fp8 or modelopt (default: ${DEFAULT-VALUE})")
    String layout;

    @Option(names = "--scale-dtype", defaultValue = "f32",
            description = "f32 or bf16: dtype of the scale tensors; bf16 rounds each scale first and encodes with it (default: ${DEFAULT-VALUE})")
    String scaleDtype;

    @Option(names = "--preserve-dtype", defaultValue = "keep", description = "keep or bf16: dtype of preserved F32/F16 tensors")
    String preserveDtype;

    @Option(names = "--nonfinite", defaultValue = "refuse", description = "refuse or preserve: tensors holding NaN/Inf")
    String nonfinite;

    @Option(names = "--threads", description = "Worker threads (default: all cores).")
    Integer threads;

    @Option(names = "--device", defaultValue = "auto", paramLabel = "auto|cpu|cuda",
            description = "Where LoRA merges run: auto takes a GPU when the CUDA driver finds one (compute capability 8.9+), else the CPU; "
                    + "the values are the CPU's bit for bit either way; cuda fails without one (default: ${DEFAULT-VALUE})")
    String device;

    @Option(names = "--calibrate", arity = "0..1", fallbackValue = "max", paramLabel = "max|percentile|mse",
            description = "Also write static activation scales (input_scale), calibrated on the source's chained forward (method default: max)")
    String calibrate;

    @Mixin
    CalibrationOptions calibration;

    @Option(names = "--part", paramLabel = "I/N",
            description = "Convert only part I of N (shards dealt out by size, the same on every machine) into a partial output folder DST; 'fp8q merge' joins the N parts into the single run's output.")
    String part;

    @Option(names = "--force", description = "Replace DST if it is an earlier fp8q output (only once the new output is complete).")
    boolean force;

    @Option(names = "--quiet", description = "Print nothing on success (warnings and errors still go to stderr).")
    boolean quiet;

    @Spec
    CommandSpec spec;

    /**
     * Appends to cmd the command line the single run would have (this one without --part), which the merged
     * manifest records; returns the index of DST in it, where merge puts its own.
     */
    private int singleRun(List<String> args, List<String> cmd) {
        int dstAt = -1;
        int positionals = 0;
        boolean optionsEnded = false;
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (i == 0 && a.equals(spec.name())) {
                cmd.add(a);
                continue;
            }
            if (!optionsEnded && (a.equals("--part") || a.startsWith("--part="))) {
                i += a.equals("--part") ? 1 : 0;
                continue;
            }
            cmd.add(a);
            if (!optionsEnded && a.equals("--")) {
                optionsEnded = true;
            } else if (!optionsEnded && a.startsWith("-") && a.length() > 1) {
                var o = spec.findOption(a.contains("=") ? a.substring(0, a.indexOf('=')) : a);
                if (o != null && !a.contains("=") && o.arity().max() > 0 && i + 1 < args.size()) {
                    cmd.add(args.get(++i)); // the option's value, not a positional
                }
            } else if (++positionals == 2) {
                dstAt = cmd.size() - 1;
            }
        }
        return dstAt;
    }

    @Override
    public Integer call() throws Exception {
        boolean bf16 = switch (preserveDtype.toLowerCase(Locale.ROOT)) {
            case "keep" -> false;
            case "bf16" -> true;
            default -> throw new Fp8q.UsageException("--preserve-dtype must be keep or bf16");
        };
        boolean keepNonFinite = switch (nonfinite.toLowerCase(Locale.ROOT)) {
            case "refuse" -> false;
            case "preserve" -> true;
            default -> throw new Fp8q.UsageException("--nonfinite must be refuse or preserve");
        };
        boolean bf16Scales = switch (scaleDtype.toLowerCase(Locale.ROOT)) {
            case "f32" -> false;
            case "bf16" -> true;
            default -> throw new Fp8q.UsageException("--scale-dtype must be f32 or bf16");
        };
        Layout outLayout;
        try {
            outLayout = Layout.parse(layout);
        } catch (IllegalArgumentException e) {
            throw new Fp8q.UsageException("--layout: " + e.getMessage());
        }
        if (threads != null && threads < 1) {
            throw new Fp8q.UsageException("--threads must be 1 or more, not " + threads);
        }
        PartOf partOf = null;
        if (part != null) {
            try {
                partOf = PartOf.parse(part);
            } catch (IllegalArgumentException e) {
                throw new Fp8q.UsageException("--part: " + e.getMessage());
            }
            if (src == null || dst == null) {
                throw new Fp8q.UsageException("--part needs SRC and DST (the part's own folder, given to 'fp8q merge' later)");
            }
        }
        Path source = src != null ? src : Inputs.embeddedDefault();
        Path target = dst != null ? dst : Path.of("fp8q-out");
        List<String> cmd = new ArrayList<>(List.of("fp8q"));
        int dstArg = -1;
        if (partOf == null) {
            cmd.addAll(spec.commandLine().getParseResult().originalArgs());
        } else {
            dstArg = singleRun(spec.commandLine().getParseResult().originalArgs(), cmd);
        }
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        ProgressBar bar = new ProgressBar(err, !quiet && ProgressBar.terminal());
        long t0 = System.nanoTime();
        var scaling = conversion.scaling().withBf16Scales(bf16Scales);
        if (!conversion.loras().isEmpty() && (partOf != null || calibrate != null)) {
            throw new Fp8q.UsageException("--lora goes with neither --part nor --calibrate: convert with the LoRAs in one run"
                    + " (fp8q calibrate would measure the model without them)");
        }
        Calibration.Options cal = null;
        if (calibrate != null) {
            if (partOf != null) {
                throw new Fp8q.UsageException("--calibrate does not go with --part: merge the parts, then run fp8q calibrate SRC DST");
            }
            cal = calibration.options(CalibrationOptions.method(calibrate), quiet ? s -> { } : s -> err.println("fp8q: calibrate: " + s));
            String refusal = outLayout.staticRefusal(scaling);
            if (refusal != null) {
                throw new Fp8q.UsageException("--calibrate with --layout " + outLayout.id() + ": " + refusal);
            }
        }
        Converter.Options co = new Converter.Options(conversion.preset, conversion.userRules(), bf16, keepNonFinite,
                threads != null ? threads : Runtime.getRuntime().availableProcessors(), force, cmd, scaling, outLayout,
                conversion.pthKey, List.copyOf(conversion.components), conversion.loras(), conversion.loraLenient,
                cal != null);
        Manifest m;
        try (MergeGpu gpu = conversion.loras().isEmpty() ? MergeGpu.NONE
                : MergeGpu.open(RunInputs.device(device), quiet ? s -> { } : s -> err.println("fp8q: convert: " + s))) {
            m = cal == null ? new Converter(co, bar, partOf, dstArg).mergeOn(gpu).convert(source, target)
                    : convertCalibrated(source, target, co, bar, cal, cmd, out, err);
        }
        double secs = (System.nanoTime() - t0) / 1e9;
        if (quiet) {
            return ExitCodes.OK;
        }
        if (partOf != null) {
            long shards = m.tensors().stream().map(Manifest.TensorRecord::file).distinct().count();
            out.printf(Locale.ROOT, "part %s of %s -> %s: %d shard(s), %d tensors quantized, %d preserved, in %.2f s; "
                    + "join the %d parts with: fp8q merge PART... DST%n", partOf, source, target, shards,
                    m.totals().quantized(), m.totals().preserved(), secs, partOf.count());
            return ExitCodes.OK;
        }
        Path written = Converter.outputPath(source, target);
        long copied = m.components().stream().filter(c -> c.action().equals("copied")).count();
        out.printf(Locale.ROOT, "converted %s -> %s: %d tensors quantized, %d preserved%s, in %.2f s%n", source, written,
                m.totals().quantized(), m.totals().preserved(), copied == 0 ? "" : ", " + copied + " component(s) copied unchanged", secs);
        out.println();
        out.print(MemoryReport.of(source, written).table());
        return ExitCodes.OK;
    }

    /**
     * Converts into a private staging folder beside DST, calibrates there, and publishes DST once, complete with its
     * input scales (the staging folder is removed either way, and on an interrupt).
     */
    private static Manifest convertCalibrated(Path source, Path target, Converter.Options co, ProgressBar bar,
            Calibration.Options cal, List<String> cmd, PrintWriter out, PrintWriter err) throws Exception {
        Path written = Converter.outputPath(source, target).toAbsolutePath().normalize();
        Path manifestPath = java.nio.file.Files.isDirectory(source) ? written.resolve(Manifest.FILE) : Manifest.locate(written);
        try {
            OutputGuard.check(source, written, manifestPath, co.force());
        } catch (OutputGuard.RefusedException e) {
            throw new dev.fp8q.converter.ConvertException(e.getMessage());
        }
        java.nio.file.Files.createDirectories(written.getParent());
        Path staging = java.nio.file.Files.createTempDirectory(written.getParent(), ".fp8q-calibrate-");
        Interrupts.scratch(staging);
        try {
            Path staged = staging.resolve(written.getFileName());
            new Converter(co.calibratedOutput(), bar).convert(source, staged);
            return Calibrator.run(source, staged, written, cal, cmd, out, s -> err.println("fp8q: warning: " + s));
        } finally {
            FileTrees.delete(staging);
        }
    }
}
