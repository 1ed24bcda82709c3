package dev.fp8q.converter;

import dev.fp8q.converter.quant.ChunkBuffers;
import dev.fp8q.converter.quant.VectorQuantKernel;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.lora.DeltaMerger;
import dev.fp8q.formats.lora.LoraMerge;
import dev.fp8q.formats.lora.MergeDevice;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.Semaphore;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;

/**
 * The tensors LoRAs change, merged in float64 rows at a time across the pool's workers and rounded once: a weight
 * to quantize becomes float32 in an off-heap buffer that then takes the converter's ordinary F32 path (scale and
 * encode unchanged); a kept tensor is rounded straight to its output dtype and written. Merged float32 buffers
 * (each the size of the largest target) are pooled within a budget ({@link #BUDGET}), or one buffer when a target
 * is larger, so tensors converted in parallel never hold more than that at once. With a {@link MergeDevice} (a GPU),
 * the weights to quantize that it takes are merged there instead, into its buffers (pinned memory), to the same bits.
 */
final class LoraTensors {

    /** float64 values per row task (a 2 MiB buffer per worker): tens of rows reuse each cached tile of down, and a
     * 5120 x 5120 weight is 100 tasks, to keep 16 cores even. */
    private static final int TASK_VALUES = 1 << 18;

    private final ForkJoinPool pool;
    private final LoraMerge merge;
    private final long bufferBytes;
    private final Semaphore slots;
    /** Merged weights converted at once: the buffers the budget holds, up to MAX_LANES. */
    private final int lanes;
    /**
     * One merge at a time, on every core: lanes merging together finished together and then all quantized
     * together, their writes queueing on the output file while the cores idled. Taking turns, one weight's
     * quantization and writes overlap the next one's merge.
     */
    private final Semaphore mergeTurn = new Semaphore(1);
    /** One weight merging while the last one is quantized and written: more only hold more memory. */
    private static final int MAX_LANES = 2;
    /** Buffers of bufferBytes, reused: a fresh one per target cost its zeroing and page faults every time. */
    private final ConcurrentLinkedQueue<MemorySegment> free = new ConcurrentLinkedQueue<>();

    /** Where the weights it takes are merged instead of the pool's cores (gives null: none); may still be opening. */
    private final Supplier<MergeDevice> device;
    /** The device's buffers, allocated ahead (none without a device). */
    private final CompletableFuture<Void> prefilled;

    LoraTensors(ForkJoinPool pool, LoraMerge merge, long largestTargetBytes, Supplier<MergeDevice> device) {
        this.pool = pool;
        this.merge = merge;
        this.device = device != null ? device : () -> null;
        this.bufferBytes = Math.max(64, largestTargetBytes);
        this.lanes = (int) Math.clamp(BUDGET / bufferBytes, 1, MAX_LANES);
        this.slots = new Semaphore(lanes);
        // a GPU's pinned buffers take ~0.1 s each to allocate: done as soon as it opens, before the first merge
        this.prefilled = merge.isEmpty() ? CompletableFuture.completedFuture(null) : CompletableFuture.runAsync(() -> {
            MergeDevice d = this.device.get();
            for (int i = 0; d != null && i < lanes; i++) {
                free.add(d.allocate(bufferBytes));
            }
        }, r -> Thread.ofVirtual().start(r));
    }

    /** Merged weights take the F32 kernel: its warm-up, started before the first one (once per process). */
    static void warmUpF32() {
        MemorySegment sample = Arena.ofAuto().allocate(4L << 14);
        for (int i = 0; i < 1 << 14; i++) {
            sample.setAtIndex(Elements.FLOAT, i, (float) Math.sin(i) * 0.02f);
        }
        VectorQuantKernel.warmUpInBackground(sample, DType.F32);
    }

    /**
     * Bytes of merged float32 buffers at most (or one buffer when a target is larger): 5/8 of the heap limit, which
     * is also the JVM's limit on off-heap memory, and at least 512 MiB. With -Xmx1g that is two buffers of a 14B
     * FFN weight (283 MB each).
     */
    private static final long BUDGET = Math.max(512L << 20, Runtime.getRuntime().maxMemory() / 8 * 5);

    boolean targets(String name) {
        return merge.targets(name);
    }

    /**
     * body for every item of plain in parallel, and for the merged weights at most `lanes` at a time, each merge
     * and quantization running across the whole pool. The lanes are virtual threads, so a lane waiting for a
     * buffer that another shard holds keeps no worker from the merges: the pool adds no thread for a worker
     * blocked even in a ManagedBlocker, and with one pool task per weight, 14 of 16 workers sat waiting.
     */
    <T> void run(List<T> plain, List<T> merged, ChunkBuffers.Each<T> body) throws Exception {
        Queue<T> queue = new ConcurrentLinkedQueue<>(merged);
        AtomicBoolean failed = new AtomicBoolean();
        ChunkBuffers.onThreads(1 + Math.min(lanes, merged.size()), k -> {
            try {
                if (k == 0) {
                    ChunkBuffers.forEach(pool, plain, body);
                    return;
                }
                for (T t; !failed.get() && (t = queue.poll()) != null; ) {
                    body.run(t);
                }
            } catch (Exception | Error e) {
                failed.set(true);
                throw e;
            }
        });
    }

