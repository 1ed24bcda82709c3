package dev.fp8q.converter.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.E8M0;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.testing.EdgeValues;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;

/** The fast MX path against the naive one (GridQuantizer with the scalar kernel: encode(x / 2^e) per 32-block). */
class MxQuantizerTest {

    private static final Scaling MX = Scaling.parse("mx", false);

    private record Out(byte[] codes, QuantResult result) {}

    private static Out run(boolean fast, int threads, MemorySegment src, DType dtype, long[] shape) throws Exception {
        long n = src.byteSize() * 8 / dtype.bits();
        byte[] codes = new byte[(int) n];
        ForkJoinPool pool = new ForkJoinPool(threads);
        TensorQuantizer.Sink sink = (from, bytes) ->
                MemorySegment.copy(bytes, ValueLayout.JAVA_BYTE, 0, codes, (int) from, (int) bytes.byteSize());
        try {
            QuantResult r = fast ? new TensorQuantizer(pool).quantize("w", src, dtype, shape, MX, sink)
                    : new GridQuantizer(pool, ScalarQuantKernel.INSTANCE).quantize("w", src, dtype, shape, MX, sink);
            return new Out(codes, r);
        } finally {
            pool.shutdown();
        }
    }

    @Test
    void fastPathWritesTheNaiveBytesAndScalesAtAnyThreadCount() throws Exception {
        long[][] shapes = {{96, 160}, {33, 64}, {5, 100}, {300, 32}, {1, 31}};
        try (Arena arena = Arena.ofShared()) {
            for (DType dt : List.of(DType.BF16, DType.F16, DType.F32)) {
                for (long[] shape : shapes) {
                    MemorySegment src = EdgeValues.source(arena, dt, shape[0], shape[1], shape[0] * 131 + shape[1]);
                    Out naive = run(false, 1, src, dt, shape);
                    Out one = run(true, 1, src, dt, shape);
                    Out three = run(true, 3, src, dt, shape);
                    String what = dt + " " + shape[0] + "x" + shape[1];
                    assertArrayEquals(naive.codes(), one.codes(), what + ": codes");
                    assertArrayEquals(naive.result().scales(), one.result().scales(), what + ": scales");
                    assertEquals(naive.result().amax(), one.result().amax(), what + ": amax");
                    assertEquals(naive.result().nonzero(), one.result().nonzero(), what);
                    assertEquals(naive.result().underflow(), one.result().underflow(), what);
                    // the naive figures are float32 lane sums (QuantKernel), the fast ones float64 per element
                    assertEquals(naive.result().signal(), one.result().signal(), 1e-6 * naive.result().signal(), what);
                    assertEquals(naive.result().noise(), one.result().noise(), 1e-6 * naive.result().noise(), what);
                    assertArrayEquals(one.codes(), three.codes(), what);
                    assertEquals(one.result().noise(), three.result().noise(), 0.0, what + ": figures independent of threads");
                    for (float s : one.result().scales()) {
                        assertEquals(s, E8M0.decode(E8M0.encode(s)), what + ": an E8M0 value");
                    }
                }
            }
        }
    }

    @Test
    void scalesFollowOcpMx() {
        assertEquals(0x1p-8f, MX.scaleOf(1f)); // floor(log2 1) - 8
        assertEquals(1f, MX.scaleOf(448f)); // 448 in [256, 512): X = 1, no saturation
        assertEquals(1f, MX.scaleOf(511.9f));
        assertEquals(2f, MX.scaleOf(512f));
        assertEquals(0x1p-9f, MX.scaleOf(Math.nextDown(1f)));
        assertEquals(0x1p-127f, MX.scaleOf(0f), "all-zero block: E8M0 byte 0");
        assertEquals(0x1p-127f, MX.scaleOf(0x1p-140f), "below the E8M0 range: clamped");
        assertEquals(0x1p-127f, MX.scaleOf(0x1p-119f));
        assertEquals(0x1p-126f, MX.scaleOf(0x1p-118f));
        assertEquals(0x1p119f, MX.scaleOf(Float.MAX_VALUE));
        assertEquals((byte) 0, E8M0.encode(0x1p-127f));
        assertEquals((byte) 127, E8M0.encode(1f));
        assertEquals((byte) 254, E8M0.encode(0x1p127f));
        assertEquals(Float.NaN, E8M0.decode((byte) 0xFF));
        assertThrows(IllegalArgumentException.class, () -> E8M0.encode(3f));
        assertThrows(IllegalArgumentException.class, () -> Scaling.parse("mx", true));
        assertArrayEquals(new long[] {4, 3}, MX.grid(new long[] {4, 96}));
    }

