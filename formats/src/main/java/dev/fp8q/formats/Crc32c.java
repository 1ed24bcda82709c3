package dev.fp8q.formats;

import java.lang.foreign.MemorySegment;
import java.util.zip.CRC32C;

/**
 * CRC32C as the manifest records it (8 hex digits), and the combination of two pieces' CRCs into the CRC of
 * the two back to back, so that bytes written in parallel chunks get their checksum without being read again.
 * The combination is zlib's crc32_combine (multiplication by x^(8n) modulo the polynomial) for CRC32C's
 * reflected polynomial.
 */
public final class Crc32c {

    private static final int POLY = 0x82F63B78;
    /** X2N[k] = x^(2^k) mod P, for every k that a byte count (a long) times 8 needs. */
    private static final int[] X2N = new int[67];

    static {
        int p = 1 << 30; // x^1
        for (int k = 0; k < X2N.length; k++) {
            X2N[k] = p;
            p = multiply(p, p);
        }
    }

    private Crc32c() {}

    public static int of(MemorySegment bytes) {
        CRC32C crc = new CRC32C();
        long chunk = 1L << 30; // ByteBuffer views are limited to 2 GiB
        for (long off = 0; off < bytes.byteSize(); off += chunk) {
            crc.update(bytes.asSlice(off, Math.min(chunk, bytes.byteSize() - off)).asByteBuffer());
        }
        return (int) crc.getValue();
    }

    /** The CRC of A followed by B, from crc(A), crc(B) and B's length in bytes. */
    public static int combine(int crcA, int crcB, long lengthB) {
        return lengthB == 0 ? crcA : multiply(xPow8n(lengthB), crcA) ^ crcB;
    }

    public static String hex(int crc) {
        return String.format("%08x", crc);
    }

    /** a(x) b(x) mod P, bit-reflected (bit 31 is x^0). */
    private static int multiply(int a, int b) {
        if (a == 0) {
            return 0;
        }
        int m = 1 << 31;
        int p = 0;
        while (true) {
            if ((a & m) != 0) {
                p ^= b;
                if ((a & (m - 1)) == 0) {
                    return p;
                }
            }
            m >>>= 1;
            b = (b & 1) != 0 ? (b >>> 1) ^ POLY : b >>> 1;
        }
    }

    /** x^(8n) mod P. */
    private static int xPow8n(long n) {
        int p = 1 << 31; // x^0
        int k = 3;
        while (n != 0) {
            if ((n & 1) != 0) {
                p = multiply(X2N[k], p);
            }
            n >>>= 1;
            k++;
        }
        return p;
    }
}
