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

    /** Element {@code i} of a tensor of a floating dtype, as float64 (exact for every dtype up to F64). */
    public static double getDouble(MemorySegment seg, DType dtype, long i) {
        return dtype == DType.F64 ? seg.getAtIndex(DOUBLE, i) : get(seg, dtype, i);
    }

    /**
     * The float32 nearest to d rounded to odd: truncated toward zero, its last bit set when that was inexact.
     * A float64 narrowed this way and then rounded to nearest even to a format of fewer than 22 fraction bits
     * (BF16, F16) gives that format's correctly rounded value of d: one rounding, not two.
     */
    public static float roundToOddFloat(double d) {
        float f = (float) d;
        if (Double.isNaN(d) || Float.isInfinite(f) && Double.isInfinite(d) || (double) f == d) {
            return f;
        }
        if (Float.isInfinite(f) || Math.abs((double) f) > Math.abs(d)) { // rounded away from zero: step back toward it
            f = Math.nextDown(Math.abs(f)) * Math.signum((float) d);
        }
        return Float.intBitsToFloat(Float.floatToRawIntBits(f) | 1);
    }

    /** float64 to BF16, round to nearest even in one rounding. */
    public static short doubleToBf16(double d) {
        return floatToBf16(roundToOddFloat(d));
    }

    /** float64 to F16, round to nearest even in one rounding. */
    public static short doubleToF16(double d) {
        return Float.floatToFloat16(roundToOddFloat(d));
    }
}
