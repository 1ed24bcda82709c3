package dev.fp8q.bench;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.TensorFile;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.lora.DeltaMerger;
import dev.fp8q.formats.lora.LoraMerge;
import dev.fp8q.formats.safetensors.TensorEntry;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.SplittableRandom;

/**
 * The LoRA merge kernel's throughput: a ROWS x 5120 BF16 weight plus a rank-64 BF16 delta, merged in tasks of PER
 * rows and rounded to float32 as convert --lora does, on THREADS threads at once (each merging the whole weight).
 * Prints GFMA/s per thread for 8 rounds (the first ones include the JIT's warm-up).
 * Usage: MergeBench [ROWS [THREADS [PER]]] (default 2496 1 52).
 */
public final class MergeBench {

    private MergeBench() {}

    /** Tensors held in memory, as a shard. */
    private record InMemory(TensorEntry entry, MemorySegment data) implements TensorFile {
        @Override public Path path() { return Path.of(entry.name()); }
        @Override public Map<String, String> metadata() { return null; }
        @Override public List<TensorEntry> tensors() { return List.of(entry); }
        @Override public Optional<TensorEntry> tensor(String name) { return Optional.of(entry).filter(e -> e.name().equals(name)); }
        @Override public MemorySegment data(TensorEntry t) { return data; }
        @Override public void close() {}
    }

    private static Checkpoint.Tensor bf16(String name, long rows, long cols, SplittableRandom random) {
        long n = rows * cols;
        MemorySegment data = Arena.global().allocate(2 * n);
        for (long i = 0; i < n; i++) { // magnitudes 2^-9 .. 2^-8, random signs and mantissas
            data.setAtIndex(Elements.SHORT, i, (short) (0x3B00 | random.nextInt(256) | (random.nextBoolean() ? 0x8000 : 0)));
        }
        TensorEntry e = new TensorEntry(name, DType.BF16, new long[] {rows, cols}, 0, 2 * n);
        return new Checkpoint.Tensor(e, new InMemory(e, data));
    }

    public static void main(String[] args) throws Exception {
        int rows = args.length > 0 ? Integer.parseInt(args[0]) : 2496;
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : 1;
        int per = args.length > 2 ? Integer.parseInt(args[2]) : 52;
        int cols = 5120;
        int rank = 64;
        SplittableRandom random = new SplittableRandom(1);
        DeltaMerger m = new DeltaMerger(bf16("w", rows, cols, random), List.of(new LoraMerge.LowRank("lora", 1.0,
                bf16("up", rows, rank, random), bf16("down", rank, cols, random), rank)));
        MemorySegment merged = Arena.global().allocate(4L * rows * cols);
        for (int round = 0; round < 8; round++) {
            long t0 = System.nanoTime();
            Thread[] workers = new Thread[threads];
            for (int t = 0; t < threads; t++) {
                workers[t] = Thread.ofPlatform().start(() -> {
                    double[] values = new double[per * cols];
                    float[] rounded = new float[per * cols];
                    for (long from = 0; from < rows; from += per) {
                        int n = (int) (Math.min(rows, from + per) - from) * cols;
                        m.merge(from, from + n / cols, values);
                        for (int i = 0; i < n; i++) {
                            rounded[i] = (float) values[i];
                        }
                        MemorySegment.copy(rounded, 0, merged, Elements.FLOAT, from * cols * 4, n);
                    }
                });
            }
            for (Thread w : workers) {
                w.join();
            }
            long ns = System.nanoTime() - t0;
            System.out.printf("round %d: %.1f ms, %.2f GFMA/s per thread (%d threads)%n", round, ns / 1e6,
                    (double) rows * cols * rank / ns, threads);
        }
    }
}
