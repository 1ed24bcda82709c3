package dev.fp8q.formats;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;

/**
 * One writer per output folder (convert's DST, dequantize's OUT): an OS lock on the hidden sibling {@code .DST.fp8q-lock}, held for the whole run and
 * removed at the end. Holding it, the run may delete the temporary folders that killed runs into the same
 * DST left behind, since no live run can own them.
 */
public final class OutputLock implements AutoCloseable {

    /** Another run holds the lock. */
    public static final class BusyException extends Exception {
        BusyException(String message) {
            super(message);
        }
    }

    private final Path file;
    private final FileChannel channel;
    private final FileLock lock;

    private OutputLock(Path file, FileChannel channel, FileLock lock) {
        this.file = file;
        this.channel = channel;
        this.lock = lock;
    }

    public static Path lockFile(Path dst) {
        return dst.resolveSibling("." + dst.getFileName() + ".fp8q-lock");
    }

    /** Takes the lock or refuses at once: another run is writing this DST. */
    public static OutputLock acquire(Path dst) throws IOException, BusyException {
        Path file = lockFile(dst);
        for (int attempt = 0; attempt < 5; attempt++) {
            FileChannel ch = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                    StandardOpenOption.WRITE);
            FileLock l;
            try {
                l = ch.tryLock();
            } catch (java.nio.channels.OverlappingFileLockException e) {
                l = null; // held by this JVM (a second run in-process)
            } catch (IOException | RuntimeException e) {
                ch.close();
                throw e;
            }
            if (l == null) {
                ch.close();
                throw new BusyException(dst + ": another fp8q run is writing it (lock held on " + file + ")");
            }
            // The lock is ours only if the path still names the file we locked (a finishing run deletes it).
            String token = ProcessHandle.current().pid() + " " + UUID.randomUUID();
            ch.truncate(0);
            ch.write(ByteBuffer.wrap(token.getBytes(StandardCharsets.UTF_8)), 0);
            try {
                if (Files.readString(file).equals(token)) {
                    return new OutputLock(file, ch, l);
                }
            } catch (NoSuchFileException e) {
                // deleted between our open and our lock: try again on a new file
            }
            l.release();
            ch.close();
        }
        throw new BusyException(dst + ": could not take the lock " + file);
    }

    /** Deletes what killed runs into this DST left: {@code .DST.fp8q-tmp-*} and {@code .DST.fp8q-old-*}. */
    public List<Path> removeStale(Path dst) throws IOException {
        String name = dst.getFileName().toString();
        List<Path> removed = new ArrayList<>();
        try (DirectoryStream<Path> s = Files.newDirectoryStream(dst.getParent(),
                p -> p.getFileName().toString().startsWith("." + name + ".fp8q-tmp-")
                        || p.getFileName().toString().startsWith("." + name + ".fp8q-old-"))) {
            for (Path p : s) {
                FileTrees.delete(p);
                removed.add(p);
            }
        }
        return removed;
    }

    @Override
    public void close() throws IOException {
        try {
            Files.deleteIfExists(file); // while still locked, so no one can lock this file after us
        } finally {
            lock.release();
            channel.close();
        }
    }
}
