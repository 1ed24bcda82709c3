package dev.fp8q.verifier.run;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.weights.ActivationQuantizer;
import dev.fp8q.verifier.weights.Fp8Checkpoint;
import dev.fp8q.verifier.weights.ScaleGrid;

/**
 * The FP8 checkpoint's weights as a runtime computes with them: weight-only (dequantized FP8 weights,
 * float32 activations) or W8A8 (the input of every FP8 Linear also rounded to E4M3 with a dynamic
 * per-tensor scale).
 */
public final class Fp8Weights implements RunWeights {

    private final Fp8Checkpoint fp8;
    private final boolean quantizeActivations;

    public Fp8Weights(Fp8Checkpoint fp8, boolean quantizeActivations) {
        this.fp8 = fp8;
        this.quantizeActivations = quantizeActivations;
    }

    @Override
    public float[] tensor(String name) throws FormatException {
        return fp8.values(name);
    }

    @Override
    public boolean has(String name) {
        return fp8.tensor(name).isPresent();
    }

    /** True when this Linear's weight is FP8 in the checkpoint. */
    public boolean quantized(String base) {
        return fp8.isFp8(base + ".weight");
    }

    @Override
    public float[] linear(String base, float[] x, int rows) throws FormatException {
        String weight = base + ".weight";
        float[] input = quantizeActivations && fp8.isFp8(weight) ? activations(weight, x, rows) : x;
        return Linear.apply(input, rows, fp8.values(weight), outFeatures(weight), bias(base));
    }

    /** This Linear on one input both ways, weight-only and W8A8, dequantizing the weight once. */
    public float[][] bothWays(String base, float[] x, int rows) throws FormatException {
        String weight = base + ".weight";
        float[] w = fp8.values(weight);
        float[] bias = bias(base);
        int out = outFeatures(weight);
        return new float[][] {Linear.apply(x, rows, w, out, bias),
                Linear.apply(activations(weight, x, rows), rows, w, out, bias)};
    }

    /** The FP8 GEMM's input: per-tensor E4M3, or MXFP8 (32-blocks along K) beside MX-scaled weights. */
    private float[] activations(String weight, float[] x, int rows) throws FormatException {
        return fp8.scales(weight).granularity() == ScaleGrid.Granularity.MX
                ? ActivationQuantizer.mxQuantizeDequantize(x, x.length / rows) : ActivationQuantizer.quantizeDequantize(x);
    }

    private int outFeatures(String weight) throws FormatException {
        return (int) fp8.require(weight).entry().dim(0);
    }

    private float[] bias(String base) throws FormatException {
        return has(base + ".bias") ? tensor(base + ".bias") : null;
    }
}
