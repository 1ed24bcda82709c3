package dev.fp8q.formats.safetensors;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Gets a file's written bytes onto the disk while the rest is still being written: after every {@link #EVERY}
 * bytes a background thread calls fdatasync, unless one is still running. The final fsync before the rename
 * then finds little left to write, instead of the whole file (the kernel on a machine with a lot of memory
 * would otherwise hold it all back until then).
 */
final class Flusher {

    static final long EVERY = 256L << 20;

    private final FileChannel channel;
    private final long every;
    private int flushes;
    private final AtomicLong pending = new AtomicLong();
    private Thread running;
    private IOException failure;

    /** every: bytes between flushes; 0 for none. */
    Flusher(FileChannel channel, long every) {
        this.channel = channel;
        this.every = every;
    }

    /** Counts written bytes; starts a flush when enough have gathered and none is running. */
    void wrote(long bytes) {
        if (every == 0 || pending.addAndGet(bytes) < every) {
            return;
        }
        synchronized (this) {
            if (running != null && running.isAlive() || pending.get() < every) {
                return;
            }
            pending.set(0);
            flushes++;
            running = Thread.ofPlatform().daemon().name("fp8q-flush").start(this::flush);
        }
    }

    private void flush() {
        try {
            channel.force(false);
        } catch (IOException e) {
            synchronized (this) {
                if (failure == null && channel.isOpen()) {
                    failure = e;
                }
            }
        }
    }

    /** Waits for a running flush and rethrows what it failed with. */
    void finish() throws IOException {
        await();
        synchronized (this) {
            if (failure != null) {
                throw failure;
            }
        }
    }

    synchronized int flushes() {
        return flushes;
    }

    /** Waits for a running flush, whatever its outcome (before the channel closes). */
    void await() {
        Thread t;
        synchronized (this) {
            t = running;
        }
        if (t != null) {
            try {
                t.join();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        }
    }
}
