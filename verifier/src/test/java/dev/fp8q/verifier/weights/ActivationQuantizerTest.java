package dev.fp8q.verifier.weights;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The MX GEMM's activation side: per row, 32 values along K share 2^(floor(log2(amax)) - 8). */
class ActivationQuantizerTest {

    @Test
    void mxBlocksRunAlongEachRowWithTheirOwnPowerOfTwo() {
        int k = 40; // one whole block and a partial one of 8 per row
        float[] x = new float[2 * k];
        x[0] = 1f; // row 0, block 0: amax 1, scale 2^-8: 1.0 and 0.3 land on the grid 2^-8 * E4M3
        x[1] = 0.3f;
        x[32] = 500f; // row 0, block 1 (8 values): amax 500, scale 1: 500 saturates to 448
        x[33] = 3.3f;
        x[k] = -0x1p-20f; // row 1, block 0: amax 2^-20, scale 2^-28
        x[k + 1] = 0x1p-30f; // 2^-30 / 2^-28 = 0.25, exact
        // row 1, block 1: all zeros (scale 2^-127): stays zero
        float[] y = ActivationQuantizer.mxQuantizeDequantize(x, k);
        assertEquals(1f, y[0]);
        assertEquals(0.3125f, y[1], "0.3 / 2^-8 = 76.8 rounds to 80 (E4M3 step 8 in [64, 128))");
        assertEquals(448f, y[32], "saturates: the spec, not a bug");
        assertEquals(3.25f, y[33], "3.3 on the E4M3 grid at scale 1");
        assertEquals(-0x1p-20f, y[k]);
        assertEquals(0x1p-30f, y[k + 1]);
        assertArrayEquals(new float[8], java.util.Arrays.copyOfRange(y, k + 32, 2 * k));
        assertEquals(-127, ActivationQuantizer.mxExponent(0f));
        assertEquals(-127, ActivationQuantizer.mxExponent(0x1p-140f));
        assertEquals(0, ActivationQuantizer.mxExponent(448f));
    }

    @Test
    void staticScaleSaturatesAndCountsOnlyWhatRoundingWouldNotHaveReached() {
        float scale = 0.5f;
        // x / scale: 448.0001 and 464 (the tie, to even: 448) round to 448 anyway; 464.5 and -1000 are cut
        float[] x = {224.00005f, 232f, 232.25f, -500f, 5f};
        ActivationQuantizer.Static q = ActivationQuantizer.withScale(x, scale);
        assertArrayEquals(new float[] {224f, 224f, 224f, -224f, 5f}, q.values());
        assertEquals(2, q.clipped());
        // the max-calibrated scale of an input (amax / 448) clips nothing, whatever the float32 rounding of the scale
        float[] y = {3.3f, -7.77f, 1e-3f};
        assertEquals(0, ActivationQuantizer.withScale(y, 7.77f / 448f).clipped());
    }
}
