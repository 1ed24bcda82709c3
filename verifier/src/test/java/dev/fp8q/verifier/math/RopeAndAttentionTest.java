package dev.fp8q.verifier.math;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

class RopeAndAttentionTest {

    @Test
    void wanSplitsHead128Into22_21_21() {
        assertArrayEquals(new int[] {22, 21, 21}, new Rope(128).pairsPerPart());
    }

    @Test
    void ropeRotatesEachPartByItsOwnPosition() {
        // One token at frame 2, row 1, column 3 of a 3x2x4 grid; one head of 128 with every pair = (1, 0).
        int[] grid = {3, 2, 4};
        int tokens = 24;
        int t = 2 * 8 + 1 * 4 + 3;
        float[] x = new float[tokens * 128];
        for (int i = 0; i < x.length; i += 2) {
            x[i] = 1;
        }
        new Rope(128).apply(x, grid[0], grid[1], grid[2], 128);
        int o = t * 128;
        // pair 0 of each part: angle = position; pair j of the frame part: 2 * 10000^(-2j/44).
        assertEquals((float) Math.cos(2), x[o], 1e-7);
        assertEquals((float) Math.sin(2), x[o + 1], 1e-7);
        assertEquals((float) Math.cos(2 * Math.pow(10000, -10.0 / 44)), x[o + 10], 1e-7);
        assertEquals((float) Math.cos(1), x[o + 44], 1e-7); // pair 22: first of the height part
        assertEquals((float) Math.sin(1), x[o + 45], 1e-7);
        assertEquals((float) Math.cos(3), x[o + 86], 1e-7); // pair 43: first of the width part
        assertEquals((float) Math.sin(3 * Math.pow(10000, -40.0 / 42)), x[o + 127], 1e-7); // pair 63
        // token 0 sits at (0, 0, 0): unchanged.
        assertEquals(1f, x[0]);
        assertEquals(0f, x[1]);
    }

    @Test
    void ropeKeepsNormsAndIsRelative() {
        // q.k after RoPE depends only on the offset between positions: compare (f, f+1) pairs.
        SplittableRandom r = new SplittableRandom(1);
        int dim = 128;
        float[] q = new float[4 * dim];
        float[] k = new float[4 * dim];
        for (int i = 0; i < dim; i++) {
            float a = (float) r.nextGaussian();
            float b = (float) r.nextGaussian();
            for (int t = 0; t < 4; t++) {
                q[t * dim + i] = a;
                k[t * dim + i] = b;
            }
        }
        Rope rope = new Rope(dim);
        rope.apply(q, 4, 1, 1, dim);
        rope.apply(k, 4, 1, 1, dim);
        double d01 = dot(q, 0, k, 1, dim);
        double d12 = dot(q, 1, k, 2, dim);
        double d23 = dot(q, 2, k, 3, dim);
        assertEquals(d01, d12, 1e-4);
        assertEquals(d12, d23, 1e-4);
        assertEquals(dot(q, 0, q, 0, dim), dot(q, 3, q, 3, dim), 1e-3);
    }

    static double dot(float[] a, int ta, float[] b, int tb, int dim) {
        double s = 0;
        for (int i = 0; i < dim; i++) {
            s += (double) a[ta * dim + i] * b[tb * dim + i];
        }
        return s;
    }

    @Test
    void zeroQueriesAverageTheValuesAndOneKeyReturnsItsValue() {
        int heads = 2, d = 8, keys = 5;
        SplittableRandom r = new SplittableRandom(2);
        Mat v = Mat.zeros(keys, heads * d);
        for (int i = 0; i < v.data().length; i++) {
            v.data()[i] = (float) r.nextGaussian();
        }
        Mat out = Attention.forward(Mat.zeros(3, heads * d), randomKeys(keys, heads * d, r), v, heads);
        for (int c = 0; c < heads * d; c++) {
            double mean = 0;
            for (int u = 0; u < keys; u++) {
                mean += v.get(u, c) / keys;
            }
            assertEquals(mean, out.get(2, c), 1e-6);
        }
        Mat q = randomKeys(300, heads * d, r); // more rows than one query chunk
        Mat one = Attention.forward(q, randomKeys(1, heads * d, r), v.rowRange(0, 1), heads);
        for (int c = 0; c < heads * d; c++) {
            assertEquals(v.get(0, c), one.get(299, c), 1e-6);
        }
    }

    @Test
    void softmaxFollowsTheScaledScores() {
        // q . k = 2 for key 0 and 0 for key 1 at head_dim 4: weights softmax(2/2, 0) = (e/(e+1), 1/(e+1)).
        Mat q = Mat.of(new float[] {1, 1, 1, 1}, 1, 4);
        Mat k = Mat.of(new float[] {0.5f, 0.5f, 0.5f, 0.5f, 0, 0, 0, 0}, 2, 4);
        Mat v = Mat.of(new float[] {1, 0, 0, 0, 0, 1, 0, 0}, 2, 4);
        Mat out = Attention.forward(q, k, v, 1);
        double e = Math.E;
        assertEquals(e / (e + 1), out.get(0, 0), 1e-6);
        assertEquals(1 / (e + 1), out.get(0, 1), 1e-6);
    }

    static Mat randomKeys(int rows, int cols, SplittableRandom r) {
        Mat m = Mat.zeros(rows, cols);
        for (int i = 0; i < m.data().length; i++) {
            m.data()[i] = (float) r.nextGaussian();
        }
        return m;
    }
}
