package dev.fp8q.converter;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.TensorFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Size and modification time of every source file when the run began. A file rewritten under a running
 * conversion (a download finishing, a second tool) would make the output a mix of two checkpoints, so the
 * run checks again before publishing and fails instead.
 */
final class SourceSnapshot {

    private record Stamp(long size, long modifiedNanos, Object fileKey) {}

    private final Map<Path, Stamp> stamps;

    private SourceSnapshot(Map<Path, Stamp> stamps) {
        this.stamps = stamps;
    }

    static SourceSnapshot of(Iterable<Checkpoint> checkpoints) throws IOException {
        Map<Path, Stamp> m = new LinkedHashMap<>();
        for (Checkpoint c : checkpoints) {
            for (TensorFile f : c.shards()) {
                m.put(f.path(), stamp(f.path()));
            }
        }
        return new SourceSnapshot(m);
    }

    private static Stamp stamp(Path p) throws IOException {
        BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class);
        return new Stamp(a.size(), a.lastModifiedTime().to(java.util.concurrent.TimeUnit.NANOSECONDS), a.fileKey());
    }

    void verifyUnchanged() throws IOException, ConvertException {
        for (Map.Entry<Path, Stamp> e : stamps.entrySet()) {
            Stamp now;
            try {
                now = stamp(e.getKey());
            } catch (java.nio.file.NoSuchFileException ex) {
                throw new ConvertException(e.getKey() + ": source file removed during conversion; nothing was written");
            }
            if (!now.equals(e.getValue())) {
                throw new ConvertException(e.getKey() + ": source file changed during conversion (size, time or inode); "
                        + "nothing was written, run again once it is stable");
            }
        }
    }
}
