package dev.fp8q.cli;

import dev.fp8q.converter.ConvertException;
import dev.fp8q.converter.plan.PlanException;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.OutputGuard;
import dev.fp8q.formats.OutputLock;
import dev.fp8q.verifier.VerifyException;
import dev.fp8q.verifier.check.Bounds;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.util.LinkedHashMap;
import java.util.Map;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** The fp8q command: subcommands, shared options, and one place that turns failures into exit codes. */
@Command(name = "fp8q", mixinStandardHelpOptions = true, version = "fp8q 0.1.0",
        description = "Turns BF16/F16/F32 transformer checkpoints into FP8 E4M3 checkpoints, verifies the error, reports memory.")
public final class Fp8q {

    /**
     * The subcommands in help order. A run builds only the one it names: picocli reflects over every command it
     * is given, and building all of them took a third of the start-up (0.05 s of 0.15 s before the first tensor).
     */
    private static final Map<String, Class<?>> SUBCOMMANDS = new LinkedHashMap<>();

    static {
        SUBCOMMANDS.put("inspect", InspectCommand.class);
        SUBCOMMANDS.put("plan", PlanCommand.class);
        SUBCOMMANDS.put("convert", ConvertCommand.class);
        SUBCOMMANDS.put("calibrate", CalibrateCommand.class);
        SUBCOMMANDS.put("merge", MergeCommand.class);
        SUBCOMMANDS.put("dequantize", DequantizeCommand.class);
        SUBCOMMANDS.put("check", CheckCommand.class);
        SUBCOMMANDS.put("verify", VerifyCommand.class);
        SUBCOMMANDS.put("sensitivity", SensitivityCommand.class);
        SUBCOMMANDS.put("report", ReportCommand.class);
        SUBCOMMANDS.put("testdata", TestdataCommand.class);
        SUBCOMMANDS.put("help", CommandLine.HelpCommand.class);
    }

    @Option(names = "--verbose", scope = CommandLine.ScopeType.INHERIT, description = "Stack traces on errors.")
    boolean verbose;

    /** The command line with its streams; tests call this in-process. */
    public static CommandLine commandLine(PrintWriter out, PrintWriter err) {
        return commandLine(out, err, null);
    }

    /** only: the one subcommand to build, or null for all of them (help and "did you mean" need them all). */
    static CommandLine commandLine(PrintWriter out, PrintWriter err, String only) {
        CommandLine cl = new CommandLine(new Fp8q());
        SUBCOMMANDS.forEach((name, type) -> {
            if (only == null || only.equals(name)) {
                cl.addSubcommand(name, type);
            }
        });
        cl.setOut(out);
        cl.setErr(err);
        cl.setExecutionExceptionHandler(Fp8q::handle);
        return cl;
    }

    public static int run(String[] args, PrintWriter out, PrintWriter err) {
        String first = args.length > 0 ? args[0] : "";
        String only = SUBCOMMANDS.containsKey(first) && !first.equals("help") ? first : null;
        int code = commandLine(out, err, only).execute(args);
        out.flush();
        err.flush();
        return code;
    }

    public static int run(String[] args) {
        return run(args, new PrintWriter(System.out, true, StandardCharsets.UTF_8),
                new PrintWriter(System.err, true, StandardCharsets.UTF_8));
    }

    private static int handle(Exception e, CommandLine cl, CommandLine.ParseResult parsed) {
        boolean verbose = parsed.hasMatchedOption("--verbose")
                || parsed.subcommands().stream().anyMatch(p -> p.hasMatchedOption("--verbose"));
        PrintWriter err = cl.getErr();
        Throwable t = e instanceof UncheckedIOException u ? u.getCause() : e;
        int code;
        String message;
        if (t instanceof FormatException f) {
            code = ExitCodes.INPUT_ERROR;
            message = f.getMessage();
        } else if (t instanceof NoSuchFileException n) {
            code = ExitCodes.INPUT_ERROR;
            message = n.getFile() + ": no such file or folder";
        } else if (t instanceof UsageException || t instanceof ConvertException || t instanceof PlanException
                || t instanceof VerifyException || t instanceof Bounds.BoundsException || t instanceof OutputLock.BusyException
                || t instanceof OutputGuard.RefusedException) {
            code = ExitCodes.INPUT_ERROR;
            message = t.getMessage();
        } else if (t instanceof IOException io) {
            code = ExitCodes.INTERNAL_ERROR;
            message = "I/O error: " + io.getMessage();
        } else {
            code = ExitCodes.INTERNAL_ERROR;
            message = "internal error: " + t;
        }
        err.println("fp8q: error: " + message);
        if (verbose) {
            t.printStackTrace(err);
        }
        err.flush();
        return code;
    }

    /** A bad argument found after parsing (exit 2, one line). */
    public static final class UsageException extends RuntimeException {
        public UsageException(String message) {
            super(message);
        }
    }
}
