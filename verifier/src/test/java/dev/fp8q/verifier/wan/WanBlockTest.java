package dev.fp8q.verifier.wan;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.verifier.wan.WanNaming.Param;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class WanBlockTest {

    static final int DIM = 48;
    static final int HEAD = 24;
    static final int FFN = 96;
    static final int[] GRID = {2, 3, 4};
    static final int CTX = 7;

    static float[] gaussian(SplittableRandom r, int n, double std) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (r.nextGaussian() * std);
        }
        return v;
    }

    /** Random block-0 weights under the given naming (same values for both namings with the same seed). */
    static MapWeights weights(WanNaming naming, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        MapWeights w = new MapWeights();
        for (Param p : List.of(Param.SELF_Q, Param.SELF_K, Param.SELF_V, Param.SELF_O, Param.CROSS_Q, Param.CROSS_K,
                Param.CROSS_V, Param.CROSS_O)) {
            w.put(naming.weight(p, 0), gaussian(r, DIM * DIM, 1 / Math.sqrt(DIM)), DIM);
            w.put(naming.bias(p, 0), gaussian(r, DIM, 0.1), DIM);
        }
        for (Param p : List.of(Param.SELF_NORM_Q, Param.SELF_NORM_K, Param.CROSS_NORM_Q, Param.CROSS_NORM_K)) {
            w.put(naming.weight(p, 0), plusOne(gaussian(r, DIM, 0.1)), DIM);
        }
        w.put(naming.weight(Param.NORM3, 0), plusOne(gaussian(r, DIM, 0.1)), DIM);
        w.put(naming.bias(Param.NORM3, 0), gaussian(r, DIM, 0.1), DIM);
        w.put(naming.weight(Param.FFN_0, 0), gaussian(r, FFN * DIM, 1 / Math.sqrt(DIM)), FFN);
        w.put(naming.bias(Param.FFN_0, 0), gaussian(r, FFN, 0.1), FFN);
        w.put(naming.weight(Param.FFN_2, 0), gaussian(r, DIM * FFN, 1 / Math.sqrt(FFN)), DIM);
        w.put(naming.bias(Param.FFN_2, 0), gaussian(r, DIM, 0.1), DIM);
        w.put(naming.weight(Param.MODULATION, 0), gaussian(r, 6 * DIM, 0.3), 1);
        return w;
    }

    static float[] plusOne(float[] v) {
        for (int i = 0; i < v.length; i++) {
            v[i] += 1;
        }
        return v;
    }

    static WanInputs inputs(long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        int tokens = GRID[0] * GRID[1] * GRID[2];
        return new WanInputs(gaussian(r, tokens * DIM, 1), GRID, gaussian(r, CTX * DIM, 1), CTX,
                gaussian(r, 6 * DIM, 0.3), false, List.of());
    }

    static double[][] rows(float[] v, int n) {
        double[][] out = new double[n][DIM];
        for (int t = 0; t < n; t++) {
            for (int i = 0; i < DIM; i++) {
                out[t][i] = v[t * DIM + i];
            }
        }
        return out;
    }

    @Test
    void float32BlockMatchesIndependentFloat64Block() throws Exception {
        MapWeights w = weights(WanNaming.ORIGINAL, 11);
        WanInputs in = inputs(12);
        float[] got = new WanBlock(WanNaming.ORIGINAL, DIM, HEAD).forward(0, in, w);
        double[] e = new double[6 * DIM];
        for (int i = 0; i < e.length; i++) {
            e[i] = in.e()[i];
        }
        double[] want = new Reference64(w.values, DIM, HEAD).forward(0, rows(in.x(), in.tokens()), GRID,
                rows(in.context(), CTX), e);
        double num = 0, den = 0, update = 0;
        for (int i = 0; i < want.length; i++) {
            num += (got[i] - want[i]) * (got[i] - want[i]);
            den += want[i] * want[i];
            update += (want[i] - in.x()[i]) * (want[i] - in.x()[i]);
        }
        assertTrue(update > 0.1 * den, "the block must change x noticeably for this test to mean anything");
        double rel = Math.sqrt(num / update);
        assertTrue(rel < 2e-5, "float32 block vs float64: rel error of the update " + rel);
    }

    @Test
    void diffusersNamingRunsTheSameMath() throws Exception {
        WanInputs in = inputs(3);
        float[] a = new WanBlock(WanNaming.ORIGINAL, DIM, HEAD).forward(0, in, weights(WanNaming.ORIGINAL, 5));
        float[] b = new WanBlock(WanNaming.DIFFUSERS, DIM, HEAD).forward(0, in, weights(WanNaming.DIFFUSERS, 5));
        assertArrayEquals(a, b);
    }

    @Test
    void perTokenTimestepsEqualRepeatedRows() throws Exception {
        WanInputs in = inputs(4);
        int tokens = in.tokens();
        float[] rowsE = new float[tokens * 6 * DIM];
        for (int t = 0; t < tokens; t++) {
            System.arraycopy(in.e(), 0, rowsE, t * 6 * DIM, 6 * DIM);
        }
        WanInputs perToken = new WanInputs(in.x(), GRID, in.context(), CTX, rowsE, true, List.of());
        MapWeights w = weights(WanNaming.ORIGINAL, 6);
        WanBlock block = new WanBlock(WanNaming.ORIGINAL, DIM, HEAD);
        assertArrayEquals(block.forward(0, in, w), block.forward(0, perToken, w));
    }

    @Test
    void sinusoidalEmbeddingIsCosThenSin() {
        float[] s = WanInputs.sinusoidal(8, 3);
        assertEquals((float) Math.cos(3), s[0]);
        assertEquals((float) Math.sin(3), s[4]);
        assertEquals((float) Math.cos(3 * Math.pow(10000, -0.25)), s[1]);
        assertEquals((float) Math.sin(3 * Math.pow(10000, -0.75)), s[7]);
    }
}
