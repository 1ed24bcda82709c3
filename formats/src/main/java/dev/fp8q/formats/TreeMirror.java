package dev.fp8q.formats;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.FileVisitResult;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.SimpleFileVisitor;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * Carries every file of a source folder that a run did not convert into its output, byte for byte, so the output
 * loads wherever the source did (configs, tokenizers, schedulers, model_index.json, licences, unconverted
 * components). Links are followed (a Hugging Face cache snapshot is links into its blob store). Large files are
 * hard-linked where the file system allows (their bytes are shared, never written), small ones copied so that
 * editing DST's configs never edits SRC's. {@code .git} is not carried: it holds the source's own history.
 */
public final class TreeMirror {

    /** Files at or above this size are hard-linked when possible. */
    static final long LINK_AT = 16L << 20;

    private TreeMirror() {}

    /**
     * Copies into out every file under src that is not in skip (absolute, normalized source paths) and whose
     * relative path out does not hold yet. Returns the relative paths carried.
     */
    public static List<String> carry(Path src, Path out, Set<Path> skip, boolean sync) throws IOException {
        List<String> carried = new ArrayList<>();
        Path root = src.toAbsolutePath().normalize();
        Files.walkFileTree(root, Set.of(java.nio.file.FileVisitOption.FOLLOW_LINKS), Integer.MAX_VALUE,
                new SimpleFileVisitor<>() {
                    @Override
                    public FileVisitResult preVisitDirectory(Path dir, BasicFileAttributes attrs) {
                        return dir.getFileName() != null && dir.getFileName().toString().equals(".git") && !dir.equals(root)
                                ? FileVisitResult.SKIP_SUBTREE : FileVisitResult.CONTINUE;
                    }

                    @Override
                    public FileVisitResult visitFile(Path file, BasicFileAttributes attrs) throws IOException {
                        if (!attrs.isRegularFile() || skip.contains(file)) {
                            return FileVisitResult.CONTINUE;
                        }
                        String rel = root.relativize(file).toString();
                        Path target = out.resolve(rel);
                        if (Files.exists(target)) {
                            return FileVisitResult.CONTINUE;
                        }
                        Files.createDirectories(target.getParent());
                        place(file.toRealPath(), target, attrs.size(), sync);
                        carried.add(rel.replace('\\', '/'));
                        return FileVisitResult.CONTINUE;
                    }
                });
        return carried;
    }

    /**
     * Puts a file at target by a hard link where the file system allows, else by a copy (fsynced with sync): for
     * files that nobody edits in place, such as the shards of a partial output that merge assembles.
     */
    public static void link(Path file, Path target, boolean sync) throws IOException {
        place(file.toRealPath(), target, Long.MAX_VALUE, sync);
    }

    private static void place(Path real, Path target, long size, boolean sync) throws IOException {
        if (size >= LINK_AT) {
            try {
                Files.createLink(target, real);
                return;
            } catch (IOException | UnsupportedOperationException e) {
                // another file system, or links not allowed: copy
            }
        }
        Files.copy(real, target);
        if (sync) {
            try (FileChannel ch = FileChannel.open(target, StandardOpenOption.WRITE)) {
                ch.force(true);
            }
        }
    }
}