    @Test
    void valuesAbove448TimesTheScaleSaturateAndNaNIsRefused() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment src = arena.allocate(64 * 4);
            for (int i = 0; i < 64; i++) {
                src.setAtIndex(Elements.FLOAT, i, i < 32 ? 500f - i : 1f);
            }
            Out o = run(true, 1, src, DType.F32, new long[] {1, 64});
            assertEquals(1f, o.result().scales()[0]); // 500: floor(log2) = 8
            assertEquals((byte) 0x7E, o.codes()[0], "500 / 1 saturates to 448");
            assertEquals(E4M3.encode(470f), o.codes()[30]);
            assertEquals(0x1p-8f, o.result().scales()[1]);
            assertEquals((byte) 0x78, o.codes()[40], "1 / 2^-8 = 256, exactly E4M3 0x78");
        }
    }

    /**
     * Random 16-bit patterns under a random block maximum per 32-block (any exponent, sign, zero, subnormal; half the
     * blocks within 20 binades of their max, where codes go normal, subnormal and saturate), rows whose last block is
     * partial, and a tensor of 2 chunks: codes, scales and counts as the naive path writes them, figures equal to
     * float64 sums over the naive codes.
     */
    @Test
    void randomPatternsUnderEveryBlockExponentMatchTheNaivePath() throws Exception {
        long[][] shapes = {{64, 4096}, {37, 100}, {11, 33}, {3, 31}, {3, 1_500_016}};
        try (Arena arena = Arena.ofShared()) {
            for (DType dt : List.of(DType.BF16, DType.F16)) {
                int m = dt == DType.BF16 ? 7 : 10;
                int inf = QuantKernel.nonFiniteBits(dt);
                for (long[] shape : shapes) {
                    SplittableRandom rnd = new SplittableRandom(shape[0] * 7 + shape[1] + m);
                    long n = shape[0] * shape[1];
                    MemorySegment src = arena.allocate(2 * n);
                    int max = 0;
                    for (long i = 0; i < n; i++) {
                        if ((i % shape[1]) % 32 == 0) {
                            max = rnd.nextInt(inf); // this block's largest magnitude pattern at most
                        }
                        int mag = rnd.nextBoolean() ? rnd.nextInt(max + 1) : Math.max(0, max - rnd.nextInt(20 << m));
                        src.setAtIndex(Elements.SHORT, i, (short) (mag | (rnd.nextBoolean() ? 0x8000 : 0)));
                    }
                    String what = dt + " " + shape[0] + "x" + shape[1];
                    Out naive = run(false, 1, src, dt, shape);
                    Out fast = run(true, 2, src, dt, shape);
                    assertArrayEquals(naive.codes(), fast.codes(), what + ": codes");
                    assertArrayEquals(naive.result().scales(), fast.result().scales(), what + ": scales");
                    assertEquals(naive.result().amax(), fast.result().amax(), what + ": amax");
                    assertEquals(naive.result().nonzero(), fast.result().nonzero(), what + ": nonzero");
                    assertEquals(naive.result().underflow(), fast.result().underflow(), what + ": underflow");
                    if (n > 10_000) { // the test's own check: zeros and underflows are there
                        assertTrue(fast.result().underflow() > 0 && fast.result().nonzero() < n, what + ": edges present");
                    }
                    double[] exact = figures(src, dt, shape, naive);
                    assertEquals(exact[0], fast.result().signal(), 1e-9 * exact[0], what + ": signal");
                    assertEquals(exact[1], fast.result().noise(), 1e-9 * exact[1], what + ": noise");
                }
            }
        }
    }

    @Test
    void nanOrInfinityAnywhereIsRefusedWithItsCount() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            for (DType dt : List.of(DType.BF16, DType.F16)) {
                int inf = QuantKernel.nonFiniteBits(dt);
                MemorySegment src = arena.allocate(2 * 4 * 100);
                for (int i = 0; i < 400; i++) {
                    src.setAtIndex(Elements.SHORT, i, (short) 0x3C00);
                }
                src.setAtIndex(Elements.SHORT, 131, (short) (inf | 0x8000)); // -Inf in a partial last block
                src.setAtIndex(Elements.SHORT, 7, (short) (inf + 1)); // a NaN
                NonFiniteException e = assertThrows(NonFiniteException.class, () -> run(true, 2, src, dt, new long[] {4, 100}));
                assertEquals(2, e.count(), dt.toString());
            }
        }
    }

    /** Signal and noise in float64 per element from the naive path's codes and scales. */
    private static double[] figures(MemorySegment src, DType dt, long[] shape, Out naive) {
        long cols = shape[1];
        double signal = 0;
        double noise = 0;
        for (long i = 0; i < shape[0] * cols; i++) {
            double x = Elements.get(src, dt, i);
            double scale = naive.result().scales()[(int) MX.scaleIndex(i / cols, i % cols, cols)];
            double d = Math.abs(x) - Math.abs(E4M3.decode(naive.codes()[(int) i])) * scale;
            signal += x * x;
            noise += d * d;
        }
        return new double[] {signal, noise};
    }
}
