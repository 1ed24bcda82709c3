package dev.fp8q.formats.testing;

import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Sends what libFuzzer prints during a fuzz run (a line per input kept, its dictionary: thousands of lines a build)
 * to target/fuzz-logs/CLASS.log and prints one summary line instead. libFuzzer writes to file descriptor 2 from
 * native code, past System.err, so that descriptor is pointed at the log (dup2) for the class. Jazzer's own Java
 * output goes where surefire puts System.err (redirectTestOutputToFile). Findings still fail the test with their
 * exception; the log keeps libFuzzer's side (where it wrote the crashing input).
 */
public final class QuietFuzz implements BeforeAllCallback, AfterAllCallback {

    private static final int STDERR = 2;

    private Path log;
    private int savedFd = -1;

    @Override
    public void beforeAll(ExtensionContext context) throws IOException {
        if (System.getenv("JAZZER_FUZZ") == null) {
            return; // regression runs of the committed inputs print nothing of libFuzzer's
        }
        log = Path.of("target", "fuzz-logs", context.getRequiredTestClass().getSimpleName() + ".log");
        Files.createDirectories(log.getParent());
        Files.writeString(log, "");
        savedFd = redirect(log);
    }

    @Override
    public void afterAll(ExtensionContext context) throws IOException {
        if (savedFd < 0) {
            return;
        }
        call("dup2", savedFd, STDERR);
        call("close", savedFd);
        String done = Files.readAllLines(log, StandardCharsets.UTF_8).stream().filter(l -> l.startsWith("Done "))
                .findFirst().orElse("no 'Done' line: see the log");
        // To the real descriptor 2, which surefire shows as is: its System.out goes to the report files here.
        PrintStream console = new PrintStream(new FileOutputStream(FileDescriptor.err), true, StandardCharsets.UTF_8);
        console.println(context.getRequiredTestClass().getSimpleName() + ": " + done + "; libFuzzer's output in " + log);
    }

    /** Points descriptor 2 at the log; returns a copy of the old one, or -1 where libc cannot be called. */
    private static int redirect(Path file) {
        try (Arena arena = Arena.ofConfined()) {
            int fd = call("open", arena.allocateFrom(file.toAbsolutePath().toString()), 01 | 02000); // O_WRONLY | O_APPEND
            if (fd < 0) {
                return -1;
            }
            int saved = call("dup", STDERR);
            call("dup2", fd, STDERR);
            call("close", fd);
            return saved;
        } catch (Throwable e) {
            return -1; // not Linux, or no native access: the output stays on the console
        }
    }

    private static int call(String name, Object... args) {
        Linker linker = Linker.nativeLinker();
        ValueLayout[] params = new ValueLayout[args.length];
        for (int i = 0; i < args.length; i++) {
            params[i] = args[i] instanceof Integer ? ValueLayout.JAVA_INT : ValueLayout.ADDRESS;
        }
        MethodHandle h = linker.downcallHandle(linker.defaultLookup().find(name).orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, params));
        try {
            return (int) h.invokeWithArguments(args);
        } catch (Throwable e) {
            throw new IllegalStateException(name + " failed", e);
        }
    }
}
