package dev.fp8q.cli;

import dev.fp8q.formats.DType;
import dev.fp8q.verifier.weights.Dequantizer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** fp8q dequantize DST OUT. */
@Command(name = "dequantize", mixinStandardHelpOptions = true,
        description = "Write an FP8 checkpoint back to BF16/F16/F32 safetensors with the original names, for runtimes without FP8.")
final class DequantizeCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "DST", description = "An FP8 checkpoint (fp8q's or another tool's)")
    Path dst;

    @Parameters(index = "1", paramLabel = "OUT", description = "Output folder")
    Path out;

    @Option(names = "--dtype", defaultValue = "bf16", description = "bf16 (default), f16 or f32")
    String dtype;

    @Option(names = "--force", description = "Replace OUT if it exists (only once the new output is complete).")
    boolean force;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        DType dt = switch (dtype.toLowerCase(Locale.ROOT)) {
            case "bf16" -> DType.BF16;
            case "f16" -> DType.F16;
            case "f32" -> DType.F32;
            default -> throw new Fp8q.UsageException("--dtype must be bf16, f16 or f32");
        };
        if (Files.exists(out) && !force) {
            throw new Fp8q.UsageException(out + " exists (use --force to replace it)");
        }
        if (out.toAbsolutePath().normalize().startsWith(dst.toAbsolutePath().normalize())) {
            throw new Fp8q.UsageException(out + ": OUT must not be inside DST");
        }
        Dequantizer.Result r = Dequantizer.run(dst, out, dt);
        spec.commandLine().getOut().printf("%s: %d FP8 tensor(s) dequantized to %s, %d copied, %d scale tensor(s) dropped, %.2f MiB%n",
                out, r.dequantized(), dt, r.copied(), r.scalesDropped(), r.bytes() / 1048576.0);
        return ExitCodes.OK;
    }
}
