package dev.fp8q.formats.codec;

import dev.fp8q.formats.DType;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/** Little-endian, unaligned element access to tensor bytes, and the 16-bit float conversions. */
public final class Elements {

    public static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    public static final ValueLayout.OfDouble DOUBLE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private Elements() {}

    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** A BF16 or F16 bit pattern as float32. */
    public static float halfToFloat(DType dtype, int bits) {
        return dtype == DType.BF16 ? bf16ToFloat((short) bits) : Float.float16ToFloat((short) bits);
    }

    /** Round to nearest even; NaN stays a (quiet) NaN. */
    public static short floatToBf16(float f) {
        int bits = Float.floatToRawIntBits(f);
        if ((bits & 0x7FFF_FFFF) > 0x7F80_0000) {
            return (short) ((bits >>> 16) | 0x40);
        }
        int rounding = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    /** Element {@code i} of a tensor of a floating dtype, as float32. */
    public static float get(MemorySegment seg, DType dtype, long i) {
        return switch (dtype) {
            case BF16 -> bf16ToFloat(seg.getAtIndex(SHORT, i));
            case F16 -> Float.float16ToFloat(seg.getAtIndex(SHORT, i));
            case F32 -> seg.getAtIndex(FLOAT, i);
            case F64 -> (float) seg.getAtIndex(DOUBLE, i);
            case F8_E4M3 -> E4M3.decode(seg.get(ValueLayout.JAVA_BYTE, i));
            case F8_E5M2 -> E5M2.decode(seg.get(ValueLayout.JAVA_BYTE, i));
            default -> throw new IllegalArgumentException("no float view of " + dtype);
        };
    }
}
