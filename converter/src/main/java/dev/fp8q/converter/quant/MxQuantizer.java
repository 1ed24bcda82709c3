package dev.fp8q.converter.quant;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Amax;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.E4M3Table;
import dev.fp8q.formats.codec.Elements;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.ForkJoinPool;

/**
 * MXFP8 quantization (OCP MX v1.0): every row of the [rows, cols] view in blocks of 32 values, each block with
 * its own power-of-two scale 2^e, e = {@link Scaling#mxExponent} of the block amax. One pass per row over a heap
 * copy of it. Dividing by a power of two and multiplying by its reciprocal (2^-e, a float32 normal for every e)
 * give the same correctly rounded quotient, so the codes are exactly encode(x / 2^e) as {@link GridQuantizer}
 * writes them; for BF16 the quotient x * 2^-e is again a BF16 pattern (or below 2^-126, which encodes to a signed
 * zero either way), so one 64 KiB table at scale 1 encodes every block. Figures are summed per element in float64
 * in element order.
 */
final class MxQuantizer {

    private static final byte[] BF16_UNIT = E4M3Table.build(DType.BF16, 1f);

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
                int rowMax = dtype == DType.F32
                        ? floatRow(src, r * cols, cols, row, scales, (int) (r * gridCols), s, nonFinite)
                        : halfRow(src, dtype, r * cols, cols, row, scales, (int) (r * gridCols), s, nonFinite);
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

    /** One BF16 / F16 row: codes into row.codes, scales into scales[at..]; the row's max magnitude bits, or -1 for NaN/Inf. */
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
        byte[] codes = new byte[0];

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
