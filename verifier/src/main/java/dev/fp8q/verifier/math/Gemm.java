package dev.fp8q.verifier.math;

/**
 * Float32 matrix products. Every implementation is tested against {@link NaiveGemm}.
 * Shapes: {@code a} is [m, k]; {@code c} is [m, n] and is overwritten.
 */
public interface Gemm {

    /** c = a · bᵀ with b [n, k]: a Linear layer (b is its weight) or attention scores (b holds the keys). */
    void mulT(Mat a, Mat b, Mat c);

    /** c = a · b with b [k, n]: attention probabilities times values. */
    void mul(Mat a, Mat b, Mat c);

    static void checkShapes(Mat a, Mat b, Mat c, boolean transposed) {
        int n = transposed ? b.rows() : b.cols();
        int k = transposed ? b.cols() : b.rows();
        if (a.cols() != k || c.rows() != a.rows() || c.cols() != n) {
            throw new IllegalArgumentException("shapes do not chain: a " + a.rows() + "x" + a.cols() + ", b "
                    + b.rows() + "x" + b.cols() + (transposed ? "ᵀ" : "") + ", c " + c.rows() + "x" + c.cols());
        }
    }
}
