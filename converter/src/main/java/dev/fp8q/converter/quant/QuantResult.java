package dev.fp8q.converter.quant;

/**
 * A quantized tensor's figures: its amax and its scales (one, or the grid in row-major order), and the
 * weight's own error (signal and noise energy in float64, dequantized as code * scale in float32), with the
 * fraction of nonzero values that became zero.
 */
public record QuantResult(float amax, float[] scales, double signal, double noise, long nonzero, long underflow) {

    /** The chunks' figures summed in order (ChunkStats.sum), beside amax and the scales. */
    static QuantResult of(float amax, float[] scales, ChunkStats[] chunks) {
        ChunkStats total = ChunkStats.sum(chunks);
        return new QuantResult(amax, scales, total.signal, total.noise, total.nonzero, total.underflow);
    }

    /** The same, amax the largest of the parts' (bands or chunks). */
    static QuantResult of(float[] partAmax, float[] scales, ChunkStats[] chunks) {
        float amax = 0;
        for (float a : partAmax) {
            amax = Math.max(amax, a);
        }
        return of(amax, scales, chunks);
    }

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
