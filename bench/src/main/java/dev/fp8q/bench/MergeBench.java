package dev.fp8q.bench;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.lora.DeltaMerger;
import dev.fp8q.formats.lora.LoraMerge;
import dev.fp8q.verifier.cuda.CudaLoraMerge;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.SplittableRandom;

/**
 * The LoRA merge kernel's throughput: a ROWS x 5120 BF16 weight plus a rank-64 BF16 delta, merged in tasks of PER
 * rows and rounded to float32 as convert --lora does, on THREADS threads at once (each merging the whole weight).
 * Prints GFMA/s per thread for 8 rounds (the first ones include the JIT's warm-up).
 * Usage: MergeBench [ROWS [THREADS [PER]]] (default 2496 1 52).
 * MergeBench gpu [ROWS [RUNS]] (default 13824 9): the same merge on the GPU ({@link CudaLoraMerge}), its time per
 * weight (median; upload, merge and download) and every value against the CPU's, bit for bit (exit 1 otherwise).
 */
public final class MergeBench {

    private MergeBench() {}

    private static Checkpoint.Tensor bf16(String name, long rows, long cols, SplittableRandom random) {
        long n = rows * cols;
        MemorySegment data = Arena.global().allocate(2 * n);
        for (long i = 0; i < n; i++) { // magnitudes 2^-9 .. 2^-8, random signs and mantissas
            data.setAtIndex(Elements.SHORT, i, (short) (0x3B00 | random.nextInt(256) | (random.nextBoolean() ? 0x8000 : 0)));
        }
        return Checkpoint.Tensor.inMemory(name, DType.BF16, new long[] {rows, cols}, data);
    }

    public static void main(String[] args) throws Exception {
        if (args.length > 0 && args[0].equals("gpu")) {
            gpu(args.length > 1 ? Integer.parseInt(args[1]) : 13824, args.length > 2 ? Integer.parseInt(args[2]) : 9);
            return;
        }
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

    private static void gpu(int rows, int runs) throws Exception {
        int cols = 5120;
        int rank = 64;
        SplittableRandom random = new SplittableRandom(1);
        Checkpoint.Tensor w = bf16("w", rows, cols, random);
        List<LoraMerge.Delta> deltas = List.of(new LoraMerge.LowRank("lora", 0.75, bf16("up", rows, rank, random),
                bf16("down", rank, cols, random), rank));
        try (CudaLoraMerge gpu = CudaLoraMerge.open()) {
            System.out.println("device: " + gpu.describe());
            MemorySegment out = gpu.allocate(4L * rows * cols);
            long[] ns = new long[runs];
            for (int i = 0; i < runs; i++) {
                long t0 = System.nanoTime();
                gpu.float32(w, deltas, out);
                ns[i] = System.nanoTime() - t0;
            }
            java.util.Arrays.sort(ns);
            double med = ns[runs / 2] / 1e9;
            System.out.printf("gpu merge %d x %d rank %d: median %.1f ms (%.1f GFMA/s, %.2f GB/s of BF16 in and float32 out)%n",
                    rows, cols, rank, med * 1e3, (double) rows * cols * rank / med / 1e9, 6.0 * rows * cols / med / 1e9);
            DeltaMerger m = new DeltaMerger(w, deltas);
            long bad = java.util.stream.IntStream.range(0, (rows + 63) / 64).parallel().mapToLong(b -> {
                long from = b * 64L;
                long to = Math.min(rows, from + 64);
                double[] v = new double[(int) (to - from) * cols];
                m.merge(from, to, v);
                long n = 0;
                for (int i = 0; i < v.length; i++) {
                    n += Float.floatToIntBits((float) v[i]) == Float.floatToIntBits(out.getAtIndex(Elements.FLOAT, from * cols + i)) ? 0 : 1;
                }
                return n;
            }).sum();
            System.out.println(bad == 0 ? "gpu merge: all " + (long) rows * cols + " values equal the CPU's"
                    : "gpu merge: " + bad + " values DIFFER from the CPU's");
            if (bad != 0) {
                System.exit(1);
            }
        }
    }
}
