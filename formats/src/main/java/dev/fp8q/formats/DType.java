package dev.fp8q.formats;

import java.util.Optional;

/**
 * The safetensors dtypes, declared in the reference enum's order: the reference writer sorts tensors
 * by this order, descending, so the declaration order is part of the file format.
 */
public enum DType {
    BOOL(8), F4(4), F6_E2M3(6), F6_E3M2(6), U8(8), I8(8), F8_E5M2(8), F8_E4M3(8), F8_E8M0(8),
    F8_E4M3FNUZ(8), F8_E5M2FNUZ(8), I16(16), U16(16), F16(16), BF16(16), I32(32), U32(32), F32(32),
    C64(64), F64(64), I64(64), U64(64);

    private final int bits;

    DType(int bits) {
        this.bits = bits;
    }

    /** Bits per element; sub-byte types (F4, F6_*) pack several elements per byte. */
    public int bits() {
        return bits;
    }

    /** Bytes per element for byte-sized types; sub-byte types have no whole element size. */
    public int byteSize() {
        if (bits % 8 != 0) {
            throw new IllegalStateException(this + " has no whole-byte element size");
        }
        return bits / 8;
    }

    /** The floating types fp8q quantizes from. */
    public boolean isQuantizableSource() {
        return this == BF16 || this == F16 || this == F32;
    }

    public boolean isFp8() {
        return this == F8_E4M3 || this == F8_E5M2 || this == F8_E4M3FNUZ || this == F8_E5M2FNUZ;
    }

    public static Optional<DType> parse(String name) {
        for (DType d : values()) {
            if (d.name().equals(name)) {
                return Optional.of(d);
            }
        }
        return Optional.empty();
    }
}
