package dev.fp8q.converter.quant;

import dev.fp8q.formats.DType;
import java.lang.foreign.MemorySegment;

/**
 * The scalar kernel until the vector kernel has been compiled (it warms up in the background on a sample
 * of the first tensor it is given), the vector kernel after. Both write the same bytes and figures, so
 * which one took a chunk is invisible in the output.
 */
final class AdaptiveQuantKernel implements QuantKernel {

    static final AdaptiveQuantKernel INSTANCE = new AdaptiveQuantKernel();

    private AdaptiveQuantKernel() {}

    private static QuantKernel pick(MemorySegment src, DType dtype) {
        if (VectorQuantKernel.ready()) {
            return VectorQuantKernel.INSTANCE;
        }
        VectorQuantKernel.warmUpInBackground(src, dtype);
        return ScalarQuantKernel.INSTANCE;
    }

    @Override
    public int maxMagnitudeBits(MemorySegment src, DType dtype, long from, long to) {
        return pick(src, dtype).maxMagnitudeBits(src, dtype, from, to);
    }

    @Override
    public void encode(MemorySegment src, DType dtype, long from, long to, float scale, MemorySegment out,
            ChunkStats stats) {
        pick(src, dtype).encode(src, dtype, from, to, scale, out, stats);
    }
}
