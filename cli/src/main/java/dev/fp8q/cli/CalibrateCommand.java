package dev.fp8q.cli;

import dev.fp8q.verifier.Calibration;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** fp8q calibrate SRC DST: adds or replaces the static input scales of an fp8q output. */
@Command(name = "calibrate", mixinStandardHelpOptions = true,
        description = "Add or replace the static activation scales (input_scale) of an fp8q output, from the source model's chained forward.")
final class CalibrateCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "SRC", description = "The checkpoint DST was converted from")
    Path src;

    @Parameters(index = "1", paramLabel = "DST", description = "An fp8q output (its manifest beside it or in it); rewritten in place")
    Path dst;

    @Option(names = "--method", defaultValue = "max", paramLabel = "max|percentile|mse", description = "How each Linear's amax is taken (default: ${DEFAULT-VALUE})")
    String method;

    @Mixin
    CalibrationOptions calibration;

    @Option(names = "--quiet", description = "No progress lines.")
    boolean quiet;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        List<String> cmd = new ArrayList<>(List.of("fp8q"));
        cmd.addAll(spec.commandLine().getParseResult().originalArgs());
        Calibration.Options o = calibration.options(CalibrationOptions.method(method), quiet ? s -> { } : s -> {
            err.println("fp8q: calibrate: " + s);
            err.flush();
        });
        Path target = dst.toAbsolutePath().normalize();
        Calibrator.run(src, target, target, o, cmd, quiet ? new PrintWriter(java.io.Writer.nullWriter()) : out,
                s -> err.println("fp8q: warning: " + s));
        return ExitCodes.OK;
    }
}
