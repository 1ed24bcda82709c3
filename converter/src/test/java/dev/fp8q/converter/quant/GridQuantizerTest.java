package dev.fp8q.converter.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Elements;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.api.Test;

class GridQuantizerTest {

    private static MemorySegment random(Arena arena, DType dtype, long rows, long cols, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        MemorySegment seg = arena.allocate(rows * cols * dtype.bits() / 8);
        for (long i = 0; i < rows * cols; i++) {
            float v = (float) (rnd.nextGaussian() * Math.pow(10, (i / cols) % 5 - 2));
            switch (dtype) {
                case F32 -> seg.setAtIndex(Elements.FLOAT, i, v);
                case BF16 -> seg.setAtIndex(Elements.SHORT, i, Elements.floatToBf16(v));
                default -> seg.setAtIndex(Elements.SHORT, i, Float.floatToFloat16(v));
            }
        }
        return seg;
    }

    private record Out(byte[] codes, QuantResult result) {}

    private static Out run(QuantKernel kernel, int threads, MemorySegment src, DType dtype, long[] shape, Scaling s)
            throws Exception {
        long n = src.byteSize() * 8 / dtype.bits();
        byte[] codes = new byte[(int) n];
        ForkJoinPool pool = new ForkJoinPool(threads);
        try {
            QuantResult r = new TensorQuantizer(pool, kernel).quantize("w", src, dtype, shape, s, (from, bytes) ->
                    MemorySegment.copy(bytes, ValueLayout.JAVA_BYTE, 0, codes, (int) from, (int) bytes.byteSize()));
            return new Out(codes, r);
        } finally {
            pool.shutdown();
        }
    }

    /** Scales and codes from the definition: amax per tile, encode(x / scale) with the exact encoder. */
    @Test
    void codesAndScalesFollowTheDefinitionAtAnyThreadCountAndKernel() throws Exception {
        long[][] shapes = {{300, 200}, {128, 128}, {1000, 40}, {7, 3, 5}, {130}};
        try (Arena arena = Arena.ofShared()) {
            for (DType dt : List.of(DType.BF16, DType.F16, DType.F32)) {
                for (long[] shape : shapes) {
                    long rows = Scaling.rows(shape);
                    long cols = Scaling.cols(shape);
                    MemorySegment src = random(arena, dt, rows, cols, rows * 31 + cols);
                    for (Scaling s : List.of(new Scaling(Scaling.Granularity.CHANNEL, false),
                            new Scaling(Scaling.Granularity.BLOCK, false), new Scaling(Scaling.Granularity.BLOCK, true))) {
                        Out ref = run(ScalarQuantKernel.INSTANCE, 1, src, dt, shape, s);
                        long[] grid = s.grid(shape);
                        assertEquals(grid[0] * grid[1], ref.result().scales().length);
                        long tr = s.tileRows();
                        long tc = s.granularity() == Scaling.Granularity.BLOCK ? Scaling.BLOCK : cols;
                        float[] amax = new float[(int) (grid[0] * grid[1])];
                        for (long i = 0; i < rows * cols; i++) {
                            int t = (int) ((i / cols / tr) * grid[1] + (i % cols) / tc);
                            amax[t] = Math.max(amax[t], Math.abs(Elements.get(src, dt, i)));
                        }
                        for (int t = 0; t < amax.length; t++) {
                            assertEquals(s.scaleOf(amax[t]), ref.result().scales()[t], s + " tile " + t);
                        }
                        for (long i = 0; i < rows * cols; i++) {
                            float scale = ref.result().scales()[(int) ((i / cols / tr) * grid[1] + (i % cols) / tc)];
                            byte expect = E4M3.encode(Elements.get(src, dt, i) / scale);
                            assertEquals(expect, ref.codes()[(int) i], s + " " + dt + " element " + i);
                        }
                        for (QuantKernel k : List.of(ScalarQuantKernel.INSTANCE, VectorQuantKernel.INSTANCE)) {
                            Out o = run(k, 3, src, dt, shape, s);
                            assertArrayEquals(ref.codes(), o.codes());
                            assertArrayEquals(ref.result().scales(), o.result().scales());
                            assertEquals(ref.result().noise(), o.result().noise(), "figures do not depend on threads or kernel");
                            assertEquals(ref.result().signal(), o.result().signal());
                            assertEquals(ref.result().underflow(), o.result().underflow());
                        }
                    }
                }
            }
        }
    }

    @Test
    void powerOfTwoScalesAreTheSmallestThatAvoidSaturation() {
        Scaling p = new Scaling(Scaling.Granularity.TENSOR, true);
        assertEquals(1f, p.scaleOf(448f));
        assertEquals(2f, p.scaleOf(448.00003f));
        assertEquals(0.5f, p.scaleOf(224f));
        assertEquals(1f, p.scaleOf(300f));
        assertEquals(1f, p.scaleOf(0f));
        assertEquals(Float.MIN_VALUE, p.scaleOf(Float.MIN_VALUE));
        assertEquals(0x1p120f, p.scaleOf(Float.MAX_VALUE));
        for (float a : new float[] {1e-30f, 3.3f, 1234.5f, 7e20f}) {
            float s = p.scaleOf(a);
            assertEquals(0, Float.floatToIntBits(s) & 0x7FFFFF, "a power of two");
            assertEquals(true, 448.0 * s >= a && 448.0 * s / 2 < a, "the smallest: " + a);
        }
        assertEquals(300f / 448f, new Scaling(Scaling.Granularity.TENSOR, false).scaleOf(300f));
    }

    @Test
    void nonFiniteInOneTileIsRefusedWithTheCount() throws Exception {
        try (Arena arena = Arena.ofShared()) {
            MemorySegment src = random(arena, DType.F32, 256, 256, 1);
            src.setAtIndex(Elements.FLOAT, 200 * 256 + 3, Float.NaN);
            src.setAtIndex(Elements.FLOAT, 5, Float.POSITIVE_INFINITY);
            NonFiniteException e = assertThrows(NonFiniteException.class, () -> run(ScalarQuantKernel.INSTANCE, 2, src,
                    DType.F32, new long[] {256, 256}, new Scaling(Scaling.Granularity.BLOCK, false)));
            assertEquals(2, e.count());
        }
    }

    @Test
    void bf16ScalesAreTheF32ScaleRoundedToNearestEven() {
        Scaling b = Scaling.PER_TENSOR.withBf16Scales(true);
        float f32 = 300f / 448f;
        float s = b.scaleOf(300f);
        assertEquals(Elements.bf16ToFloat(Elements.floatToBf16(f32)), s);
        assertEquals(s, Elements.bf16ToFloat(Elements.floatToBf16(s)), "exactly a BF16 value");
        assertEquals(DType.BF16, b.scaleDType());
        assertEquals(DType.F32, Scaling.PER_TENSOR.scaleDType());
        // a tie: 1 + 2^-8 lies halfway between two BF16 values and rounds to the even one, 1.0
        assertEquals(1f, b.scaleOf((1f + 0x1p-8f) * 448f));
        assertEquals(1f, b.scaleOf(0f), "all-zero tensors keep scale 1.0");
        assertEquals(0x1p-133f, b.scaleOf(Float.MIN_VALUE), "never rounded to 0");
    }
}
