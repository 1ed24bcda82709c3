package dev.fp8q.converter.quant;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Amax;
import dev.fp8q.formats.codec.E4M3Table;
import dev.fp8q.formats.codec.Elements;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.concurrent.ForkJoinPool;

/**
 * E4M3 quantization of a mapped BF16/F16/F32 tensor, in parallel chunks. 16-bit sources go through a
 * histogram of the 65536 bit patterns (amax, NaN/Inf count and the error figures follow exactly from it) and
 * the 64 KiB encode table: two cheap scalar passes that run at full speed from the first tensor, with no
 * warm-up to wait for (on 16 cores they beat the vector kernel by 1.4x: docs/BENCHMARKS.md). F32 and channel
 * and block scaling ({@link GridQuantizer}) go through a {@link QuantKernel}.
 */
public final class TensorQuantizer {

    /** Elements per parallel chunk. */
    public static final int CHUNK = 1 << 22;

    /** Receives encoded chunks: element offset and the bytes (valid only during the call). */
    @FunctionalInterface
    public interface Sink {
        void accept(long element, MemorySegment bytes) throws Exception;
    }

    private final ForkJoinPool pool;
    private final QuantKernel kernel;
    /** Elements per parallel chunk of the per-tensor F32 path. */
    private final int chunk;

    public TensorQuantizer(ForkJoinPool pool) {
        this(pool, QuantKernel.best());
    }

    public TensorQuantizer(ForkJoinPool pool, QuantKernel kernel) {
        this(pool, kernel, CHUNK);
    }

    /**
     * With chunk elements per parallel chunk of the per-tensor F32 path: smaller chunks for a tensor quantized
     * while few others are (a merged weight), so it alone spreads over the cores. Only the order in which the
     * error figures are summed changes, not a byte.
     */
    public TensorQuantizer(ForkJoinPool pool, QuantKernel kernel, int chunk) {
        this.pool = pool;
        this.kernel = kernel;
        this.chunk = chunk;
    }

    static int chunks(long n) {
        return chunks(n, CHUNK);
    }

    private static int chunks(long n, int chunk) {
        return (int) ((n + chunk - 1) / chunk);
    }

    /** Quantizes with one scale, amax/448 (1.0 for an all-zero tensor), writing chunks to the sink. */
    public QuantResult quantize(String name, MemorySegment src, DType dtype, Sink sink) throws Exception {
        return quantize(name, src, dtype, new long[] {src.byteSize() * 8 / dtype.bits()}, Scaling.PER_TENSOR, sink);
    }

    /** Quantizes a tensor of the given shape with the given scaling, writing chunks to the sink. */
    public QuantResult quantize(String name, MemorySegment src, DType dtype, long[] shape, Scaling scaling, Sink sink)
            throws Exception {
        if (dtype != DType.BF16 && dtype != DType.F16 && dtype != DType.F32) {
            throw new IllegalArgumentException("cannot quantize " + dtype);
        }
        if (scaling.mx()) {
            return new MxQuantizer(pool).quantize(name, src, dtype, shape, sink);
        }
        if (scaling.granularity() != Scaling.Granularity.TENSOR) {
            return new GridQuantizer(pool, kernel).quantize(name, src, dtype, shape, scaling, sink);
        }
        return dtype == DType.F32 ? viaKernel(name, src, dtype, scaling, sink) : sixteenBit(name, src, dtype, scaling, sink);
    }

    private QuantResult sixteenBit(String name, MemorySegment src, DType dtype, Scaling scaling, Sink sink)
            throws Exception {
        long n = src.byteSize() / 2;
        long[] hist = new long[65536];
        ChunkBuffers.forEachIndex(pool, chunks(n), c -> {
            Scratch sc = SCRATCH.get();
            Arrays.fill(sc.counts, 0); // clean even after a chunk that failed part-way
            long end = Math.min(n, (long) (c + 1) * CHUNK);
            for (long i = (long) c * CHUNK; i < end; i += Scratch.BLOCK) {
                int len = (int) Math.min(Scratch.BLOCK, end - i);
                MemorySegment.copy(src, Elements.SHORT, 2 * i, sc.values, 0, len);
                histogram(sc.values, len, sc.counts);
            }
            synchronized (hist) {
                drainInto(sc.counts, hist);
            }
        });
        int infExp = dtype == DType.BF16 ? 0x7F80 : 0x7C00;
        long bad = countFrom(hist, infExp);
        if (bad > 0) {
            throw new NonFiniteException(name, bad);
        }
        float amax = Elements.halfToFloat(dtype, largestBelow(hist, infExp));
        float scale = scaling.scaleOf(amax);
        byte[] table = E4M3Table.build(dtype, scale);
        Figures f = errorFigures(hist, table, dtype, scale);
        ChunkBuffers.forEachChunk(pool, n, CHUNK, 1, (from, to, out) -> {
            Scratch sc = SCRATCH.get();
            for (long i = from; i < to; i += Scratch.BLOCK) {
                int len = (int) Math.min(Scratch.BLOCK, to - i);
                MemorySegment.copy(src, Elements.SHORT, 2 * i, sc.values, 0, len);
                lookUp(sc.values, len, table, sc.codes);
                MemorySegment.copy(sc.codes, 0, out, ValueLayout.JAVA_BYTE, i - from, len);
            }
            sink.accept(from, out);
        });
        return new QuantResult(amax, new float[] {scale}, f.signal, f.noise, f.nonzero, f.underflow);
    }

