package dev.fp8q.formats.codec;

import dev.fp8q.formats.DType;
import java.lang.foreign.MemorySegment;

/**
 * max |x| over a tensor's finite values, and how many values are NaN or infinite (a tensor holding any is
 * refused for quantization). For 16-bit floats the magnitude bits (bits & 0x7FFF) order like |x|, so the
 * maximum is taken on integers.
 */
public record Amax(float amax, long nonFinite) {

    public static Amax of(MemorySegment data, DType dtype) {
        long n;
        switch (dtype) {
            case BF16, F16 -> {
                n = data.byteSize() / 2;
                int infExp = dtype == DType.BF16 ? 0x7F80 : 0x7C00;
                int max = 0;
                long bad = 0;
                for (long i = 0; i < n; i++) {
                    int m = data.getAtIndex(Elements.SHORT, i) & 0x7FFF;
                    if (m >= infExp) {
                        bad++;
                    } else if (m > max) {
                        max = m;
                    }
                }
                float a = Elements.halfToFloat(dtype, max);
                return new Amax(a, bad);
            }
            case F32 -> {
                n = data.byteSize() / 4;
                int max = 0;
                long bad = 0;
                for (long i = 0; i < n; i++) {
                    int m = data.getAtIndex(Elements.INT, i) & 0x7FFF_FFFF;
                    if (m >= 0x7F80_0000) {
                        bad++;
                    } else if (m > max) {
                        max = m;
                    }
                }
                return new Amax(Float.intBitsToFloat(max), bad);
            }
            default -> throw new IllegalArgumentException("amax of " + dtype + " is not supported");
        }
    }

    /** The per-tensor dequant multiplier amax / 448 in float32; an all-zero tensor gets 1.0. */
    public float perTensorScale() {
        return amax == 0f ? 1f : amax / E4M3.MAX;
    }
}
