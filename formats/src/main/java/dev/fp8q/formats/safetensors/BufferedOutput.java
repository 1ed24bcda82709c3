package dev.fp8q.formats.safetensors;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.locks.ReentrantLock;

/** Writes through the page cache, with background flushes while the file grows (see {@link Flusher}). */
final class BufferedOutput implements Output {

    private final FileChannel channel;
    private final Flusher flusher;
    /**
     * One write at a time: buffered writes to one file serialize on its inode lock anyway, and threads waiting
     * there spin (on 16 cores they burned 12 s of system time in a 3 s conversion; parked here, 2.5 s).
     */
    private final ReentrantLock writeLock = new ReentrantLock();

    BufferedOutput(Path file, boolean flushWhileWriting) throws IOException {
        this.channel = FileChannel.open(file, StandardOpenOption.WRITE);
        this.flusher = new Flusher(channel, flushWhileWriting ? Flusher.EVERY : 0);
    }

    @Override
    public void write(long position, MemorySegment bytes) throws IOException {
        final long chunk = 1L << 30; // ByteBuffer views are limited to 2 GiB
        writeLock.lock();
        try {
            for (long done = 0; done < bytes.byteSize(); done += chunk) {
                long n = Math.min(chunk, bytes.byteSize() - done);
                writeFully(channel, bytes.asSlice(done, n).asByteBuffer(), position + done);
            }
        } finally {
            writeLock.unlock();
        }
        flusher.wrote(bytes.byteSize());
    }

    static void writeFully(FileChannel ch, java.nio.ByteBuffer buf, long position) throws IOException {
        long p = position;
        while (buf.hasRemaining()) {
            p += ch.write(buf, p);
        }
    }

    @Override
    public void finish(boolean sync) throws IOException {
        if (sync) {
            flusher.finish();
            channel.force(true);
        }
    }

    @Override
    public void close() throws IOException {
        flusher.await();
        channel.close();
    }
}