    /** A merged float32 tensor in a pooled buffer, returned to the pool when closed. */
    final class Merged implements AutoCloseable {
        private final MemorySegment buffer;
        final MemorySegment values;

        private Merged(long bytes) throws InterruptedException {
            slots.acquire();
            prefilled.join();
            MemorySegment b = free.poll();
            MergeDevice d = device.get();
            buffer = b != null ? b : d != null ? d.allocate(bufferBytes) : Arena.ofAuto().allocate(bufferBytes, 64);
            values = buffer.asSlice(0, bytes);
        }

        @Override
        public void close() {
            free.add(buffer);
            slots.release();
        }
    }

    /** The target merged and rounded once to float32 (F32 bytes in source order). */
    Merged float32(Checkpoint.Tensor t) throws Exception {
        List<LoraMerge.Delta> deltas = merge.deltas(t.name());
        DeltaMerger m = new DeltaMerger(t, deltas);
        MergeDevice d = device.get();
        boolean offloaded = d != null && d.takes(t, deltas);
        Trace.mark(t.name(), "factors");
        Merged out = new Merged(4 * t.entry().numel());
        Trace.mark(t.name(), "buffer");
        try {
            mergeTurn.acquire();
        } catch (InterruptedException e) {
            out.close();
            throw e;
        }
        try {
            if (offloaded) {
                d.float32(t, deltas, out.values);
                spotCheck(m, t.name(), out.values, d);
            } else {
                forRows(m, (from, vals, n) -> MemorySegment.copy(float32(vals, n), 0, out.values, Elements.FLOAT,
                        from * m.cols() * 4, n));
            }
        } catch (Exception | Error e) {
            out.close();
            throw e;
        } finally {
            mergeTurn.release();
        }
        return out;
    }

    private static float[] float32(double[] vals, int n) {
        float[] f = FLOATS.get();
        if (f.length < n) {
            f = new float[n];
            FLOATS.set(f);
        }
        for (int i = 0; i < n; i++) {
            f[i] = (float) vals[i];
        }
        return f;
    }

    /**
     * The device's first and last four rows against the CPU's (the register blocks and the column tail of
     * {@link DeltaMerger}, so both of its paths): equal bits, or the conversion stops.
     */
    private static void spotCheck(DeltaMerger m, String name, MemorySegment got, MergeDevice device) throws ConvertException {
        long rows = m.rows();
        for (long from : new long[] {0, Math.max(0, rows - 4)}) {
            long to = Math.min(rows, from + 4);
            int n = (int) ((to - from) * m.cols());
            double[] vals = new double[n];
            m.merge(from, to, vals);
            float[] cpu = float32(vals, n);
            for (int i = 0; i < n; i++) {
                float g = got.getAtIndex(Elements.FLOAT, from * m.cols() + i);
                if (Float.floatToIntBits(g) != Float.floatToIntBits(cpu[i])) {
                    throw new ConvertException(name + ": the merge on " + device.describe() + " gave " + g + " at element "
                            + (from * m.cols() + i) + " where the CPU gives " + cpu[i] + "; rerun with --device cpu");
                }
            }
        }
    }

    /** A kept target merged and rounded once to outType (BF16, F16 or F32), written as it is computed. */
    void writeKept(Checkpoint.Tensor t, DType outType, SafetensorsWriter w) throws Exception {
        DeltaMerger m = new DeltaMerger(t, merge.deltas(t.name()));
        int size = outType.bits() / 8;
        String name = t.name();
        forRows(m, (from, vals, n) -> {
            MemorySegment seg = MemorySegment.ofArray(new byte[n * size]);
            for (int i = 0; i < n; i++) {
                switch (outType) {
                    case BF16 -> seg.setAtIndex(Elements.SHORT, i, Elements.doubleToBf16(vals[i]));
                    case F16 -> seg.setAtIndex(Elements.SHORT, i, Elements.doubleToF16(vals[i]));
                    case F32 -> seg.setAtIndex(Elements.FLOAT, i, (float) vals[i]);
                    default -> throw new IllegalStateException("cannot write a merged tensor as " + outType);
                }
            }
            w.write(name, from * m.cols() * size, seg);
        });
    }

    @FunctionalInterface
    private interface Rows {
        /** Merged values of whole rows starting at row `from`: vals[0, n). */
        void accept(long from, double[] vals, int n) throws Exception;
    }

    private static final ThreadLocal<double[]> BUFFER = ThreadLocal.withInitial(() -> new double[0]);
    private static final ThreadLocal<float[]> FLOATS = ThreadLocal.withInitial(() -> new float[0]);

    private void forRows(DeltaMerger m, Rows body) throws Exception {
        long rows = m.rows();
        int cols = Math.max(1, m.cols());
        long per = Math.max(4, (TASK_VALUES / cols) & ~3L); // whole blocks of 4 rows: the merger's register block
        int tasks = (int) ((rows + per - 1) / per);
        ChunkBuffers.forEachIndex(pool, tasks, k -> {
            long from = k * per;
            long to = Math.min(rows, from + per);
            int n = (int) ((to - from) * m.cols());
            double[] buf = BUFFER.get();
            if (buf.length < n) {
                buf = new double[n];
                BUFFER.set(buf);
            }
            m.merge(from, to, buf);
            body.accept(from, buf, n);
        });
    }
}
