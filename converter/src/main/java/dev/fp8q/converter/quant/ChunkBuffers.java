package dev.fp8q.converter.quant;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.IntStream;

/** Parallel loops over element chunks, each with an off-heap output buffer of its own (bounded memory). */
public final class ChunkBuffers {

    @FunctionalInterface
    public interface Body {
        void run(long from, long to, MemorySegment out) throws Exception;
    }

    /** One output buffer per worker thread, reused: fresh buffers cost an allocation, zeroing and page faults. */
    private static final ThreadLocal<MemorySegment[]> BUFFERS = ThreadLocal.withInitial(() -> new MemorySegment[1]);

    private ChunkBuffers() {}

    private static MemorySegment buffer(long bytes) {
        MemorySegment[] holder = BUFFERS.get();
        if (holder[0] == null || holder[0].byteSize() < bytes) {
            holder[0] = Arena.ofAuto().allocate(bytes, 64);
        }
        return holder[0].asSlice(0, bytes);
    }

    /** Calls body for [from, to) chunks of n elements, with a buffer of (to - from) * outBytesPerElement bytes. */
    public static void forEachChunk(ForkJoinPool pool, long n, long chunk, int outBytesPerElement, Body body)
            throws Exception {
        int chunks = (int) ((n + chunk - 1) / chunk);
        try {
            pool.submit(() -> IntStream.range(0, chunks).parallel().forEach(c -> {
                long from = (long) c * chunk;
                long to = Math.min(n, from + chunk);
                try {
                    body.run(from, to, buffer((to - from) * outBytesPerElement));
                } catch (RuntimeException e) {
                    throw e;
                } catch (Exception e) {
                    throw new ChunkFailure(e);
                }
            })).get();
        } catch (ExecutionException e) {
            Throwable t = e.getCause();
            while (t instanceof ChunkFailure || (t instanceof RuntimeException && t.getCause() instanceof ChunkFailure)) {
                t = t.getCause();
            }
            if (t instanceof Exception ex) {
                throw ex;
            }
            throw e;
        }
    }

    private static final class ChunkFailure extends RuntimeException {
        ChunkFailure(Exception cause) {
            super(cause);
        }
    }
}