    // The loops over the 65536 patterns are small methods of their own: inside one large method each loop got
    // its own on-stack-replacement compilations, and those took 0.15 CPU-s of C2 time per run on 2 cores.

    /** Adds a worker's counts to the total. */
    private static void drainInto(int[] counts, long[] hist) {
        for (int b = 0; b < 65536; b++) {
            hist[b] += counts[b];
        }
    }

    /** How many values have a magnitude pattern of at least infExp (Inf and NaN). */
    private static long countFrom(long[] hist, int infExp) {
        long bad = 0;
        for (int b = 0; b < 65536; b++) {
            bad += (b & 0x7FFF) >= infExp ? hist[b] : 0;
        }
        return bad;
    }

    /** The largest magnitude pattern present below infExp. */
    private static int largestBelow(long[] hist, int infExp) {
        int max = 0;
        for (int b = 0; b < 65536; b++) {
            int mag = b & 0x7FFF;
            if (hist[b] != 0 && mag < infExp && mag > max) {
                max = mag;
            }
        }
        return max;
    }

    private record Figures(double signal, double noise, long nonzero, long underflow) {}

    /** The quantization's error figures, exactly, from the histogram. */
    private static Figures errorFigures(long[] hist, byte[] table, DType dtype, float scale) {
        double signal = 0;
        double noise = 0;
        long nonzero = 0;
        long underflow = 0;
        for (int b = 0; b < 65536; b++) {
            if (hist[b] == 0) {
                continue;
            }
            double x = Elements.halfToFloat(dtype, b);
            double d = (double) (E4M3.decode(table[b]) * scale);
            signal += hist[b] * x * x;
            noise += hist[b] * (x - d) * (x - d);
            if (x != 0) {
                nonzero += hist[b];
                if (d == 0) {
                    underflow += hist[b];
                }
            }
        }
        return new Figures(signal, noise, nonzero, underflow);
    }

    /**
     * Per-thread arrays for the 16-bit path. Its loops run over heap arrays filled by bulk copies from the mapped
     * source, not over the segment itself: until C2 has compiled them, element-wise segment access runs 10-20x
     * slower than array access (measured: a whole conversion under C1 alone took 9x as long), and on 16 cores
     * every worker spends the first seconds there.
     */
    private static final class Scratch {
        static final int BLOCK = 1 << 15;
        final short[] values = new short[BLOCK];
        final byte[] codes = new byte[BLOCK];
        final int[] counts = new int[65536]; // a chunk holds fewer than 2^31 elements
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private static void histogram(short[] values, int len, int[] counts) {
        for (int j = 0; j < len; j++) {
            counts[values[j] & 0xFFFF]++;
        }
    }

    private static void lookUp(short[] values, int len, byte[] table, byte[] codes) {
        for (int j = 0; j < len; j++) {
            codes[j] = table[values[j] & 0xFFFF];
        }
    }

    /** The arithmetic kernel: a pass for the largest magnitude and one that encodes and sums figures. */
    private QuantResult viaKernel(String name, MemorySegment src, DType dtype, Scaling scaling, Sink sink)
            throws Exception {
        long n = src.byteSize() * 8 / dtype.bits();
        int[] maxima = new int[chunks(n, chunk)];
        ChunkBuffers.forEachIndex(pool, maxima.length,
                c -> maxima[c] = kernel.maxMagnitudeBits(src, dtype, (long) c * chunk, Math.min(n, (long) (c + 1) * chunk)));
        int maxBits = Arrays.stream(maxima).max().orElse(0);
        if (maxBits >= QuantKernel.nonFiniteBits(dtype)) {
            throw new NonFiniteException(name, Amax.of(src, dtype).nonFinite());
        }
        float amax = dtype == DType.F32 ? Float.intBitsToFloat(maxBits) : Elements.halfToFloat(dtype, maxBits);
        float scale = scaling.scaleOf(amax);
        ChunkStats[] stats = new ChunkStats[chunks(n, chunk)];
        ChunkBuffers.forEachChunk(pool, n, chunk, 1, (from, to, out) -> {
            ChunkStats s = new ChunkStats();
            kernel.encode(src, dtype, from, to, scale, out, s);
            stats[(int) (from / chunk)] = s;
            sink.accept(from, out);
        });
        return QuantResult.of(amax, new float[] {scale}, stats);
    }
}
