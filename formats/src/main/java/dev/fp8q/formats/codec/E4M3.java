package dev.fp8q.formats.codec;

/**
 * FP8 E4M3 ("e4m3fn"): bias 7, max normal 448, subnormals m x 2^-9, no infinities, NaN 0x7F/0xFF.
 * The encoder is NUMERICS.md's: clamp to [-448, 448], then round to nearest, ties to even, with correct
 * subnormal rounding. It is bit-identical to torch's clamp-then-cast and to cvt.rn.satfinite.e4m3x2.f32.
 */
public final class E4M3 {

    public static final float MAX = 448f;
    public static final byte NAN = 0x7F;

    private static final float[] DECODE = new float[256];

    static {
        for (int b = 0; b < 256; b++) {
            DECODE[b] = decodeSlow(b);
        }
    }

    private E4M3() {}

    /** Encodes a float32 value. NaN encodes to 0x7F with its sign; callers refuse NaN input first. */
    public static byte encode(float v) {
        int bits = Float.floatToRawIntBits(v);
        int sign = (bits >>> 24) & 0x80;
        int abs = bits & 0x7FFF_FFFF;
        if (abs > 0x7F80_0000) {
            return (byte) (sign | NAN);
        }
        if (abs >= 0x43E0_0000) { // |v| >= 448, infinity included: saturate
            return (byte) (sign | 0x7E);
        }
        if (abs < 0x3C80_0000) { // |v| < 2^-6: subnormal, in units of 2^-9 (exact power-of-two scaling)
            float units = Float.intBitsToFloat(abs) * 512f;
            return (byte) (sign | (int) Math.rint(units)); // 8 units is the smallest normal, code 0x08
        }
        int exp = (abs >>> 23) - 127 + 7; // 1..15
        int mant = abs & 0x7F_FFFF;
        int keep = mant >>> 20;
        int rest = mant & 0xF_FFFF;
        if (rest > 0x8_0000 || (rest == 0x8_0000 && (keep & 1) == 1)) {
            keep++; // a carry into the exponent is the correct next code
        }
        return (byte) (sign | ((exp << 3) + keep));
    }

    public static float decode(byte b) {
        return DECODE[b & 0xFF];
    }

    private static float decodeSlow(int b) {
        int exp = (b >>> 3) & 0xF;
        int mant = b & 0x7;
        if ((b & 0x7F) == 0x7F) {
            return Float.NaN;
        }
        float mag = exp == 0 ? mant * 0x1p-9f : (1 + mant / 8f) * Math.scalb(1f, exp - 7);
        return (b & 0x80) != 0 ? -mag : mag;
    }

    /** True for the two NaN codes. */
    public static boolean isNaN(byte b) {
        return (b & 0x7F) == 0x7F;
    }
}
