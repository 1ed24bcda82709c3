package dev.fp8q.verifier.math;

/** The plain triple loop, float32 accumulation in k order: the reference the fast kernels are tested against. */
public final class NaiveGemm implements Gemm {

    @Override
    public void mulT(Mat a, Mat b, Mat c) {
        Gemm.checkShapes(a, b, c, true);
        for (int i = 0; i < a.rows(); i++) {
            for (int j = 0; j < b.rows(); j++) {
                float s = 0;
                for (int p = 0; p < a.cols(); p++) {
                    s += a.get(i, p) * b.get(j, p);
                }
                c.set(i, j, s);
            }
        }
    }

    @Override
    public void mul(Mat a, Mat b, Mat c) {
        Gemm.checkShapes(a, b, c, false);
        for (int i = 0; i < a.rows(); i++) {
            for (int j = 0; j < b.cols(); j++) {
                float s = 0;
                for (int p = 0; p < a.cols(); p++) {
                    s += a.get(i, p) * b.get(p, j);
                }
                c.set(i, j, s);
            }
        }
    }
}
