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

    /** Per-tensor FP8, decoded: NUMERICS.md's encoder on w / (amax / 448). */
    public static float[] quantizeDequantize(float[] w) {
        float amax = 0;
        for (float v : w) {
            amax = Math.max(amax, Math.abs(v));
        }
        float scale = amax == 0 ? 1f : amax / E4M3.MAX;
        float[] out = new float[w.length];
        for (int i = 0; i < w.length; i++) {
            out[i] = E4M3.decode(E4M3.encode(Math.max(-E4M3.MAX, Math.min(E4M3.MAX, w[i] / scale)))) * scale;
        }
        return out;
    }
}
