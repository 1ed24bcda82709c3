package dev.fp8q.verifier.calibrate;

import dev.fp8q.verifier.weights.ActivationQuantizer;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * What calibration keeps of one Linear's inputs, in bounded memory: amax (overall and per step), and for the
 * percentile and mse methods a second pass over the same inputs.
 * <p>Percentile, exact: |x| as float32 bits orders like |x| itself, so pass one counts values in 2^16 buckets of the
 * top 16 bits, which names the bucket holding the rank; pass two counts that bucket's values by their low 16 bits,
 * which gives the value at the rank exactly (nearest-rank: the ceil(P/100 * N)-th smallest |x|).
 * <p>MSE: pass two sums, for each candidate amax' = amax * m (m = 0.25, 0.5, ..., 4.0, ModelOpt's MseCalibrator
 * sweep), the squared error of every input value quantized with scale amax' / 448 (saturating), in float64.
 */
public final class InputStats {

    /** AMAX: first pass (amax, and the top-bits histogram when percentile); REFINE: the method's second pass. */
    public enum Pass { AMAX, PERCENTILE, MSE }

    public static final double[] MSE_MULTIPLIERS = new double[16];

    static {
        for (int i = 0; i < 16; i++) {
            MSE_MULTIPLIERS[i] = 0.25 * (i + 1);
        }
    }

    private float amax;
    private long count;
    private final Map<String, Float> amaxPerStep = new LinkedHashMap<>();
    private long[] top;
    private long[] low;
    private int bucket = -1;
    private double[] sse;

    /** Keep the top-bits histogram in the first pass (percentile). */
    public void histogram() {
        top = new long[1 << 16];
    }

    public void record(Pass pass, String step, float[] x) {
        switch (pass) {
            case AMAX -> {
                float m = 0;
                for (float v : x) {
                    m = Math.max(m, Math.abs(v));
                    if (top != null) {
                        top[(Float.floatToRawIntBits(v) & 0x7fffffff) >>> 16]++;
                    }
                }
                amax = Math.max(amax, m);
                count += x.length;
                amaxPerStep.merge(step, m, Math::max);
            }
            case PERCENTILE -> {
                for (float v : x) {
                    int bits = Float.floatToRawIntBits(v) & 0x7fffffff;
                    if (bits >>> 16 == bucket) {
                        low[bits & 0xffff]++;
                    }
                }
            }
            case MSE -> {
                for (int i = 0; i < sse.length; i++) {
                    float scale = candidate(i) / dev.fp8q.formats.codec.E4M3.MAX;
                    double e = 0;
                    for (float v : x) {
                        double d = v - ActivationQuantizer.quantize(v, scale);
                        e += d * d;
                    }
                    sse[i] += e;
                }
            }
        }
    }

    /** Before the percentile pass: the bucket holding rank k (1-based) of the values. */
    public void preparePercentile(long k) {
        long seen = 0;
        for (int b = 0; b < top.length; b++) {
            if (seen + top[b] >= k) {
                bucket = b;
                rankInBucket = k - seen;
                low = new long[1 << 16];
                return;
            }
            seen += top[b];
        }
    }

    private long rankInBucket;

    public float percentileValue() {
        long seen = 0;
        for (int i = 0; i < low.length; i++) {
            seen += low[i];
            if (seen >= rankInBucket) {
                return Float.intBitsToFloat(bucket << 16 | i);
            }
        }
        return amax;
    }

    public void prepareMse() {
        sse = new double[MSE_MULTIPLIERS.length];
    }

    float candidate(int i) {
        return (float) (amax * MSE_MULTIPLIERS[i]);
    }

    /** The candidate amax with the least squared error (the first of equals). */
    public float mseValue() {
        int best = 0;
        for (int i = 1; i < sse.length; i++) {
            if (sse[i] < sse[best]) {
                best = i;
            }
        }
        return candidate(best);
    }

    public float amax() {
        return amax;
    }

    public long count() {
        return count;
    }

    public Map<String, Float> amaxPerStep() {
        return amaxPerStep;
    }
}
