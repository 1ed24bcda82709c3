package dev.fp8q.converter.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Elements;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/** The vector kernel against the scalar definition, bit for bit (run at 256 and 512 bits by surefire). */
class QuantKernelTest {

    private static final QuantKernel SCALAR = ScalarQuantKernel.INSTANCE;
    private static final QuantKernel VECTOR = VectorQuantKernel.INSTANCE;
    private static final float[] SCALES = {1f, 0.0123f, 3.5e-5f, 7.1f, 0x1p-20f, 1e30f, 1e-30f, 0.5f};

    @Test
    void everySixteenBitPatternEncodesIdentically() {
        Assumptions.assumeTrue(VectorQuantKernel.usable(), "vector kernel needs 256-bit vectors");
        for (DType dt : new DType[] {DType.BF16, DType.F16}) {
            try (Arena arena = Arena.ofConfined()) {
                // every pattern, at an odd start so both the vector body and the scalar tail see unaligned data
                MemorySegment src = arena.allocate(2 * 65536 + 6);
                for (int b = 0; b < 65536; b++) {
                    src.set(Elements.SHORT, 2 + 2L * b, (short) b);
                }
                MemorySegment shifted = src.asSlice(2, 2 * 65536 + 3); // an odd byte length: 65537 elements incl. 1 pad
                for (float scale : SCALES) {
                    compare(shifted, dt, 0, 65537, scale, arena);
                    compare(shifted, dt, 7, 65530, scale, arena);
                }
            }
        }
    }

    @Test
    void everyFloat32EncodesIdentically() {
        Assumptions.assumeTrue(VectorQuantKernel.usable(), "vector kernel needs 256-bit vectors");
        // all 2^32 bit patterns at scale 1 (the quotient is the value itself), in parallel slices
        int slices = 4096;
        long per = (1L << 32) / slices;
        AtomicLong mismatches = new AtomicLong();
        IntStream.range(0, slices).parallel().forEach(s -> {
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment src = arena.allocate(per * 4);
                for (long i = 0; i < per; i++) {
                    src.setAtIndex(Elements.INT, i, (int) (s * per + i));
                }
                MemorySegment a = arena.allocate(per);
                MemorySegment b = arena.allocate(per);
                SCALAR.encode(src, DType.F32, 0, per, 1f, a, new ChunkStats());
                VECTOR.encode(src, DType.F32, 0, per, 1f, b, new ChunkStats());
                long at = a.mismatch(b);
                if (at >= 0) {
                    mismatches.incrementAndGet();
                    System.err.printf("float bits %08x: scalar %02x vector %02x%n", (int) (s * per + at),
                            a.get(ValueLayout.JAVA_BYTE, at), b.get(ValueLayout.JAVA_BYTE, at));
                }
            }
        });
        assertEquals(0, mismatches.get(), "slices with a differing code");
    }

    @Test
    void float32AtCodeBoundariesUnderRealScales() {
        Assumptions.assumeTrue(VectorQuantKernel.usable(), "vector kernel needs 256-bit vectors");
        Random rnd = new Random(7);
        int n = 1 << 16;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(4L * n);
            for (float scale : SCALES) {
                for (int i = 0; i < n; i++) {
                    // midpoints and neighbours of codes times the scale, plus random magnitudes
                    float code = E4M3.decode((byte) rnd.nextInt(0x7F));
                    float next = E4M3.decode((byte) Math.min(0x7E, rnd.nextInt(0x7F) + 1));
                    float v = switch (i % 4) {
                        case 0 -> (code + next) / 2 * scale;
                        case 1 -> Math.nextUp((code + next) / 2 * scale);
                        case 2 -> Math.nextDown(code * scale);
                        default -> (float) (rnd.nextGaussian() * 448 * scale);
                    };
                    src.setAtIndex(Elements.FLOAT, i, rnd.nextBoolean() ? v : -v);
                }
                compare(src, DType.F32, 0, n, scale, arena);
                compare(src, DType.F32, 3, n - 5, scale, arena);
            }
        }
    }

    @Test
    void maximaAgree() {
        Random rnd = new Random(3);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment src = arena.allocate(4L * 10_001);
            for (int i = 0; i < 10_001; i++) {
                src.setAtIndex(Elements.INT, i, rnd.nextInt());
            }
            for (DType dt : new DType[] {DType.BF16, DType.F16, DType.F32}) {
                long n = src.byteSize() / (dt.bits() / 8);
                for (long from : new long[] {0, 1, 5}) {
                    assertEquals(SCALAR.maxMagnitudeBits(src, dt, from, n - 3), VECTOR.maxMagnitudeBits(src, dt, from, n - 3));
                }
            }
        }
    }

    private static void compare(MemorySegment src, DType dt, long from, long to, float scale, Arena arena) {
        MemorySegment a = arena.allocate(to - from);
        MemorySegment b = arena.allocate(to - from);
        ChunkStats sa = new ChunkStats();
        ChunkStats sb = new ChunkStats();
        SCALAR.encode(src, dt, from, to, scale, a, sa);
        VECTOR.encode(src, dt, from, to, scale, b, sb);
        long at = a.mismatch(b);
        assertEquals(-1, at, () -> dt + " scale " + scale + ": element " + (from + at) + " scalar "
                + a.get(ValueLayout.JAVA_BYTE, at) + " vector " + b.get(ValueLayout.JAVA_BYTE, at));
        // the figures only for finite input: recompute on a finite-only copy
        ChunkStats fa = new ChunkStats();
        ChunkStats fb = new ChunkStats();
        MemorySegment finite = finiteOnly(src, dt, from, to, scale, arena);
        SCALAR.encode(finite, dt, 0, to - from, scale, a, fa);
        VECTOR.encode(finite, dt, 0, to - from, scale, b, fb);
        assertEquals(fa.nonzero, fb.nonzero);
        assertEquals(fa.underflow, fb.underflow);
        assertEquals(fa.signal, fb.signal, 0.0, dt + " signal at scale " + scale);
        assertEquals(fa.noise, fb.noise, 0.0, dt + " noise at scale " + scale);
        // and the figures are the float64 ones to float32 precision
        ChunkStats exact = new ChunkStats();
        for (long i = 0; i < to - from; i++) {
            float x = Elements.get(finite, dt, i);
            ScalarQuantKernel.tail(exact, x, E4M3.encode(x / scale), scale);
        }
        double floor = (to - from) * Math.pow(448.0 * scale, 2) * 0x1p-100; // values below 2^-50 of full scale
        assertClose(exact.signal, fb.signal, floor, dt + " signal at scale " + scale);
        assertClose(exact.noise, fb.noise, floor, dt + " noise at scale " + scale);
    }

    private static MemorySegment finiteOnly(MemorySegment src, DType dt, long from, long to, float scale, Arena arena) {
        int w = dt.bits() / 8;
        MemorySegment out = arena.allocate((to - from) * w);
        for (long i = from; i < to; i++) {
            float x = Elements.get(src, dt, i);
            boolean ok = Float.isFinite(x) && Math.abs(x) <= 448 * scale; // the range the scale is made for
            if (dt == DType.F32) {
                out.setAtIndex(Elements.FLOAT, i - from, ok ? x : 0f);
            } else {
                out.setAtIndex(Elements.SHORT, i - from, ok ? src.getAtIndex(Elements.SHORT, i) : 0);
            }
        }
        return out;
    }

    private static void assertClose(double expected, double actual, double floor, String what) {
        double tol = 1e-5 * Math.abs(expected) + floor;
        assertTrue(Math.abs(expected - actual) <= tol, what + ": scalar " + expected + " vector " + actual);
    }
}
