package dev.fp8q.formats.codec;

import dev.fp8q.formats.DType;

/**
 * The exact fast path for 16-bit sources under one scale: all 65536 input patterns mapped to their E4M3
 * byte by the exact encoder, so quantizing a tensor is one table lookup per element.
 */
public final class E4M3Table {

    private E4M3Table() {}

    /** table[bits] = encode(toFloat(bits) / scale), the quotient divided in float32. */
    public static byte[] build(DType source, float scale) {
        if (source != DType.BF16 && source != DType.F16) {
            throw new IllegalArgumentException("table path needs a 16-bit source, not " + source);
        }
        byte[] table = new byte[65536];
        for (int bits = 0; bits < 65536; bits++) {
            float x = Elements.halfToFloat(source, bits);
            table[bits] = E4M3.encode(x / scale);
        }
        return table;
    }
}
