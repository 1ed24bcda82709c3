package dev.fp8q.verifier.math;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.SplittableRandom;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;

class GemmTest {

    static Mat random(int rows, int cols, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] d = new float[rows * cols];
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) r.nextGaussian();
        }
        return Mat.of(d, rows, cols);
    }

    /** Exact-ish float64 product, and the sum of |terms| that bounds float32 rounding. */
    static double[][] reference(Mat a, Mat b, boolean transposed, double[][] absSum) {
        int n = transposed ? b.rows() : b.cols();
        double[][] out = new double[a.rows()][n];
        for (int i = 0; i < a.rows(); i++) {
            for (int j = 0; j < n; j++) {
                double s = 0, abs = 0;
                for (int p = 0; p < a.cols(); p++) {
                    double t = (double) a.get(i, p) * (transposed ? b.get(j, p) : b.get(p, j));
                    s += t;
                    abs += Math.abs(t);
                }
                out[i][j] = s;
                absSum[i][j] = abs;
            }
        }
        return out;
    }

    static void assertClose(Mat a, Mat b, Mat c, boolean transposed) {
        int n = c.cols();
        double[][] abs = new double[a.rows()][n];
        double[][] ref = reference(a, b, transposed, abs);
        for (int i = 0; i < a.rows(); i++) {
            for (int j = 0; j < n; j++) {
                // float32 accumulation over k terms errs by at most ~k * eps * sum|terms|.
                double tol = (a.cols() + 2) * 0x1p-24 * abs[i][j] + 1e-30;
                double err = Math.abs(c.get(i, j) - ref[i][j]);
                assertTrue(err <= tol, "c[" + i + "," + j + "] = " + c.get(i, j) + " vs " + ref[i][j] + " tol " + tol);
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"1,1,1", "6,32,256", "7,33,257", "13,5,3", "385,70,600", "100,129,1", "2,200,513", "0,4,4", "4,4,0"})
    void vectorAndNaiveMatchFloat64(int m, int n, int k) {
        Mat a = random(m, k, 1);
        Mat bt = random(n, k, 2);
        Mat b = random(k, n, 3);
        for (Gemm g : new Gemm[] {new NaiveGemm(), VectorGemm.parallel(), VectorGemm.serial()}) {
            Mat c = random(m, n, 4); // garbage that must be overwritten
            g.mulT(a, bt, c);
            assertClose(a, bt, c, true);
            Mat c2 = random(m, n, 5);
            g.mul(a, b, c2);
            assertClose(a, b, c2, false);
        }
    }

    @Test
    void viewsOfHeadsAndRowsAreRespected() {
        // q and k as [tokens, heads * 24]; head 1 is columns 24..47; output into the middle of a wider matrix.
        Mat q = random(50, 72, 7);
        Mat k = random(40, 72, 8);
        Mat out = Mat.zeros(50, 100);
        Mat view = out.columns(30, 40);
        VectorGemm.parallel().mulT(q.columns(24, 24), k.columns(24, 24), view);
        assertClose(q.columns(24, 24), k.columns(24, 24), view, true);
        for (int i = 0; i < 50; i++) {
            for (int j = 0; j < 100; j++) {
                if (j < 30 || j >= 70) {
                    assertEquals(0f, out.get(i, j), "wrote outside the view at " + i + "," + j);
                }
            }
        }
        Mat v = random(40, 72, 9);
        Mat p = random(50, 40, 10);
        Mat o = Mat.zeros(50, 72);
        VectorGemm.serial().mul(p, v.columns(48, 24), o.columns(48, 24));
        assertClose(p, v.columns(48, 24), o.columns(48, 24), false);
        assertEquals(0f, o.get(3, 47));
    }

    @Test
    void theRequestedVectorWidthIsTheOneInUse() {
        String bits = System.getProperty("fp8q.vector.bits");
        if (bits != null) {
            assertEquals(Integer.parseInt(bits), VectorGemm.vectorBits());
        }
    }

    @Test
    void mismatchedShapesAreRefused() {
        assertThrows(IllegalArgumentException.class,
                () -> VectorGemm.parallel().mulT(Mat.zeros(3, 4), Mat.zeros(5, 3), Mat.zeros(3, 5)));
        assertThrows(IllegalArgumentException.class, () -> new Mat(new float[10], 2, 3, 3, 3));
    }
}
