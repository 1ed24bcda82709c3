package dev.fp8q.formats;

import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.formats.manifest.PartManifest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.stream.Stream;

/**
 * Decides whether a run may write DST. fp8q never deletes or changes anything outside DST, so DST is refused
 * when it is SRC, holds SRC, or lies inside SRC, and an existing DST is replaced (with --force) only when it is
 * empty or an earlier fp8q output: its manifest names every file in it.
 */
public final class OutputGuard {

    /** DST may not be written; the message names what is in the way. */
    public static final class RefusedException extends Exception {
        public RefusedException(String message) {
            super(message);
        }
    }

    private OutputGuard() {}

    /**
     * The path a run from in to out writes: a folder for a folder, a {@code .safetensors} file for a file (the
     * extension added when out lacks it). A file in with an existing folder out is refused: a file gives a file.
     */
    public static Path outputPath(Path in, Path out) throws RefusedException {
        return outputPath(Files.isDirectory(in), in.getFileName().toString(), out);
    }

    /** {@link #outputPath(Path, Path)} for an input known by kind and name (merge: the SRC its parts came from). */
    public static Path outputPath(boolean folder, String inName, Path out) throws RefusedException {
        if (folder) {
            return out;
        }
        if (Files.isDirectory(out)) {
            String stem = inName.replaceFirst("\\.(safetensors|pth|pt)$", "");
            throw new RefusedException(out + " is a folder, and a file gives a file: name the output file, e.g. "
                    + out.resolve(stem + "-" + (stem.contains("fp8") ? "bf16" : "fp8") + ".safetensors"));
        }
        String n = out.getFileName() == null ? "" : out.getFileName().toString();
        return n.isEmpty() || n.endsWith(".safetensors") ? out : out.resolveSibling(n + ".safetensors");
    }

    /**
     * Checks DST against SRC (null: no SRC to protect) and, when it exists, against force.
     * @param manifest where DST's manifest is or would be (a file output's lies beside it)
     */
    public static void check(Path src, Path dst, Path manifest, boolean force) throws RefusedException, IOException {
        if (src != null) {
            checkApart(src, dst, manifest);
        }
        boolean dstExists = Files.exists(dst, LinkOption.NOFOLLOW_LINKS);
        boolean manifestExists = !Files.isDirectory(dst) && Files.exists(manifest, LinkOption.NOFOLLOW_LINKS);
        if (!dstExists && !manifestExists) {
            return;
        }
        Path existing = dstExists ? dst : manifest;
        if (!force) {
            throw new RefusedException(existing + " exists (use --force to replace an earlier fp8q output)");
        }
        if (Files.isSymbolicLink(dst)) {
            throw new RefusedException(dst + " is a symbolic link, not an fp8q output: not replaced");
        }
        if (Files.isDirectory(dst)) {
            checkFolder(dst);
        } else {
            checkFile(dst, manifest, dstExists);
        }
    }

    /** Refuses a DST that is src, holds it or lies inside it, or a manifest that would be written inside src. */
    public static void checkApart(Path src, Path dst, Path manifest) throws RefusedException, IOException {
        Path d = real(dst);
        Path s = real(src);
        if (s.equals(d)) {
            throw new RefusedException(dst + ": DST is SRC; name a new path for the output");
        }
        if (s.startsWith(d)) {
            throw new RefusedException(dst + ": DST holds SRC (" + src + "); name a new path for the output");
        }
        if (d.startsWith(s)) {
            throw new RefusedException(dst + ": DST must not be inside SRC (" + src + ")");
        }
        if (real(manifest).startsWith(s)) {
            throw new RefusedException(manifest + ": the manifest would be written inside SRC");
        }
    }

    private static void checkFolder(Path dst) throws RefusedException, IOException {
        List<String> present = relativeFiles(dst);
        if (present.isEmpty()) {
            return;
        }
        Path mf = dst.resolve(Manifest.FILE);
        Path part = dst.resolve(PartManifest.FILE);
        Manifest m = !Files.exists(mf) && Files.isRegularFile(part) ? earlierPart(part)
                : earlier(mf, dst + " holds files but no fp8q manifest (" + show(present) + ")");
        if (m.files() == null) {
            return; // an output of fp8q 0.1.0, which wrote only its own files
        }
        Set<String> known = new HashSet<>(m.files());
        known.add(Manifest.FILE);
        List<String> extra = present.stream().filter(f -> !known.contains(f)).toList();
        if (!extra.isEmpty()) {
            throw new RefusedException(dst + " holds files that are not part of its fp8q output: " + show(extra)
                    + " (not replaced; move them or name another DST)");
        }
    }

    private static void checkFile(Path dst, Path manifest, boolean dstExists) throws RefusedException {
        if (dstExists && !Files.isRegularFile(dst)) {
            throw new RefusedException(dst + " exists and is not a regular file: not replaced");
        }
        Manifest m = earlier(manifest, (dstExists ? dst : manifest) + " is not an fp8q output (no manifest "
                + manifest.getFileName() + " beside it naming it): not replaced");
        String name = dst.getFileName().toString();
        boolean names = (m.files() != null && m.files().contains(name))
                || m.tensors().stream().anyMatch(r -> name.equals(r.file()));
        if (!names) {
            throw new RefusedException(dst + ": the manifest beside it (" + manifest.getFileName()
                    + ") does not name it: not replaced");
        }
    }

    /** A partial output of convert --part: its manifest lists its files, fp8q-part.json among them. */
    private static Manifest earlierPart(Path part) throws RefusedException {
        try {
            return PartManifest.read(part).manifest();
        } catch (FormatException e) {
            throw new RefusedException(part.getParent() + " holds files and a broken " + PartManifest.FILE + ": not replaced ("
                    + e.getMessage() + ")");
        }
    }

    private static Manifest earlier(Path manifest, String refusal) throws RefusedException {
        if (!Files.isRegularFile(manifest)) {
            throw new RefusedException(refusal);
        }
        try {
            Manifest m = Manifest.read(manifest);
            if (Manifest.TOOL.equals(m.tool())) {
                return m;
            }
        } catch (FormatException e) {
            // not ours: refused below
        }
        throw new RefusedException(refusal + " (" + manifest + " is not an fp8q manifest)");
    }

    /** Every file and link under a folder, relative, '/'-separated; empty folders are not listed. */
    public static List<String> relativeFiles(Path dir) throws IOException {
        try (Stream<Path> s = Files.walk(dir)) {
            return s.filter(p -> !Files.isDirectory(p, LinkOption.NOFOLLOW_LINKS))
                    .map(p -> dir.relativize(p).toString().replace('\\', '/')).sorted().toList();
        }
    }

    private static String show(List<String> files) {
        return files.size() <= 3 ? String.join(", ", files)
                : String.join(", ", files.subList(0, 3)) + " and " + (files.size() - 3) + " more";
    }

    /** The real path of p, or of its nearest existing ancestor with the rest appended (p need not exist). */
    static Path real(Path p) throws IOException {
        Path abs = p.toAbsolutePath().normalize();
        Path existing = abs;
        while (existing != null && !Files.exists(existing)) {
            existing = existing.getParent();
        }
        if (existing == null) {
            return abs;
        }
        return existing.toRealPath().resolve(existing.relativize(abs));
    }
}
