package dev.fp8q.formats.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.channels.ReadableByteChannel;
import java.nio.channels.WritableByteChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class FlusherTest {

    @TempDir
    Path dir;

    @Test
    void flushesInTheBackgroundAsBytesGather() throws IOException {
        try (FileChannel ch = FileChannel.open(dir.resolve("f"), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            Flusher f = new Flusher(ch, 4096);
            for (int i = 0; i < 64; i++) {
                ch.write(ByteBuffer.allocate(1024));
                f.wrote(1024);
                f.await(); // one at a time: without the wait a flush may still run when the next one is due
            }
            f.finish();
            assertEquals(16, f.flushes());
        }
    }

    @Test
    void noneWhenOff() throws IOException {
        try (FileChannel ch = FileChannel.open(dir.resolve("f"), StandardOpenOption.CREATE, StandardOpenOption.WRITE)) {
            Flusher f = new Flusher(ch, 0);
            f.wrote(1L << 40);
            f.finish();
            assertEquals(0, f.flushes());
        }
    }

    @Test
    void aFailedBackgroundFlushFailsTheCommit() throws IOException {
        IOException eio = new IOException("Input/output error");
        AtomicInteger forces = new AtomicInteger();
        try (FileChannel ch = new FailingForce(eio, forces)) {
            Flusher f = new Flusher(ch, 10);
            f.wrote(10);
            assertSame(eio, assertThrows(IOException.class, f::finish));
            assertEquals(1, forces.get());
        }
    }

    /** A channel whose force fails, as fdatasync does on a disk that reports an I/O error. */
    private static final class FailingForce extends FileChannel {
        private final IOException failure;
        private final AtomicInteger forces;

        FailingForce(IOException failure, AtomicInteger forces) {
            this.failure = failure;
            this.forces = forces;
        }

        @Override
        public void force(boolean metaData) throws IOException {
            forces.incrementAndGet();
            throw failure;
        }

        @Override public int read(ByteBuffer dst) { throw new UnsupportedOperationException(); }
        @Override public long read(ByteBuffer[] dsts, int offset, int length) { throw new UnsupportedOperationException(); }
        @Override public int write(ByteBuffer src) { throw new UnsupportedOperationException(); }
        @Override public long write(ByteBuffer[] srcs, int offset, int length) { throw new UnsupportedOperationException(); }
        @Override public long position() { return 0; }
        @Override public FileChannel position(long newPosition) { return this; }
        @Override public long size() { return 0; }
        @Override public FileChannel truncate(long size) { return this; }
        @Override public long transferTo(long position, long count, WritableByteChannel target) { return 0; }
        @Override public long transferFrom(ReadableByteChannel src, long position, long count) { return 0; }
        @Override public int read(ByteBuffer dst, long position) { throw new UnsupportedOperationException(); }
        @Override public int write(ByteBuffer src, long position) { throw new UnsupportedOperationException(); }
        @Override public MappedByteBuffer map(MapMode mode, long position, long size) { throw new UnsupportedOperationException(); }
        @Override public FileLock lock(long position, long size, boolean shared) { throw new UnsupportedOperationException(); }
        @Override public FileLock tryLock(long position, long size, boolean shared) { throw new UnsupportedOperationException(); }
        @Override protected void implCloseChannel() {}
    }
}
