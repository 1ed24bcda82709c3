package dev.fp8q.formats;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.MemorySegment;
import java.util.Random;
import java.util.zip.CRC32C;
import org.junit.jupiter.api.Test;

class Crc32cTest {

    private static int direct(byte[] b, int from, int to) {
        CRC32C c = new CRC32C();
        c.update(b, from, to - from);
        return (int) c.getValue();
    }

    @Test
    void combiningTwoPiecesGivesTheCrcOfBoth() {
        Random r = new Random(7);
        byte[] b = new byte[1 << 20];
        r.nextBytes(b);
        int[] cuts = {0, 1, 7, 8, 4095, 4096, 65537, b.length - 1, b.length};
        for (int cut : cuts) {
            int a = direct(b, 0, cut);
            int c = direct(b, cut, b.length);
            assertEquals(direct(b, 0, b.length), Crc32c.combine(a, c, b.length - cut), "cut at " + cut);
        }
        for (int i = 0; i < 200; i++) {
            int from = r.nextInt(b.length);
            int cut = from + r.nextInt(b.length - from + 1);
            int to = cut + r.nextInt(b.length - cut + 1);
            assertEquals(direct(b, from, to), Crc32c.combine(direct(b, from, cut), direct(b, cut, to), to - cut));
        }
    }

    @Test
    void manyPiecesInOrder() {
        Random r = new Random(11);
        byte[] b = new byte[300_000];
        r.nextBytes(b);
        int crc = 0;
        int at = 0;
        while (at < b.length) {
            int n = Math.min(b.length - at, r.nextInt(20_000));
            crc = Crc32c.combine(crc, direct(b, at, at + n), n);
            at += n;
        }
        assertEquals(direct(b, 0, b.length), crc);
        assertEquals(direct(b, 0, b.length), Crc32c.of(MemorySegment.ofArray(b)));
    }

    @Test
    void lengthsPastFourGibibytes() {
        // zeros of length n after a piece: the CRC of A||0^n, computed by feeding the zeros in 1 MiB steps
        byte[] a = "fp8q".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
        byte[] zeros = new byte[1 << 20];
        CRC32C c = new CRC32C();
        c.update(a);
        long n = (5L << 30) + 3;
        for (long done = 0; done < n; done += zeros.length) {
            c.update(zeros, 0, (int) Math.min(zeros.length, n - done));
        }
        CRC32C z = new CRC32C();
        for (long done = 0; done < n; done += zeros.length) {
            z.update(zeros, 0, (int) Math.min(zeros.length, n - done));
        }
        assertEquals((int) c.getValue(), Crc32c.combine(direct(a, 0, a.length), (int) z.getValue(), n));
        assertEquals("00000000", Crc32c.hex(Crc32c.of(MemorySegment.ofArray(new byte[0]))));
    }
}
