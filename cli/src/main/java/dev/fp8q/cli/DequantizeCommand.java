package dev.fp8q.cli;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.OutputGuard;
import dev.fp8q.verifier.weights.Dequantizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
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

    @Parameters(index = "1", paramLabel = "OUT", description = "Output: a folder for a folder DST, a .safetensors file for a file")
    Path out;

    @Option(names = "--dtype", defaultValue = "bf16", description = "bf16 (default), f16 or f32")
    String dtype;

    @Option(names = "--force", description = "Replace OUT if it is an earlier fp8q output (only once the new output is complete).")
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
        List<String> cmd = new ArrayList<>(List.of("fp8q"));
        cmd.addAll(spec.commandLine().getParseResult().originalArgs());
        Dequantizer.Result r = Dequantizer.run(dst, out, dt, force, cmd);
        spec.commandLine().getOut().printf("%s: %d FP8 tensor(s) dequantized to %s, %d copied, %d scale tensor(s) dropped, %.2f MiB%n",
                OutputGuard.outputPath(dst, out), r.dequantized(), dt, r.copied(), r.scalesDropped(), r.bytes() / 1048576.0);
        return ExitCodes.OK;
    }
}
