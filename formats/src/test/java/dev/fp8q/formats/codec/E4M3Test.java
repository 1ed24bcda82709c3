package dev.fp8q.formats.codec;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.DType;
import org.junit.jupiter.api.Test;

class E4M3Test {

    /** The 254 finite codes' values, computed from the bit fields in double, independent of the encoder. */
    private static final double[] VALUE = new double[256];

    static {
        for (int b = 0; b < 256; b++) {
            int e = (b >> 3) & 15;
            int m = b & 7;
            double mag = e == 0 ? m / 512.0 : (8 + m) / 8.0 * Math.pow(2, e - 7);
            VALUE[b] = (b & 0x80) != 0 ? -mag : mag;
        }
    }

    /** Independent reference: clamp, then the nearest finite code by exhaustive search, ties to even. */
    static int reference(float v) {
        double x = Math.max(-448.0, Math.min(448.0, v));
        int best = -1;
        double bestErr = Double.POSITIVE_INFINITY;
        for (int b = 0; b < 256; b++) {
            if ((b & 0x7F) == 0x7F) {
                continue;
            }
            if ((b & 0x80) != 0 && (Double.doubleToRawLongBits(x) >= 0)) {
                continue; // positive inputs (and +0) pick positive codes
            }
            if ((b & 0x80) == 0 && (Double.doubleToRawLongBits(x) < 0)) {
                continue; // negative inputs (and -0) keep their sign, as torch does
            }
            double err = Math.abs(VALUE[b] - x);
            if (err < bestErr || (err == bestErr && (b & 1) == 0)) {
                best = b;
                bestErr = err;
            }
        }
        return best;
    }

    @Test
    void handCheckedVectors() {
        float[] in = {0f, -0f, 1f, 448f, -448f, 449f, 464f, 0x1p-9f, 0x1p-10f, 3 * 0x1p-10f, 5 * 0x1p-10f,
            0.0146484375f, 0.013671875f, 1.0625f, 1.1875f, 17f, 19f, 248f, 272f, 304f, 432f};
        int[] out = {0x00, 0x80, 0x38, 0x7E, 0xFE, 0x7E, 0x7E, 0x01, 0x00, 0x02, 0x02, 0x08, 0x07, 0x38, 0x3A,
            0x58, 0x5A, 0x78, 0x78, 0x7A, 0x7E};
        for (int i = 0; i < in.length; i++) {
            assertEquals(out[i], E4M3.encode(in[i]) & 0xFF, "encode(" + in[i] + ")");
        }
    }

    @Test
    void infinitiesSaturateAndNaNIsNaN() {
        assertEquals(0x7E, E4M3.encode(Float.POSITIVE_INFINITY) & 0xFF);
        assertEquals(0xFE, E4M3.encode(Float.NEGATIVE_INFINITY) & 0xFF);
        assertTrue(E4M3.isNaN(E4M3.encode(Float.NaN)));
        assertTrue(Float.isNaN(E4M3.decode((byte) 0x7F)));
        assertTrue(Float.isNaN(E4M3.decode((byte) 0xFF)));
    }

    @Test
    void everyFiniteCodeDecodesAndReencodesToItself() {
        int finite = 0;
        for (int b = 0; b < 256; b++) {
            if ((b & 0x7F) == 0x7F) {
                continue;
            }
            finite++;
            float v = E4M3.decode((byte) b);
            assertEquals(VALUE[b], v, 0.0, "decode " + b);
            assertEquals(b, E4M3.encode(v) & 0xFF, "re-encode " + b);
            // and through BF16 and F16, which hold every E4M3 value exactly
            assertEquals(v, Elements.bf16ToFloat(Elements.floatToBf16(v)), 0.0);
            assertEquals(v, Float.float16ToFloat(Float.floatToFloat16(v)), 0.0);
        }
        assertEquals(254, finite);
    }

    /** Power-of-two scales make ties common; the others are amax/448 of typical weights. */
    static final float[] SCALES = {1f, 0.5f, 0x1p-7f, 0x1p-12f, 4f, 3f / 448f, 0.02f / 448f * 20, 1e-3f, 7.5f / 448f,
        Float.MIN_NORMAL, 1e30f};

    @Test
    void everyBf16PatternUnderSeveralScalesMatchesTheReference() {
        int checked = 0;
        for (float scale : SCALES) {
            for (int bits = 0; bits < 65536; bits++) {
                float x = Elements.bf16ToFloat((short) bits);
                if (Float.isNaN(x)) {
                    continue;
                }
                float q = x / scale;
                if (Float.isNaN(q)) {
                    continue;
                }
                int expect = reference(q);
                int got = E4M3.encode(q) & 0xFF;
                if (expect != got) {
                    throw new AssertionError("bf16 0x" + Integer.toHexString(bits) + " / " + scale + " = " + q
                            + ": expected 0x" + Integer.toHexString(expect) + ", got 0x" + Integer.toHexString(got));
                }
                checked++;
            }
        }
        assertTrue(checked > 65000 * SCALES.length / 2);
    }

    @Test
    void everyFloatNearEveryTieAndBoundary() {
        // Midpoints between neighbouring codes and their float neighbours: where rounding bugs live.
        for (int b = 0; b < 0x7E; b++) {
            double mid = (VALUE[b] + VALUE[b + 1]) / 2;
            for (float f : new float[] {(float) mid, Math.nextUp((float) mid), Math.nextDown((float) mid)}) {
                assertEquals(reference(f), E4M3.encode(f) & 0xFF, "at " + f);
                assertEquals(reference(-f), E4M3.encode(-f) & 0xFF, "at " + -f);
            }
        }
        for (float f : new float[] {Float.MIN_VALUE, Float.MIN_NORMAL, 0x1p-10f, Math.nextUp(0x1p-10f), 464f,
            Math.nextDown(464f), Math.nextUp(448f), Math.nextDown(448f), Float.MAX_VALUE}) {
            assertEquals(reference(f), E4M3.encode(f) & 0xFF, "at " + f);
        }
    }

    @Test
    void tablePathEqualsTheEncoderOnEvery16BitPattern() {
        for (DType src : new DType[] {DType.BF16, DType.F16}) {
            for (float scale : SCALES) {
                byte[] table = E4M3Table.build(src, scale);
                for (int bits = 0; bits < 65536; bits++) {
                    float x = src == DType.BF16 ? Elements.bf16ToFloat((short) bits) : Float.float16ToFloat((short) bits);
                    if (!Float.isFinite(x)) {
                        continue;
                    }
                    assertEquals(E4M3.encode(x / scale), table[bits], src + " 0x" + Integer.toHexString(bits));
                }
            }
        }
    }

    @Test
    void bf16RoundingIsNearestEven() {
        assertEquals((short) 0x3F80, Elements.floatToBf16(1f));
        assertEquals((short) 0x3F80, Elements.floatToBf16(Float.intBitsToFloat(0x3F808000))); // tie to even (down)
        assertEquals((short) 0x3F82, Elements.floatToBf16(Float.intBitsToFloat(0x3F818000))); // tie to even (up)
        assertEquals((short) 0x3F81, Elements.floatToBf16(Float.intBitsToFloat(0x3F808001)));
    }
}
