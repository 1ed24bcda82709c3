package dev.fp8q.cli;

import dev.fp8q.converter.quant.QuantResult;
import dev.fp8q.converter.quant.Scaling;
import dev.fp8q.converter.quant.TensorQuantizer;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.verifier.run.WeightSimulation;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.concurrent.ForkJoinPool;

/**
 * A scaling's weights for plan's chained simulation: the converter's own quantizer (the bytes convert writes) on the
 * weight's float32 values, decoded times their scales. The source's BF16/F16 values are exact in float32, so the
 * codes and scales are those of the source tensor.
 */
record ScalingSimulation(Scaling scaling, ForkJoinPool pool) implements WeightSimulation {

    @Override
    public float[] quantizeDequantize(float[] w, long[] shape) {
        byte[] codes = new byte[w.length];
        QuantResult r;
        try {
            r = new TensorQuantizer(pool).quantize("simulated", MemorySegment.ofArray(w), DType.F32, shape, scaling,
                    (from, bytes) -> MemorySegment.copy(bytes, ValueLayout.JAVA_BYTE, 0, codes, (int) from, (int) bytes.byteSize()));
        } catch (Exception e) {
            throw new IllegalStateException("simulating " + scaling.describe() + ": " + e.getMessage(), e);
        }
        long cols = Scaling.cols(shape);
        float[] out = new float[w.length];
        for (int i = 0; i < w.length; i++) {
            out[i] = E4M3.decode(codes[i]) * r.scales()[(int) scaling.scaleIndex(i / cols, i % cols, cols)];
        }
        return out;
    }

    @Override
    public boolean mx() {
        return scaling.mx();
    }
}
