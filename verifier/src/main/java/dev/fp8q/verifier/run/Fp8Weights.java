package dev.fp8q.verifier.run;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.weights.ActivationQuantizer;
import dev.fp8q.verifier.weights.ActivationQuantizer.Scheme;
import dev.fp8q.verifier.weights.Fp8Checkpoint;
import dev.fp8q.verifier.weights.ScaleGrid;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The FP8 checkpoint's weights as a runtime computes with them: weight-only (dequantized FP8 weights, float32
 * activations; scheme null) or W8A8, the input of every FP8 Linear also rounded to E4M3 under an activation scheme
 * (dynamic per tensor, per token, per group of 128, or static from the checkpoint's input_scale; an FP8 Linear
 * without one falls back to dynamic per tensor there). MX-scaled weights take MXFP8 inputs, whatever the scheme.
 */
public final class Fp8Weights implements RunWeights {

    private final Fp8Checkpoint fp8;
    private final Scheme scheme;
    /** Static scheme: the fraction of saturated inputs of each Linear's last call. */
    private final Map<String, Double> clipped = new ConcurrentHashMap<>();

    public Fp8Weights(Fp8Checkpoint fp8, Scheme scheme) {
        this.fp8 = fp8;
        this.scheme = scheme;
    }

    /** Weight-only, or W8A8 with one dynamic scale per tensor. */
    public Fp8Weights(Fp8Checkpoint fp8, boolean quantizeActivations) {
        this(fp8, quantizeActivations ? Scheme.TENSOR : null);
    }

    public Scheme scheme() {
        return scheme;
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
        return Linear.apply(input(base, x, rows), rows, fp8.values(weight), outFeatures(weight), bias(base));
    }

    /** The input this run feeds the Linear: x itself, or x through the activation scheme when the weight is FP8. */
    public float[] input(String base, float[] x, int rows) throws FormatException {
        if (scheme == null || !quantized(base)) {
            return x;
        }
        if (fp8.scales(base + ".weight").granularity() == ScaleGrid.Granularity.MX) {
            return ActivationQuantizer.mxQuantizeDequantize(x, x.length / rows); // an MX GEMM: MXFP8 inputs too
        }
        if (scheme == Scheme.STATIC) {
            Optional<Float> s = fp8.inputScale(base);
            if (s.isPresent()) {
                ActivationQuantizer.Static q = ActivationQuantizer.withScale(x, s.get());
                clipped.put(base, x.length == 0 ? 0 : (double) q.clipped() / x.length);
                return q.values();
            }
            return ActivationQuantizer.quantizeDequantize(x);
        }
        return ActivationQuantizer.dynamic(scheme, x, rows);
    }

    /** Static scheme: the fraction of this Linear's last input that saturated at +-448, or null. */
    public Double clipped(String base) {
        return clipped.get(base);
    }

    /** This Linear on one input both ways, weight-only and this run's W8A8, dequantizing the weight once. */
    public float[][] bothWays(String base, float[] x, int rows) throws FormatException {
        String weight = base + ".weight";
        float[] w = fp8.values(weight);
        float[] bias = bias(base);
        int out = outFeatures(weight);
        return new float[][] {Linear.apply(x, rows, w, out, bias), Linear.apply(input(base, x, rows), rows, w, out, bias)};
    }

    private int outFeatures(String weight) throws FormatException {
        return (int) fp8.require(weight).entry().dim(0);
    }

    private float[] bias(String base) throws FormatException {
        return has(base + ".bias") ? tensor(base + ".bias") : null;
    }
}
