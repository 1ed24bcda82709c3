package dev.fp8q.verifier.run;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class SimulatedFp8WeightsTest {

    /**
     * The BF16 table path and the element path give the same bits as NUMERICS.md's encoder applied value by value,
     * with zeros of both signs, subnormals, values underflowing to zero and the largest at exactly +-448.
     */
    @Test
    void tableAndElementPathsEqualTheEncoderValueByValue() {
        SplittableRandom r = new SplittableRandom(7);
        for (boolean bf16 : new boolean[] {true, false}) {
            for (int n : new int[] {1000, 70_000, 300_000}) {
                float[] w = new float[n];
                for (int i = 0; i < n; i++) {
                    float v = (float) (r.nextGaussian() * Math.pow(2, r.nextInt(-20, 4)));
                    w[i] = bf16 ? Float.intBitsToFloat(Float.floatToRawIntBits(v) & 0xFFFF0000) : v;
                }
                w[0] = 0f;
                w[1] = -0f;
                w[2] = Float.intBitsToFloat(0x00010000); // a subnormal, BF16 too
                w[3] = -Float.intBitsToFloat(0x00800000);
                w[4] = 4096f; // the largest magnitude: exactly +-448 after scaling
                w[5] = -4096f;
                float scale = 4096f / 448f;
                float[] got = SimulatedFp8Weights.quantizeDequantize(w);
                for (int i = 0; i < n; i++) {
                    float want = SimulatedFp8Weights.quantizeDequantize(w[i], scale);
                    assertEquals(Float.floatToRawIntBits(want), Float.floatToRawIntBits(got[i]), "bf16 " + bf16 + ", n " + n + ", [" + i + "] = " + w[i]);
                }
            }
        }
    }
}
