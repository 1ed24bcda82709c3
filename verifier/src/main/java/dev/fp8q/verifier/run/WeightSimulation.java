package dev.fp8q.verifier.run;

/**
 * How a simulated conversion stores a Linear's weight: its values after quantize-dequantize, and whether the GEMM
 * is an MX one (its activations then take MX scales too in W8A8). The converter supplies the scalings it writes.
 */
public interface WeightSimulation {

    /** The weight [out, in] as the conversion would dequantize it. */
    float[] quantizeDequantize(float[] w, long[] shape);

    /** True for MXFP8 weights: the W8A8 input is MX-quantized per 32 values along K. */
    boolean mx();

    /** Per-tensor FP8, NUMERICS.md's encoder on w / (amax / 448). */
    WeightSimulation PER_TENSOR = new WeightSimulation() {
        @Override
        public float[] quantizeDequantize(float[] w, long[] shape) {
            return SimulatedFp8Weights.quantizeDequantize(w);
        }

        @Override
        public boolean mx() {
            return false;
        }
    };
}
