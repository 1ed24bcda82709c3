package dev.fp8q.formats;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.List;

/**
 * While a run writes its temporary output, SIGINT and SIGTERM (which start the JVM's shutdown) remove that
 * output and the run's lock, print one line, and end the process with exit code 130. Closing the returned
 * handle (the run ended either way) disarms it.
 */
public final class Interrupts implements AutoCloseable {

    /** The exit code of an interrupted run, as a shell reports Ctrl-C. */
    public static final int EXIT_CODE = 130;

    private static final java.util.Set<Path> SCRATCH = java.util.concurrent.ConcurrentHashMap.newKeySet();

    private final Thread hook;

    /**
     * A scratch path of this process (the embedded default's extraction) that an interrupt removes too: the hook
     * ends the process with halt, which skips deleteOnExit.
     */
    public static void scratch(Path p) {
        SCRATCH.add(p);
    }

    private Interrupts(Thread hook) {
        this.hook = hook;
    }

    /** Arms the clean-up of these paths (folders are removed whole) until {@link #close}. */
    public static Interrupts cleanUp(List<Path> paths) {
        Thread hook = new Thread(() -> {
            for (int attempt = 0; attempt < 5; attempt++) { // workers may still be creating files in them
                boolean left = false;
                for (Path p : paths) {
                    try {
                        FileTrees.delete(p);
                    } catch (IOException | RuntimeException e) {
                        left = true;
                    }
                    left |= Files.exists(p, LinkOption.NOFOLLOW_LINKS);
                }
                if (!left) {
                    break;
                }
                try {
                    Thread.sleep(20);
                } catch (InterruptedException e) {
                    break;
                }
            }
            for (Path p : SCRATCH) {
                try {
                    FileTrees.delete(p);
                } catch (IOException | RuntimeException e) {
                    // best effort: the partial output is what matters
                }
            }
            System.err.println("fp8q: interrupted: removed the partial output " + paths.getFirst());
            System.err.flush();
            Runtime.getRuntime().halt(EXIT_CODE);
        }, "fp8q-interrupt");
        Runtime.getRuntime().addShutdownHook(hook);
        return new Interrupts(hook);
    }

    @Override
    public void close() {
        try {
            Runtime.getRuntime().removeShutdownHook(hook);
        } catch (IllegalStateException e) {
            // shutting down already: the hook runs
        }
    }
}
