package dev.fp8q.converter.quant;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Amax;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Elements;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.ForkJoinPool;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * MXFP8 quantization (OCP MX v1.0): every row of the [rows, cols] view in blocks of 32 values, each block with
 * its own power-of-two scale 2^e, e = {@link Scaling#mxExponent} of the block amax. One pass per row over a heap
 * copy of it, each block's max and codes while its 32 values are in L1. Dividing by a power of two and
 * multiplying by its reciprocal (2^-e, a float32 normal or subnormal, exact for every e) round the same real
 * quotient, so the codes are exactly encode(x / 2^e) as {@link GridQuantizer} writes them.
 *
 * <p>16-bit sources: a value whose quotient q = x / 2^e lies in E4M3's normal range [2^-6, 448] (almost all of
 * them) is rounded to 3 mantissa bits like its own bit pattern, shifted by e: its code comes from the pattern by
 * integer arithmetic, and its error x - decode(code) * 2^e = x - round3(x) does not depend on the block at all. So
 * those values are only counted in a histogram of magnitude patterns per chunk, and the chunk's figures follow
 * from it exactly (as for per-tensor scaling). The others (zero, a 16-bit subnormal source, a quotient that
 * encodes subnormal or saturates) take the exact encoder, their figures summed in float64 in element order.
 */
final class MxQuantizer {

    private final ForkJoinPool pool;

    MxQuantizer(ForkJoinPool pool) {
        this.pool = pool;
    }

    QuantResult quantize(String name, MemorySegment src, DType dtype, long[] shape, TensorQuantizer.Sink sink)
            throws Exception {
        long n = src.byteSize() * 8 / dtype.bits();
        long rows = Scaling.rows(shape);
        int cols = Math.toIntExact(Scaling.cols(shape));
        int gridCols = (cols + Scaling.MX_BLOCK - 1) / Scaling.MX_BLOCK;
        float[] scales = new float[Math.toIntExact(rows * gridCols)];
        long perChunk = Math.max(1, TensorQuantizer.CHUNK / Math.max(cols, 1)) * (long) cols;
        int chunks = n == 0 ? 0 : Math.toIntExact((n + perChunk - 1) / perChunk);
        ChunkStats[] stats = new ChunkStats[chunks];
        float[] chunkAmax = new float[chunks];
        int nonFinite = QuantKernel.nonFiniteBits(dtype);
        HalfFormat half = dtype == DType.F32 ? null : new HalfFormat(dtype);
        ChunkBuffers.forEachChunk(pool, n, perChunk, 1, (from, to, out) -> {
            Row row = ROW.get().fit(cols);
            ChunkStats s = new ChunkStats();
            java.util.Arrays.fill(row.counts, 0); // clean even after a chunk that failed part-way
            int amaxBits = 0;
            for (long r = from / cols; r * cols < to; r++) {
                int at = (int) (r * gridCols);
                int rowMax = half == null ? floatRow(src, r * cols, cols, row, scales, at, s, nonFinite)
                        : halfRow(src, half, r * cols, cols, row, scales, at, s);
                if (rowMax < 0) {
                    throw new NonFiniteException(name, Amax.of(src, dtype).nonFinite());
                }
                amaxBits = Math.max(amaxBits, rowMax);
                MemorySegment.copy(row.codes, 0, out, ValueLayout.JAVA_BYTE, r * cols - from, cols);
            }
            if (half != null) {
                half.addCounted(row.counts, s);
            }
            int c = (int) (from / perChunk);
            stats[c] = s;
            chunkAmax[c] = dtype == DType.F32 ? Float.intBitsToFloat(amaxBits) : Elements.halfToFloat(dtype, amaxBits);
            sink.accept(from, out);
        });
        ChunkStats total = ChunkStats.sum(stats);
        float amax = 0;
        for (float a : chunkAmax) {
            amax = Math.max(amax, a);
        }
        return new QuantResult(amax, scales, total.signal, total.noise, total.nonzero, total.underflow);
    }

    /** BF16 or F16 bit fields: mantissa bits and exponent bias. */
    private record HalfFormat(DType dtype, int mantissa, int bias, int nonFinite) {

        HalfFormat(DType dtype) {
            this(dtype, dtype == DType.BF16 ? 7 : 10, dtype == DType.BF16 ? 127 : 15, QuantKernel.nonFiniteBits(dtype));
        }

        /** The pattern rounded to 3 mantissa bits, nearest even (a carry moves into the exponent). */
        int round3(int mag) {
            int drop = mantissa - 3;
            return (mag + (1 << (drop - 1)) - 1 + ((mag >> drop) & 1)) >> drop << drop;
        }

        /**
         * Adds the figures of the values counted in counts (magnitude pattern -> how many): each has the error
         * x - round3(x), and none is zero or underflows. Exact terms (x has at most 11 significant bits), summed in
         * float64 in pattern order.
         */
        void addCounted(int[] counts, ChunkStats s) {
            double signal = 0;
            double noise = 0;
            long count = 0;
            for (int mag = 0; mag < nonFinite; mag++) {
                int k = counts[mag];
                if (k != 0) {
                    double x = Elements.halfToFloat(dtype, mag);
                    double d = x - Elements.halfToFloat(dtype, round3(mag));
                    signal += k * (x * x);
                    noise += k * (d * d);
                    count += k;
                }
            }
            s.signal += signal;
            s.noise += noise;
            s.nonzero += count;
        }
    }

