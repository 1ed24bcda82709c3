package dev.fp8q.converter.quant;

import dev.fp8q.formats.DType;
import java.lang.foreign.MemorySegment;

/**
 * The hot loops of per-tensor E4M3 quantization over a range of elements of a BF16, F16 or F32 tensor.
 * {@link ScalarQuantKernel} is the definition; {@link VectorQuantKernel} must write the same bytes.
 */
public interface QuantKernel {

    /** Vectors per block of the figures' float32 lane sums. */
    int BLOCK = 64;

    /**
     * The largest magnitude bit pattern (bits with the sign cleared) over elements [from, to). Magnitude bits
     * order like |x|, and any value at or above the dtype's infinity pattern is NaN or infinite.
     */
    int maxMagnitudeBits(MemorySegment src, DType dtype, long from, long to);

    /**
     * Writes encode(x / scale) of elements [from, to) to out[0, to - from) and adds the error figures to
     * stats, only meaningful for finite input. The figures are defined by their summation: the whole
     * vectors of the range, in blocks of BLOCK vectors, are summed per lane in float32 with fused
     * multiply-adds (on x and the error times a power of two, {@link StatsScale}); each block's lanes are
     * added in lane order in float64; the elements after the last whole vector are added in float64.
     */
    void encode(MemorySegment src, DType dtype, long from, long to, float scale, MemorySegment out, ChunkStats stats);

    /**
     * The vector kernel, once warmed up, where the CPU has 256-bit or wider vectors (or -Dfp8q.vector.bits
     * says so); the scalar kernel until then and elsewhere.
     */
    static QuantKernel best() {
        return VectorQuantKernel.usable() ? AdaptiveQuantKernel.INSTANCE : ScalarQuantKernel.INSTANCE;
    }

    /** The bit pattern at and above which a magnitude is NaN or infinite. */
    static int nonFiniteBits(DType dtype) {
        return switch (dtype) {
            case BF16 -> 0x7F80;
            case F16 -> 0x7C00;
            case F32 -> 0x7F80_0000;
            default -> throw new IllegalArgumentException("cannot quantize " + dtype);
        };
    }
}
