package dev.fp8q.converter.quant;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Amax;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Elements;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.ForkJoinPool;
import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
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
 * them) is rounded to 3 mantissa bits like its own bit pattern, so a block of such values is encoded by integer
 * arithmetic on the patterns in vectors (see {@link #halfRow}); other blocks take the exact encoder per value.
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
            int c = (int) (from / perChunk);
            stats[c] = s;
            chunkAmax[c] = dtype == DType.F32 ? Float.intBitsToFloat(amaxBits) : Elements.halfToFloat(dtype, amaxBits);
            sink.accept(from, out);
        });
        return QuantResult.of(chunkAmax, scales, stats);
    }

    /** BF16 or F16 bit fields: mantissa bits, exponent bias, and the float32 factor of a pattern shifted into place. */
    private record HalfFormat(DType dtype, int mantissa, int bias, int nonFinite, float rebias) {

        HalfFormat(DType dtype) {
            this(dtype, dtype == DType.BF16 ? 7 : 10, dtype == DType.BF16 ? 127 : 15, QuantKernel.nonFiniteBits(dtype),
                    dtype == DType.BF16 ? 1f : 0x1p112f);
        }
    }

    private static final VectorSpecies<Short> S = ShortVector.SPECIES_256;
    private static final VectorSpecies<Integer> I = IntVector.SPECIES_256;
    private static final VectorSpecies<Byte> B = ByteVector.SPECIES_128;

    /**
     * One BF16 or F16 row: codes into row.codes, scales into scales[at..], figures added to s. Returns the row's max
     * magnitude bits, or -1 for NaN/Inf. A whole block whose values are all normal with quotients of at least 2^-6
     * (almost every block of a weight) goes through vectors: the pattern rounded to 3 mantissa bits (nearest even,
     * a carry moving into the exponent) and capped at 448 * 2^e is the decoded value, its exponent field less e
     * the code's; its figures are summed in units of 2^e (q = x / 2^e and the error, both exact in float32) with
     * fused multiply-adds per lane, the lanes added in lane order in float64 and times 4^e. Other blocks (zero, a
     * subnormal source value, a quotient that encodes subnormal, a partial block) take the exact encoder per value.
     */
    private static int halfRow(MemorySegment src, HalfFormat f, long first, int cols, Row row, float[] scales, int at,
            ChunkStats s) {
        short[] v = row.halves;
        byte[] codes = row.codes;
        float[] lanes = row.lanes;
        MemorySegment.copy(src, Elements.SHORT, 2 * first, v, 0, cols);
        int m = f.mantissa();
        int drop = m - 3;
        short roundBias = (short) ((1 << (drop - 1)) - 1);
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
            int lo = Math.max(1, e - 6 + f.bias()) << m; // x >= 2^(e-6) and normal
            int hi = ((e + 8 + f.bias()) << m) | (6 << drop); // 448 * 2^e
            if (c1 - c0 < Scaling.MX_BLOCK || lo > hi || !fullBlock(v, c0, codes, lanes, f, e, lo, hi, roundBias, s)) {
                for (int j = c0; j < c1; j++) {
                    codes[j] = exact(f.dtype(), v[j], e, s);
                }
            }
        }
        return rowMax;
    }

    /** The vector path of {@link #halfRow} for v[c0, c0 + 32); false, with nothing written, if a value is below lo. */
    private static boolean fullBlock(short[] v, int c0, byte[] codes, float[] lanes, HalfFormat f, int e, int lo, int hi,
            short roundBias, ChunkStats s) {
        ShortVector x0 = ShortVector.fromArray(S, v, c0);
        ShortVector x1 = ShortVector.fromArray(S, v, c0 + 16);
        ShortVector m0 = x0.and((short) 0x7FFF);
        ShortVector m1 = x1.and((short) 0x7FFF);
        if (m0.min(m1).compare(VectorOperators.LT, (short) lo).anyTrue()) {
            return false;
        }
        int drop = f.mantissa() - 3;
        short shift = (short) (e << f.mantissa());
        short rebias = (short) ((e + f.bias() - 7) << 3);
        FloatVector sig = FloatVector.zero(FloatVector.SPECIES_256);
        FloatVector noi = sig;
        for (int h = 0; h < 2; h++) {
            ShortVector mag = h == 0 ? m0 : m1;
            ShortVector x = h == 0 ? x0 : x1;
            ShortVector r = mag.add(roundBias).add(mag.lanewise(VectorOperators.LSHR, drop).and((short) 1))
                    .and((short) (-1 << drop)).min((short) hi);
            ShortVector code = r.lanewise(VectorOperators.LSHR, drop).sub(rebias)
                    .or(x.lanewise(VectorOperators.LSHR, 8).and((short) 0x80));
            code.convertShape(VectorOperators.S2B, B, 0).reinterpretAsBytes().intoArray(codes, c0 + 16 * h);
            ShortVector q = mag.sub(shift);
            ShortVector qr = r.sub(shift);
            for (int part = 0; part < 2; part++) {
                FloatVector qf = toFloat(q, part, f);
                FloatVector err = qf.sub(toFloat(qr, part, f));
                sig = qf.fma(qf, sig);
                noi = err.fma(err, noi);
            }
        }
        double unit = Math.scalb(1.0, 2 * e);
        sig.intoArray(lanes, 0);
        s.signal += sumLanes(lanes) * unit;
        noi.intoArray(lanes, 0);
        s.noise += sumLanes(lanes) * unit;
        s.nonzero += Scaling.MX_BLOCK;
        return true;
    }

    /** Lanes part*8 .. part*8+7 of 16-bit patterns of normal values as float32 (exact). */
    private static FloatVector toFloat(ShortVector bits, int part, HalfFormat f) {
        FloatVector x = ((IntVector) bits.convertShape(VectorOperators.S2I, I, part))
                .lanewise(VectorOperators.LSHL, 23 - f.mantissa()).reinterpretAsFloats();
        return f.dtype() == DType.BF16 ? x : x.mul(f.rebias());
    }

    private static double sumLanes(float[] lanes) {
        double sum = 0;
        for (float l : lanes) {
            sum += l;
        }
        return sum;
    }

    /** One value by the exact encoder, figures in float64. */
    private static byte exact(DType dtype, int bits, int e, ChunkStats s) {
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
        final float[] lanes = new float[FloatVector.SPECIES_256.length()];

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
