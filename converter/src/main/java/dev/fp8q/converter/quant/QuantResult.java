package dev.fp8q.converter.quant;

/**
 * A quantized tensor's figures: its amax and its scales (one, or the grid in row-major order), and the
 * weight's own error (signal and noise energy in float64, dequantized as code * scale in float32), with the
 * fraction of nonzero values that became zero.
 */
public record QuantResult(float amax, float[] scales, double signal, double noise, long nonzero, long underflow) {

    /** The scale of a per-tensor result. */
    public float scale() {
        if (scales.length != 1) {
            throw new IllegalStateException("a grid of " + scales.length + " scales");
        }
        return scales[0];
    }

    /** SQNR in dB; null when the tensor is reproduced exactly (no noise). */
    public Double sqnrDb() {
        if (noise == 0) {
            return null;
        }
        return signal == 0 ? Double.NEGATIVE_INFINITY : 10 * Math.log10(signal / noise);
    }

    public double underflowFraction() {
        return nonzero == 0 ? 0 : (double) underflow / nonzero;
    }
}
