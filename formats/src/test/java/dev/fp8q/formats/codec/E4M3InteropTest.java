package dev.fp8q.formats.codec;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.fp8q.formats.testing.PythonReference;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Our E4M3 bytes against ml_dtypes' for the same float32 quotients (clamped first, as NUMERICS.md says). */
class E4M3InteropTest {

    @Test
    void bitsEqualMlDtypesOnEveryBf16QuotientUnderSeveralScales(@TempDir Path dir) throws Exception {
        PythonReference.require();
        float[] scales = E4M3Test.SCALES;
        ByteBuffer q = ByteBuffer.allocate(65536 * 4 * scales.length).order(ByteOrder.LITTLE_ENDIAN);
        int n = 0;
        for (float s : scales) {
            for (int bits = 0; bits < 65536; bits++) {
                float v = Elements.bf16ToFloat((short) bits) / s;
                if (!Float.isNaN(v)) {
                    q.putFloat(v);
                    n++;
                }
            }
        }
        Path in = dir.resolve("q.f32");
        Path out = dir.resolve("codes.u8");
        Files.write(in, java.util.Arrays.copyOf(q.array(), n * 4));
        PythonReference.run("""
                import sys, numpy as np, ml_dtypes
                q = np.fromfile(sys.argv[1], dtype='<f4')
                np.clip(q, -448, 448).astype(ml_dtypes.float8_e4m3fn).view(np.uint8).tofile(sys.argv[2])
                """, in.toString(), out.toString());
        byte[] ref = Files.readAllBytes(out);
        assertEquals(n, ref.length);
        int diffs = 0;
        for (int i = 0; i < n; i++) {
            float v = q.getFloat(i * 4);
            if (E4M3.encode(v) != ref[i]) {
                diffs++;
            }
        }
        assertEquals(0, diffs, "bytes differing from ml_dtypes out of " + n);
    }
}
