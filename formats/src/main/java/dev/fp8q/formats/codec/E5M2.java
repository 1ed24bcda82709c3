package dev.fp8q.formats.codec;

/** FP8 E5M2: the top byte of an IEEE half; decoded exactly through F16. */
public final class E5M2 {

    private E5M2() {}

    public static float decode(byte b) {
        return Float.float16ToFloat((short) ((b & 0xFF) << 8));
    }

    /** Round to nearest even from float32 via F16 bits (exact: F16 to E5M2 drops 8 mantissa bits once). */
    public static byte encode(float v) {
        if (Float.isNaN(v)) {
            return (byte) 0x7F;
        }
        double d = v; // float -> half directly to avoid double rounding through F16
        int sign = Double.doubleToRawLongBits(d) < 0 ? 0x80 : 0;
        double a = Math.abs(d);
        if (a >= 61440.0) { // halfway between 57344 and the next (65536): rounds to infinity
            return (byte) (sign | 0x7C);
        }
        if (a < 0x1p-14) { // subnormal: units of 2^-16
            return (byte) (sign | (int) Math.rint(a * 0x1p16));
        }
        int exp = Math.getExponent(a);
        double m = a / Math.scalb(1.0, exp) - 1; // [0, 1)
        int q = (int) Math.rint(m * 4);
        int code = ((exp + 15) << 2) + q;
        return (byte) (sign | code);
    }
}
