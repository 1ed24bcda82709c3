package dev.fp8q.verifier.run;

import dev.fp8q.verifier.math.Mat;
import dev.fp8q.verifier.math.Ops;
import dev.fp8q.verifier.math.VectorGemm;
import java.util.concurrent.atomic.LongAdder;

/** x Wᵀ + b on the vector GEMM, counting the floating-point operations done. */
public final class Linear {

    private static final LongAdder FLOPS = new LongAdder();

    private Linear() {}

    /** x [rows, in], w [out, in] (any trailing shape flattened), bias [out] or null. */
    public static float[] apply(float[] x, int rows, float[] w, int out, float[] bias) {
        if (out == 0 || w.length % out != 0 || (long) rows * (w.length / out) != x.length) {
            throw new IllegalArgumentException("linear: input of " + x.length + " values is not " + rows + " rows of "
                    + (out == 0 ? 0 : w.length / out));
        }
        int in = w.length / out;
        float[] y = new float[Math.multiplyExact(rows, out)];
        VectorGemm.parallel().mulT(Mat.of(x, rows, in), Mat.of(w, out, in), Mat.of(y, rows, out));
        if (bias != null) {
            Ops.addBias(y, rows, out, bias);
        }
        count(2L * rows * in * out);
        return y;
    }

    public static void count(long flops) {
        FLOPS.add(flops);
    }

    /** Floating-point operations done so far by this JVM's verifier runs. */
    public static long flops() {
        return FLOPS.sum();
    }
}
