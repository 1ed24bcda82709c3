package dev.fp8q.converter.quant;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Elements;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Element by element with the exact encoder of NUMERICS.md: the definition the vector kernel is tested
 * against, bytes and figures alike. The figures are summed the way a vector of {@code lanes} lanes sums
 * them (see {@link QuantKernel#encode}), so either kernel may take any chunk without changing a bit.
 */
public final class ScalarQuantKernel implements QuantKernel {

    public static final ScalarQuantKernel INSTANCE = new ScalarQuantKernel(VectorQuantKernel.lanes());

    private final int lanes;

    ScalarQuantKernel(int lanes) {
        this.lanes = lanes;
    }

    @Override
    public int maxMagnitudeBits(MemorySegment src, DType dtype, long from, long to) {
        QuantKernel.nonFiniteBits(dtype);
        int max = 0;
        if (dtype == DType.F32) {
            for (long i = from; i < to; i++) {
                max = Math.max(max, src.getAtIndex(Elements.INT, i) & 0x7FFF_FFFF);
            }
        } else {
            for (long i = from; i < to; i++) {
                max = Math.max(max, src.getAtIndex(Elements.SHORT, i) & 0x7FFF);
            }
        }
        return max;
    }

    @Override
    public void encode(MemorySegment src, DType dtype, long from, long to, float scale, MemorySegment out,
            ChunkStats stats) {
        QuantKernel.nonFiniteBits(dtype);
        StatsScale ss = StatsScale.of(scale);
        float p = ss.p();
        long end = from + (to - from) / lanes * lanes;
        float[] sig = new float[lanes];
        float[] noi = new float[lanes];
        for (long b = from; b < end; b += (long) QuantKernel.BLOCK * lanes) {
            long blockEnd = Math.min(end, b + (long) QuantKernel.BLOCK * lanes);
            java.util.Arrays.fill(sig, 0f);
            java.util.Arrays.fill(noi, 0f);
            for (long g = b; g < blockEnd; g += lanes) {
                for (int lane = 0; lane < lanes; lane++) {
                    long i = g + lane;
                    float x = Elements.get(src, dtype, i);
                    byte code = E4M3.encode(x / scale);
                    out.set(ValueLayout.JAVA_BYTE, i - from, code);
                    float xs = x * p;
                    float e = (Math.abs(x) - Math.abs(E4M3.decode(code)) * scale) * p;
                    sig[lane] = Math.fma(xs, xs, sig[lane]);
                    noi[lane] = Math.fma(e, e, noi[lane]);
                    count(stats, x, code);
                }
            }
            stats.signal += ss.sumLanes(sig);
            stats.noise += ss.sumLanes(noi);
        }
        for (long i = end; i < to; i++) {
            float x = Elements.get(src, dtype, i);
            byte code = E4M3.encode(x / scale);
            out.set(ValueLayout.JAVA_BYTE, i - from, code);
            tail(stats, x, code, scale);
        }
    }

    static void count(ChunkStats stats, float x, byte code) {
        if (x != 0) {
            stats.nonzero++;
            if ((code & 0x7F) == 0) {
                stats.underflow++;
            }
        }
    }

    /** Figures of an element past the last whole vector, in float64. */
    static void tail(ChunkStats stats, float x, byte code, float scale) {
        double d = E4M3.decode(code) * scale;
        stats.signal += (double) x * x;
        stats.noise += (x - d) * (x - d);
        count(stats, x, code);
    }
}
