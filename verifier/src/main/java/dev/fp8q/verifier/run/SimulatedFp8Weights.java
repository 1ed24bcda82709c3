package dev.fp8q.verifier.run;

import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.verifier.weights.ActivationQuantizer;

/**
 * The source's Linears as a per-tensor FP8 conversion would give them (scale = amax / 448 in float32, clamp, the
 * exact E4M3 encoding, decoded times the scale), without writing any file: what plan needs to measure a preset or
 * a kept set before convert runs ({@link MixedWeights} picks the set), or with another scaling a {@link WeightSimulation}
 * gives. W8A8 also rounds their inputs to E4M3 (per tensor, or MX per 32 values along K beside MX weights).
 */
public record SimulatedFp8Weights(RunWeights reference, boolean w8a8, WeightSimulation simulation) implements LinearsOver {

    public SimulatedFp8Weights(RunWeights reference, boolean w8a8) {
        this(reference, w8a8, WeightSimulation.PER_TENSOR);
    }

    @Override
    public float[] linear(String base, float[] x, int rows) throws FormatException {
        int k = x.length / rows;
        float[] source = reference.tensor(base + ".weight");
        float[] w = simulation.quantizeDequantize(source, new long[] {source.length / k, k});
        float[] bias = has(base + ".bias") ? tensor(base + ".bias") : null;
        float[] in = !w8a8 ? x : simulation.mx() ? ActivationQuantizer.mxQuantizeDequantize(x, k) : ActivationQuantizer.quantizeDequantize(x);
        return Linear.apply(in, rows, w, w.length / k, bias);
    }

    /**
     * Per-tensor FP8, decoded: NUMERICS.md's encoder on w / (amax / 448). Values that are all BF16 (a BF16 source
     * widened) go through a table of their 65536 patterns, each encoded once: the same function of the bits, so
     * the same floats, without an encode per element (plan calls this for every Linear on every run).
     */
    public static float[] quantizeDequantize(float[] w) {
        float amax = 0;
        int low = 0;
        for (float v : w) {
            amax = Math.max(amax, Math.abs(v));
            low |= Float.floatToRawIntBits(v) & 0xFFFF;
        }
        float scale = amax == 0 ? 1f : amax / E4M3.MAX;
        float[] out = new float[w.length];
        if (low == 0 && w.length >= TABLE) {
            float[] table = new float[TABLE];
            for (int b = 0; b < TABLE; b++) {
                table[b] = quantizeDequantize(Float.intBitsToFloat(b << 16), scale);
            }
            for (int i = 0; i < w.length; i++) {
                out[i] = table[Float.floatToRawIntBits(w[i]) >>> 16];
            }
        } else {
            for (int i = 0; i < w.length; i++) {
                out[i] = quantizeDequantize(w[i], scale);
            }
        }
        return out;
    }

    private static final int TABLE = 1 << 16;

    static float quantizeDequantize(float v, float scale) {
        return E4M3.decode(E4M3.encode(Math.max(-E4M3.MAX, Math.min(E4M3.MAX, v / scale)))) * scale;
    }
}
