package dev.fp8q.formats;

import dev.fp8q.formats.manifest.Manifest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.UUID;
import java.util.function.Consumer;

/**
 * How every command that writes an output (convert, merge, calibrate, dequantize) stages and publishes it: under
 * DST's lock, in a temporary sibling that a failure or Ctrl-C removes, then moved into place with its manifest.
 */
public final class StagedOutput {

    @FunctionalInterface
    public interface Check {
        void run() throws Exception;
    }

    @FunctionalInterface
    public interface Body<T> {
        T write(Path tmp) throws Exception;
    }

    private StagedOutput() {}

    /**
     * Takes target's lock, removes what killed runs into it left (each named to warn), runs recheck (DST's guard,
     * again now that no other run can write it), then body on a new empty temporary folder beside target, which is
     * deleted if body fails.
     */
    public static <T> T write(Path target, Consumer<String> warn, Check recheck, Body<T> body) throws Exception {
        Files.createDirectories(target.getParent());
        Path tmp = target.resolveSibling("." + target.getFileName() + ".fp8q-tmp-" + UUID.randomUUID());
        try (OutputLock lock = OutputLock.acquire(target);
                Interrupts armed = Interrupts.cleanUp(List.of(tmp, OutputLock.lockFile(target)))) {
            for (Path stale : lock.removeStale(target)) {
                warn.accept("removed " + stale + ", left by an interrupted run");
            }
            recheck.run();
            Files.createDirectory(tmp);
            try {
                return body.write(tmp);
            } catch (Exception | Error e) {
                FileTrees.delete(tmp);
                throw e;
            }
        }
    }

    /**
     * Writes m into the staged output and moves it into place: a folder output is tmp itself (its manifest inside);
     * a file output is tmp's file named as target, with its manifest beside it at manifestPath.
     */
    public static void publish(Manifest m, Path tmp, Path target, Path manifestPath, boolean folder) throws IOException {
        if (folder) {
            m.write(tmp.resolve(Manifest.FILE));
            FileTrees.publish(tmp, target);
        } else {
            Path mf = tmp.resolve(manifestPath.getFileName().toString());
            m.write(mf);
            FileTrees.publishFile(tmp.resolve(target.getFileName().toString()), target, mf, manifestPath);
            FileTrees.delete(tmp);
        }
    }
}
