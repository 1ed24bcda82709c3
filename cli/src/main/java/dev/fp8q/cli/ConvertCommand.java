package dev.fp8q.cli;

import dev.fp8q.converter.Converter;
import dev.fp8q.converter.layout.Layout;
import dev.fp8q.converter.report.MemoryReport;
import dev.fp8q.formats.manifest.Manifest;
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

    @Option(names = "--force", description = "Replace DST if it is an earlier fp8q output (only once the new output is complete).")
    boolean force;

    @Option(names = "--quiet", description = "Print nothing on success (warnings and errors still go to stderr).")
    boolean quiet;

    @Spec
    CommandSpec spec;

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
        Path source = src != null ? src : Inputs.embeddedDefault();
        Path target = dst != null ? dst : Path.of("fp8q-out");
        List<String> cmd = new ArrayList<>(List.of("fp8q"));
        cmd.addAll(spec.commandLine().getParseResult().originalArgs());
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        ProgressBar bar = new ProgressBar(err, !quiet && ProgressBar.terminal());
        long t0 = System.nanoTime();
        Manifest m = new Converter(new Converter.Options(conversion.preset, conversion.userRules(), bf16, keepNonFinite,
                threads != null ? threads : Runtime.getRuntime().availableProcessors(), force, cmd,
                conversion.scaling().withBf16Scales(bf16Scales), outLayout, conversion.pthKey,
                List.copyOf(conversion.components), conversion.loras(), conversion.loraLenient), bar).convert(source, target);
        double secs = (System.nanoTime() - t0) / 1e9;
        if (quiet) {
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
}
