package dev.fp8q.verifier.math;

import java.util.stream.IntStream;

/**
 * Multi-head scaled dot-product attention without masks: for each head, softmax(q kᵀ / sqrt(d)) v.
 * q [Lq, heads * d], k and v [Lk, heads * d]. Query rows are taken in chunks so memory stays
 * O(chunk x Lk) per thread whatever the sequence length; (head, chunk) pairs run in parallel.
 */
public final class Attention {

    static final int QUERY_CHUNK = 256;

    private Attention() {}

    public static Mat forward(Mat q, Mat k, Mat v, int heads) {
        int dim = q.cols();
        if (dim % heads != 0 || k.cols() != dim || v.cols() != dim || k.rows() != v.rows()) {
            throw new IllegalArgumentException("attention shapes: q " + q.rows() + "x" + dim + ", k " + k.rows() + "x"
                    + k.cols() + ", v " + v.rows() + "x" + v.cols() + ", heads " + heads);
        }
        int d = dim / heads;
        int chunks = (q.rows() + QUERY_CHUNK - 1) / QUERY_CHUNK;
        Mat out = Mat.zeros(q.rows(), dim);
        float scale = (float) (1 / Math.sqrt(d));
        Gemm gemm = VectorGemm.serial();
        IntStream.range(0, heads * chunks).parallel().forEach(t -> {
            int h = t / chunks;
            int r0 = (t % chunks) * QUERY_CHUNK;
            int rows = Math.min(QUERY_CHUNK, q.rows() - r0);
            Mat s = Mat.zeros(rows, k.rows());
            gemm.mulT(q.rowRange(r0, rows).columns(h * d, d), k.columns(h * d, d), s);
            Ops.scaledSoftmax(s, scale);
            gemm.mul(s, v.columns(h * d, d), out.rowRange(r0, rows).columns(h * d, d));
        });
        return out;
    }
}
