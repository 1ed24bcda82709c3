package dev.fp8q.formats.codec;

/**
 * E8M0 (OCP MX v1.0 scale type; torch.float8_e8m0fnu; safetensors F8_E8M0): an unsigned biased exponent, byte e
 * stands for 2^(e - 127), 0xFF is NaN; no sign, no zero. Byte 0 is 2^-127, a float32 subnormal, still exact.
 */
public final class E8M0 {

    public static final int BIAS = 127;
    public static final int NAN = 0xFF;
    /** The exponents E8M0 holds: -127 .. 127. */
    public static final int MIN_EXP = -127;
    public static final int MAX_EXP = 127;

    private E8M0() {}

    /** The value of a byte: 2^(e - 127), NaN for 0xFF. */
    public static float decode(byte b) {
        int e = b & 0xFF;
        return e == NAN ? Float.NaN : Math.scalb(1f, e - BIAS);
    }

    /** The byte of a power of two in [2^-127, 2^127]; anything else is a caller's bug. */
    public static byte encode(float pow2) {
        int exp = Math.getExponent((double) pow2); // exact for float subnormals too
        if (!(pow2 > 0) || Math.scalb(1.0, exp) != pow2 || exp < MIN_EXP || exp > MAX_EXP) {
            throw new IllegalArgumentException(pow2 + " is not a power of two E8M0 holds");
        }
        return (byte) (exp + BIAS);
    }
}
