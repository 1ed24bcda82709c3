package dev.fp8q.formats;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.UUID;
import java.util.stream.Stream;

/** Outputs are written into a temporary sibling folder, then published by a rename, or removed. */
public final class FileTrees {

    private FileTrees() {}

    /**
     * Renames a finished temporary folder to DST. An existing DST (--force) is renamed aside first and deleted
     * only after, so at every instant DST is either the old complete output or the new one.
     */
    public static void publish(Path tmp, Path dst) throws IOException {
        if (Files.exists(dst, LinkOption.NOFOLLOW_LINKS)) {
            Path old = dst.resolveSibling("." + dst.getFileName() + ".fp8q-old-" + UUID.randomUUID());
            Files.move(dst, old, StandardCopyOption.ATOMIC_MOVE);
            Files.move(tmp, dst, StandardCopyOption.ATOMIC_MOVE);
            delete(old);
        } else {
            Files.move(tmp, dst, StandardCopyOption.ATOMIC_MOVE);
        }
    }

    /**
     * Publishes a single-file output and its manifest: the manifest first, then the file by one rename over any
     * earlier version, so a file at DST is always complete and never lacks its manifest.
     */
    public static void publishFile(Path file, Path dst, Path manifest, Path manifestDst) throws IOException {
        Files.move(manifest, manifestDst, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        Files.move(file, dst, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
    }

    /** Deletes a file or folder tree (links are removed, not followed); absent is fine. */
    public static void delete(Path p) throws IOException {
        if (!Files.exists(p, LinkOption.NOFOLLOW_LINKS)) {
            return;
        }
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(q);
            }
        }
    }
}
