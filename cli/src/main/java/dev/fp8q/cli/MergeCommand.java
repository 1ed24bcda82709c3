package dev.fp8q.cli;

import dev.fp8q.converter.Merger;
import dev.fp8q.formats.manifest.Manifest;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** fp8q merge PART... DST. */
@Command(name = "merge", mixinStandardHelpOptions = true,
        description = "Join the partial outputs of 'convert --part I/N' (in any order) into one DST, byte for byte the single run's output.")
final class MergeCommand implements Callable<Integer> {

    @Parameters(arity = "2..*", paramLabel = "PART... DST",
            description = "Every part's folder (each once, any order), then the output: a folder, or a .safetensors file for a file SRC")
    List<Path> paths;

    @Option(names = "--force", description = "Replace DST if it is an earlier fp8q output (only once the new output is complete).")
    boolean force;

    @Option(names = "--quiet", description = "Print nothing on success.")
    boolean quiet;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        List<Path> parts = paths.subList(0, paths.size() - 1);
        Path dst = paths.getLast();
        List<String> typed = spec.commandLine().getParseResult().matchedPositional(0).originalStringValues();
        PrintWriter err = spec.commandLine().getErr();
        long t0 = System.nanoTime();
        Manifest m = new Merger(force, new ProgressBar(err, false)).merge(parts, dst, typed.getLast());
        if (!quiet) {
            spec.commandLine().getOut().printf(Locale.ROOT, "merged %d parts -> %s: %d files, %d tensors (%d quantized), in %.2f s%n",
                    parts.size(), dst, m.files().size(), m.totals().tensors(), m.totals().quantized(), (System.nanoTime() - t0) / 1e9);
        }
        return ExitCodes.OK;
    }
}
