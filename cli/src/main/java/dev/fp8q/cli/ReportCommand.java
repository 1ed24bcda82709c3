package dev.fp8q.cli;

import dev.fp8q.converter.report.MemoryReport;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** fp8q report PATH | SRC DST. */
@Command(name = "report", mixinStandardHelpOptions = true,
        description = "Memory by component and kind of layer: one checkpoint, or before/after of SRC and DST.")
final class ReportCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "PATH|SRC")
    Path first;

    @Parameters(index = "1", arity = "0..1", paramLabel = "DST")
    Path second;

    @Option(names = "--format", defaultValue = "table", description = "table, markdown or json (default: ${DEFAULT-VALUE})")
    String format;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        MemoryReport r = MemoryReport.of(first, second);
        String text = switch (format.toLowerCase(Locale.ROOT)) {
            case "table" -> r.table();
            case "markdown", "md" -> r.markdown();
            case "json" -> r.json() + "\n";
            default -> throw new Fp8q.UsageException("--format must be table, markdown or json");
        };
        spec.commandLine().getOut().print(text);
        return ExitCodes.OK;
    }
}