    /**
     * One BF16 or F16 row: codes into row.codes, scales into scales[at..], values in E4M3's normal range counted in
     * row.counts, the others' figures added to s. Returns the row's max magnitude bits, or -1 for NaN/Inf.
     */
    private static int halfRow(MemorySegment src, HalfFormat f, long first, int cols, Row row, float[] scales, int at,
            ChunkStats s) {
        short[] v = row.halves;
        byte[] codes = row.codes;
        int[] counts = row.counts;
        MemorySegment.copy(src, Elements.SHORT, 2 * first, v, 0, cols);
        int m = f.mantissa();
        int drop = m - 3;
        int roundBias = (1 << (drop - 1)) - 1;
        int rowMax = 0;
        for (int c0 = 0, b = at; c0 < cols; c0 += Scaling.MX_BLOCK, b++) {
            int c1 = Math.min(cols, c0 + Scaling.MX_BLOCK);
            int max = blockMax(v, c0, c1);
            if (max >= f.nonFinite()) {
                return -1;
            }
            rowMax = Math.max(rowMax, max);
            int e = Scaling.mxExponent(Elements.halfToFloat(f.dtype(), max));
            scales[b] = Math.scalb(1f, e);
            // q in [2^-6, 448] for a normal x: x in [2^(e-6), 1.75 * 2^(e+8)], as patterns [lo, lo + span]
            int lo = Math.max(1, e - 6 + f.bias()) << m;
            int span = (((e + 8 + f.bias()) << m) | (6 << drop)) - lo;
            if (span < 0) { // an F16 block of subnormals: none in range
                lo = 1 << 16;
                span = 0;
            }
            int rebias = (e + f.bias() - 7) << 3; // code exponent = x's exponent field - e - (bias - 7)
            for (int j = c0; j < c1; j++) {
                int x = v[j];
                int mag = x & 0x7FFF;
                if (Integer.compareUnsigned(mag - lo, span) <= 0) {
                    codes[j] = (byte) ((x >> 8 & 0x80) | ((mag + roundBias + (mag >> drop & 1)) >> drop) - rebias);
                    counts[mag]++;
                } else {
                    codes[j] = exceptional(f.dtype(), x, e, s);
                }
            }
        }
        return rowMax;
    }

    /** A value outside the counted range: the exact encoder, figures in float64. */
    private static byte exceptional(DType dtype, int bits, int e, ChunkStats s) {
        float x = Elements.halfToFloat(dtype, bits & 0xFFFF);
        byte code = E4M3.encode(x * Math.scalb(1f, -e));
        double d = Math.abs(x) - (double) Math.abs(E4M3.decode(code)) * Math.scalb(1.0, e);
        s.signal += (double) x * x;
        s.noise += d * d;
        if ((bits & 0x7FFF) != 0) {
            s.nonzero++;
            s.underflow += (code & 0x7F) == 0 ? 1 : 0;
        }
        return code;
    }

    private static final VectorSpecies<Short> S256 = ShortVector.SPECIES_256;

    /** The largest magnitude pattern of v[from, to): two 16-lane vectors for a whole block (the scalar loop costs 2 cycles a value). */
    private static int blockMax(short[] v, int from, int to) {
        if (to - from == Scaling.MX_BLOCK) {
            return ShortVector.fromArray(S256, v, from).and((short) 0x7FFF)
                    .max(ShortVector.fromArray(S256, v, from + 16).and((short) 0x7FFF))
                    .reduceLanes(VectorOperators.MAX);
        }
        int max = 0;
        for (int j = from; j < to; j++) {
            max = Math.max(max, v[j] & 0x7FFF);
        }
        return max;
    }

    /** One F32 row: the exact encoder per value, figures in float64 in element order. */
    private static int floatRow(MemorySegment src, long first, int cols, Row row, float[] scales, int at, ChunkStats s,
            int nonFinite) {
        float[] v = row.floats;
        byte[] codes = row.codes;
        MemorySegment.copy(src, Elements.FLOAT, 4 * first, v, 0, cols);
        int rowMax = 0;
        double signal = 0;
        double noise = 0;
        long nonzero = 0;
        long underflow = 0;
        for (int c0 = 0, b = at; c0 < cols; c0 += Scaling.MX_BLOCK, b++) {
            int c1 = Math.min(cols, c0 + Scaling.MX_BLOCK);
            int max = 0;
            for (int j = c0; j < c1; j++) {
                max = Math.max(max, Float.floatToRawIntBits(v[j]) & 0x7FFF_FFFF);
            }
            if (max >= nonFinite) {
                return -1;
            }
            rowMax = Math.max(rowMax, max);
            int e = Scaling.mxExponent(Float.intBitsToFloat(max));
            float scale = Math.scalb(1f, e);
            float inverse = Math.scalb(1f, -e);
            scales[b] = scale;
            for (int j = c0; j < c1; j++) {
                float x = v[j];
                byte code = E4M3.encode(x * inverse);
                codes[j] = code;
                double d = x - (double) E4M3.decode(code) * scale;
                signal += (double) x * x;
                noise += d * d;
                if (x != 0) {
                    nonzero++;
                    underflow += (code & 0x7F) == 0 ? 1 : 0;
                }
            }
        }
        s.signal += signal;
        s.noise += noise;
        s.nonzero += nonzero;
        s.underflow += underflow;
        return rowMax;
    }

    /** Per-thread row arrays (bulk copies from the mapped source: see TensorQuantizer.Scratch for why). */
    private static final class Row {
        short[] halves = new short[0];
        float[] floats = new float[0];
        byte[] codes = new byte[0];
        /** Per chunk: how many 16-bit values of each magnitude pattern had a quotient in E4M3's normal range. */
        final int[] counts = new int[1 << 15];

        Row fit(int cols) {
            if (codes.length < cols) {
                halves = new short[cols];
                floats = new float[cols];
                codes = new byte[cols];
            }
            return this;
        }
    }

    private static final ThreadLocal<Row> ROW = ThreadLocal.withInitial(Row::new);
}
