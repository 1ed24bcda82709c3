package dev.fp8q.formats.testing;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;

/**
 * The reference Python tools (safetensors, numpy, ml_dtypes) for interop tests. Uses $FP8Q_PYTHON, else
 * the repository's .venv, creating it from the machine's package mirror when missing. Tests that need it
 * are skipped with a clear message where it cannot be had.
 */
public final class PythonReference {

    private static final String PACKAGES_CHECK = "import safetensors, numpy, ml_dtypes";
    private static Path python;
    private static String unavailable;

    private PythonReference() {}

    public static Path repoDir() {
        return Path.of(System.getProperty("fp8q.repo.dir", ".")).toAbsolutePath().normalize();
    }

    public static Path sharedDir() {
        return Path.of(System.getProperty("fp8q.shared.dir", "../shared")).toAbsolutePath().normalize();
    }

    /** The interpreter, or a skipped test naming why there is none. */
    public static synchronized Path require() {
        if (python == null && unavailable == null) {
            locate();
        }
        Assumptions.assumeTrue(python != null, () -> "SKIPPED: reference Python tools not available (" + unavailable
                + "); install with: python3 -m venv .venv && .venv/bin/pip install safetensors numpy ml_dtypes");
        return python;
    }

    private static void locate() {
        String env = System.getenv("FP8Q_PYTHON");
        Path venv = repoDir().resolve(".venv");
        Path candidate = env != null ? Path.of(env) : venv.resolve("bin/python");
        try {
            if (env == null && !works(candidate)) {
                exec(List.of("python3", "-m", "venv", venv.toString()), 120);
                exec(List.of(venv.resolve("bin/pip").toString(), "install", "-q", "--retries", "0", "--timeout", "3",
                        "safetensors", "numpy", "ml_dtypes"), 300);
            }
            if (works(candidate)) {
                python = candidate;
            } else {
                unavailable = candidate + " cannot import safetensors, numpy, ml_dtypes";
            }
        } catch (IOException | InterruptedException e) {
            unavailable = e.getMessage();
        }
    }

    private static boolean works(Path py) throws IOException, InterruptedException {
        return Files.isExecutable(py) && exec(List.of(py.toString(), "-c", PACKAGES_CHECK), 60).exit == 0;
    }

    public record Result(int exit, String out, String err) {}

    private static Result exec(List<String> cmd, int seconds) throws IOException, InterruptedException {
        Path out = Files.createTempFile("fp8q-py", ".out");
        Path err = Files.createTempFile("fp8q-py", ".err");
        try {
            Process p = new ProcessBuilder(cmd).redirectOutput(out.toFile()).redirectError(err.toFile()).start();
            if (!p.waitFor(seconds, TimeUnit.SECONDS)) {
                p.destroyForcibly();
                throw new IOException("timed out after " + seconds + " s: " + String.join(" ", cmd));
            }
            return new Result(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8),
                    Files.readString(err, StandardCharsets.UTF_8));
        } finally {
            Files.deleteIfExists(out);
            Files.deleteIfExists(err);
        }
    }

    /** Runs a Python script with arguments; fails the test if it does not exit 0. Returns stdout. */
    public static String run(String script, String... args) {
        Path py = require();
        List<String> cmd = new ArrayList<>(List.of(py.toString(), "-c", script));
        cmd.addAll(List.of(args));
        try {
            Result r = exec(cmd, 600);
            assertEquals(0, r.exit, () -> "python failed: " + r.err);
            return r.out;
        } catch (IOException | InterruptedException e) {
            throw new AssertionError(e);
        }
    }
}
