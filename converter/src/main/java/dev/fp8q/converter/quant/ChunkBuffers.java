package dev.fp8q.converter.quant;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.atomic.AtomicReference;

/** Parallel loops over element chunks (each with an off-heap output buffer of its own: bounded memory) and over tensors. */
public final class ChunkBuffers {

    @FunctionalInterface
    public interface Body {
        void run(long from, long to, MemorySegment out) throws Exception;
    }

    @FunctionalInterface
    public interface Each<T> {
        void run(T item) throws Exception;
    }

    @FunctionalInterface
    public interface Indexed {
        void run(int index) throws Exception;
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
        forEachIndex(pool, chunks, c -> {
            long from = (long) c * chunk;
            long to = Math.min(n, from + chunk);
            body.run(from, to, buffer((to - from) * outBytesPerElement));
        });
    }

    /** Calls body for every item in parallel (items may themselves run parallel loops in the same pool). */
    public static <T> void forEach(ForkJoinPool pool, List<T> items, Each<T> body) throws Exception {
        forEachIndex(pool, items.size(), i -> body.run(items.get(i)));
    }

    /**
     * Calls body for 0 .. count-1 in parallel and returns only when every call has ended, rethrowing the first
     * failure in time. A parallel stream rethrows as soon as one call fails while the others still run, and the
     * caller then closed the mapped sources and deleted the output under them: the error shown was theirs
     * ("Session is acquired", "no such file"), not the first one. After a failure the calls not yet started are
     * skipped (not cancelled: cancelling a running ForkJoinTask completes it for its joiners while it runs on).
     */
    public static void forEachIndex(ForkJoinPool pool, int count, Indexed body) throws Exception {
        inPool(pool, () -> {
            List<ForkJoinTask<?>> tasks = new ArrayList<>(count);
            AtomicReference<Throwable> first = new AtomicReference<>();
            for (int i = 0; i < count; i++) {
                int k = i;
                tasks.add(ForkJoinTask.adapt(() -> {
                    if (first.get() != null) {
                        return;
                    }
                    try {
                        rethrowing(() -> body.run(k));
                    } catch (RuntimeException | Error e) {
                        first.compareAndSet(null, e);
                    }
                }));
            }
            for (ForkJoinTask<?> t : tasks) {
                t.fork();
            }
            for (int i = count - 1; i >= 0; i--) { // the last forked first: it is on top of this worker's queue
                tasks.get(i).quietlyJoin();
            }
            rethrow(first.get());
            return null;
        });
    }

    /**
     * Calls body for 0 .. count-1, each on its own virtual thread, and returns when every call has ended, rethrowing
     * the first failure. For callers that wait (for a slot, or on the loops they hand to a pool) without holding
     * one of the pool's workers: the pool adds no thread for a blocked worker.
     */
    public static void onThreads(int count, Indexed body) throws Exception {
        AtomicReference<Throwable> first = new AtomicReference<>();
        try (java.util.concurrent.ExecutorService threads = java.util.concurrent.Executors.newVirtualThreadPerTaskExecutor()) {
            for (int i = 0; i < count; i++) {
                int k = i;
                threads.execute(() -> {
                    if (first.get() != null) {
                        return;
                    }
                    try {
                        body.run(k);
                    } catch (Throwable t) {
                        first.compareAndSet(null, t);
                    }
                });
            }
        }
        rethrow(first.get());
    }

    /** The first failure of a loop's calls, if any, as it was thrown (a body's checked ones arrive wrapped). */
    private static void rethrow(Throwable failure) throws Exception {
        if (failure instanceof Exception e) {
            throw e;
        }
        if (failure instanceof Error e) {
            throw e;
        }
    }

    /**
     * Runs the task in the pool and waits, rethrowing what a body threw. From one of the pool's own workers it
     * runs in place: nested loops share the workers instead of blocking one on a submit.
     */
    private static <R> R inPool(ForkJoinPool pool, java.util.concurrent.Callable<R> task) throws Exception {
        try {
            if (Thread.currentThread() instanceof java.util.concurrent.ForkJoinWorkerThread w && w.getPool() == pool) {
                return task.call();
            }
            return pool.submit(task).get();
        } catch (ExecutionException | RuntimeException e) {
            Throwable t = e instanceof ExecutionException ? e.getCause() : e;
            while (t instanceof ChunkFailure || (t instanceof RuntimeException && t.getCause() instanceof ChunkFailure)) {
                t = t.getCause();
            }
            if (t instanceof Exception ex) {
                throw ex;
            }
            if (t instanceof Error err) {
                throw err;
            }
            throw e;
        }
    }

    private interface Action {
        void run() throws Exception;
    }

    private static void rethrowing(Action a) {
        try {
            a.run();
        } catch (RuntimeException e) {
            throw e;
        } catch (Exception e) {
            throw new ChunkFailure(e);
        }
    }

    private static final class ChunkFailure extends RuntimeException {
        ChunkFailure(Exception cause) {
            super(cause);
        }
    }
}
