package dev.fp8q.converter.quant;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Amax;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.E4M3Table;
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
 * copy of it. Dividing by a power of two and multiplying by its reciprocal (2^-e, a float32 normal for every e)
 * give the same correctly rounded quotient, so the codes are exactly encode(x / 2^e) as {@link GridQuantizer}
 * writes them; for BF16 the quotient x * 2^-e is again a BF16 pattern (or below 2^-126, which encodes to a signed
 * zero either way), so one 64 KiB table at scale 1 encodes every block, and two more give its figures. F16 and F32
 * figures are summed per element in float64 in element order.
 */
final class MxQuantizer {

    private static final byte[] BF16_UNIT = E4M3Table.build(DType.BF16, 1f);
    /** For a BF16 quotient pattern q: q^2 and (q - decode(encode(q)))^2, exact in float32 (q has 8 significant bits). */
    private static final float[] BF16_SIGNAL = new float[65536];
    private static final float[] BF16_NOISE = new float[65536];

    static {
        for (int b = 0; b < 65536; b++) {
            float q = Elements.bf16ToFloat((short) b);
            float err = Float.isFinite(q) ? Math.abs(q) - Math.abs(E4M3.decode(BF16_UNIT[b])) : 0f;
            BF16_SIGNAL[b] = Float.isFinite(q) ? q * q : 0f;
            BF16_NOISE[b] = err * err;
        }
    }

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
        ChunkBuffers.forEachChunk(pool, n, perChunk, 1, (from, to, out) -> {
            Row row = ROW.get().fit(cols);
            ChunkStats s = new ChunkStats();
            int amaxBits = 0;
            for (long r = from / cols; r * cols < to; r++) {
                int at = (int) (r * gridCols);
                int rowMax = switch (dtype) {
                    case F32 -> floatRow(src, r * cols, cols, row, scales, at, s, nonFinite);
                    case BF16 -> bf16Row(src, r * cols, cols, row, scales, at, s);
                    default -> halfRow(src, dtype, r * cols, cols, row, scales, at, s, nonFinite);
                };
                if (rowMax < 0) {
                    throw new NonFiniteException(name, Amax.of(src, dtype).nonFinite());
                }
                amaxBits = Math.max(amaxBits, rowMax);
                MemorySegment.copy(row.codes, 0, out, ValueLayout.JAVA_BYTE, r * cols - from, cols);
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

    /**
     * One BF16 row by tables: the quotient's BF16 pattern gives its code and its figures in units of the block
     * scale (q^2 and the error squared, summed per block in float32 with 4 accumulators, then times 4^e in float64).
     * A quotient below 2^-126 reads as a signed zero: code zero as it should, its energy (~1e-76 of the block's)
     * left out of the figures. Returns the row's max magnitude bits, or -1 for NaN/Inf.
     */
    private static int bf16Row(MemorySegment src, long first, int cols, Row row, float[] scales, int at, ChunkStats s) {
        short[] v = row.halves;
        byte[] codes = row.codes;
        int[] qb = row.patterns;
        MemorySegment.copy(src, Elements.SHORT, 2 * first, v, 0, cols);
        int rowMax = 0;
        double signal = 0;
        double noise = 0;
        long nonzero = 0;
        long underflow = 0;
        for (int c0 = 0, b = at; c0 < cols; c0 += Scaling.MX_BLOCK, b++) {
            int c1 = Math.min(cols, c0 + Scaling.MX_BLOCK);
            int max = blockMax(v, c0, c1);
            if (max >= 0x7F80) {
                return -1;
            }
            rowMax = Math.max(rowMax, max);
            int e = Scaling.mxExponent(Elements.bf16ToFloat((short) max));
            scales[b] = Math.scalb(1f, e);
            if (e >= SHIFT_MIN_EXP) {
                quotientsByShift(v, qb, c0, c1, e << 7);
            } else {
                float inverse = Math.scalb(1f, -e);
                for (int j = c0; j < c1; j++) {
                    qb[j] = Float.floatToRawIntBits(Float.intBitsToFloat(v[j] << 16) * inverse) >>> 16;
                }
            }
            float s0 = 0, s1 = 0, n0 = 0, n1 = 0;
            int nz = 0;
            int uf = 0;
            int j = c0;
            for (; j + 1 < c1; j += 2) {
                int a = qb[j];
                int c = qb[j + 1];
                byte ca = BF16_UNIT[a];
                byte cc = BF16_UNIT[c];
                codes[j] = ca;
                codes[j + 1] = cc;
                s0 += BF16_SIGNAL[a];
                s1 += BF16_SIGNAL[c];
                n0 += BF16_NOISE[a];
                n1 += BF16_NOISE[c];
                int za = (v[j] & 0x7FFF) != 0 ? 1 : 0;
                int zc = (v[j + 1] & 0x7FFF) != 0 ? 1 : 0;
                nz += za + zc;
                uf += (za & ((ca & 0x7F) == 0 ? 1 : 0)) + (zc & ((cc & 0x7F) == 0 ? 1 : 0));
            }
            for (; j < c1; j++) {
                byte ca = BF16_UNIT[qb[j]];
                codes[j] = ca;
                s0 += BF16_SIGNAL[qb[j]];
                n0 += BF16_NOISE[qb[j]];
                int za = (v[j] & 0x7FFF) != 0 ? 1 : 0;
                nz += za;
                uf += za & ((ca & 0x7F) == 0 ? 1 : 0);
            }
            double unit = Math.scalb(1.0, 2 * e);
            signal += ((double) s0 + s1) * unit;
            noise += ((double) n0 + n1) * unit;
            nonzero += nz;
            underflow += uf;
        }
        s.signal += signal;
        s.noise += noise;
        s.nonzero += nonzero;
        s.underflow += underflow;
        return rowMax;
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

    /**
     * Below this block exponent a BF16 subnormal x can give a quotient x / 2^e of 2^-10 or more (a nonzero code):
     * those rare blocks multiply in float32.
     */
    private static final int SHIFT_MIN_EXP = -116;

    /**
     * x / 2^e for BF16 patterns by subtracting e from the exponent field: exact while the quotient is a normal
     * number. A quotient below 2^-126, or a subnormal x (with e >= -116 its quotient is below 2^-10), encodes to a
     * signed zero: the pattern's magnitude becomes 0. No overflow: every |x| < 2^(e + 9), so the quotient's field
     * stays at most 135.
     */
    private static void quotientsByShift(short[] v, int[] qb, int from, int to, int shift) {
        for (int j = from; j < to; j++) {
            int mag = v[j] & 0x7FFF;
            int q = mag - shift;
            qb[j] = (v[j] & 0x8000) | (mag >= 0x80 && q >= 0x80 ? q : 0);
        }
    }

    /** One F16 row: codes into row.codes, scales into scales[at..]; the row's max magnitude bits, or -1 for NaN/Inf. */
    private static int halfRow(MemorySegment src, DType dtype, long first, int cols, Row row, float[] scales, int at,
            ChunkStats s, int nonFinite) {
        short[] v = row.halves;
        byte[] codes = row.codes;
        MemorySegment.copy(src, Elements.SHORT, 2 * first, v, 0, cols);
        boolean bf16 = dtype == DType.BF16;
        int rowMax = 0;
        double signal = 0;
        double noise = 0;
        long nonzero = 0;
        long underflow = 0;
        for (int c0 = 0, b = at; c0 < cols; c0 += Scaling.MX_BLOCK, b++) {
            int c1 = Math.min(cols, c0 + Scaling.MX_BLOCK);
            int max = 0;
            for (int j = c0; j < c1; j++) {
                max = Math.max(max, v[j] & 0x7FFF);
            }
            if (max >= nonFinite) {
                return -1;
            }
            rowMax = Math.max(rowMax, max);
            int e = Scaling.mxExponent(Elements.halfToFloat(dtype, max));
            float scale = Math.scalb(1f, e);
            float inverse = Math.scalb(1f, -e);
            scales[b] = scale;
            for (int j = c0; j < c1; j++) {
                float x = bf16 ? Elements.bf16ToFloat(v[j]) : Elements.halfToFloat(dtype, v[j] & 0xFFFF);
                float q = x * inverse;
                byte code = bf16 ? BF16_UNIT[Float.floatToRawIntBits(q) >>> 16] : E4M3.encode(q);
                codes[j] = code;
                double d = x - (double) E4M3.decode(code) * scale;
                signal += (double) x * x;
                noise += d * d;
                if ((v[j] & 0x7FFF) != 0) {
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

    /** One F32 row, as {@link #halfRow}. */
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
        int[] patterns = new int[0];
        byte[] codes = new byte[0];

        Row fit(int cols) {
            if (codes.length < cols) {
                halves = new short[cols];
                patterns = new int[cols];
                floats = new float[cols];
                codes = new byte[cols];
            }
            return this;
        }
    }

    private static final ThreadLocal<Row> ROW = ThreadLocal.withInitial(Row::new);
}
