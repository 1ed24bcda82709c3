package dev.fp8q.verifier.math;

import java.util.stream.IntStream;

/**
 * The elementwise and row-wise operations of a transformer block, float32 storage with float64 row sums.
 * Matrices are row-major [rows, dim] arrays.
 */
public final class Ops {

    private Ops() {}

    /** LayerNorm over each row (biased variance, as torch); weight and bias may be null (no affine). */
    public static float[] layerNorm(float[] x, int rows, int dim, float eps, float[] weight, float[] bias) {
        float[] out = new float[x.length];
        IntStream.range(0, rows).parallel().forEach(r -> {
            int o = r * dim;
            double sum = 0;
            for (int i = 0; i < dim; i++) {
                sum += x[o + i];
            }
            float mean = (float) (sum / dim);
            double sq = 0;
            for (int i = 0; i < dim; i++) {
                double d = x[o + i] - mean;
                sq += d * d;
            }
            float inv = (float) (1 / Math.sqrt(sq / dim + eps));
            for (int i = 0; i < dim; i++) {
                float v = (x[o + i] - mean) * inv;
                if (weight != null) {
                    v = v * weight[i] + bias[i];
                }
                out[o + i] = v;
            }
        });
        return out;
    }

    /** Wan's RMSNorm over each whole row, in place: x * rsqrt(mean(x^2) + eps) * weight. */
    public static void rmsNorm(float[] x, int rows, int dim, float eps, float[] weight) {
        IntStream.range(0, rows).parallel().forEach(r -> {
            int o = r * dim;
            double sq = 0;
            for (int i = 0; i < dim; i++) {
                sq += (double) x[o + i] * x[o + i];
            }
            float inv = (float) (1 / Math.sqrt(sq / dim + eps));
            for (int i = 0; i < dim; i++) {
                x[o + i] = x[o + i] * inv * weight[i];
            }
        });
    }

    /** GELU with the tanh approximation, in place. */
    public static void geluTanh(float[] x) {
        final float c = (float) Math.sqrt(2 / Math.PI);
        IntStream.range(0, chunks(x.length)).parallel().forEach(ch -> {
            for (int i = ch * CHUNK, end = Math.min(x.length, i + CHUNK); i < end; i++) {
                float v = x[i];
                x[i] = 0.5f * v * (1 + (float) Math.tanh(c * (v + 0.044715f * v * v * v)));
            }
        });
    }

    /** SiLU (x * sigmoid(x)), in place. */
    public static void silu(float[] x) {
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) (x[i] / (1 + Math.exp(-x[i])));
        }
    }

    /** Adds bias[j] to column j of every row. */
    public static void addBias(float[] y, int rows, int n, float[] bias) {
        IntStream.range(0, rows).parallel().forEach(r -> {
            for (int j = 0, o = r * n; j < n; j++) {
                y[o + j] += bias[j];
            }
        });
    }

    /** Multiplies every element by s, then takes a numerically stable softmax of each row, in place. */
    public static void scaledSoftmax(Mat s, float scale) {
        float[] d = s.data();
        for (int r = 0; r < s.rows(); r++) {
            int o = s.index(r, 0);
            float max = Float.NEGATIVE_INFINITY;
            for (int j = 0; j < s.cols(); j++) {
                max = Math.max(max, d[o + j] * scale);
            }
            double sum = 0;
            for (int j = 0; j < s.cols(); j++) {
                float e = (float) Math.exp(d[o + j] * scale - max);
                d[o + j] = e;
                sum += e;
            }
            float inv = (float) (1 / sum);
            for (int j = 0; j < s.cols(); j++) {
                d[o + j] *= inv;
            }
        }
    }

    private static final int CHUNK = 1 << 16;

    private static int chunks(int n) {
        return (n + CHUNK - 1) / CHUNK;
    }
}
