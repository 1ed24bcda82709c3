package dev.fp8q.formats.codec;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.fp8q.formats.DType;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.junit.jupiter.api.Test;

class AmaxTest {

    @Test
    void bf16AmaxOnBitsEqualsAmaxOnValuesAndCountsNonFinite() {
        try (Arena a = Arena.ofConfined()) {
            float[] v = {0.5f, -3.25f, 2f, Float.NaN, Float.POSITIVE_INFINITY, -0f, 1e-30f};
            MemorySegment s = a.allocate(v.length * 2L);
            for (int i = 0; i < v.length; i++) {
                s.setAtIndex(Elements.SHORT, i, Elements.floatToBf16(v[i]));
            }
            Amax m = Amax.of(s, DType.BF16);
            assertEquals(3.25f, m.amax());
            assertEquals(2, m.nonFinite());
        }
    }

    @Test
    void f32AndF16() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment f = a.allocate(16);
            float[] v = {1f, -7.5f, Float.NEGATIVE_INFINITY, 2f};
            for (int i = 0; i < 4; i++) {
                f.setAtIndex(Elements.FLOAT, i, v[i]);
            }
            assertEquals(new Amax(7.5f, 1), Amax.of(f, DType.F32));
            MemorySegment h = a.allocate(8);
            for (int i = 0; i < 4; i++) {
                h.setAtIndex(Elements.SHORT, i, Float.floatToFloat16(v[i]));
            }
            assertEquals(new Amax(7.5f, 1), Amax.of(h, DType.F16));
        }
    }

    @Test
    void scaleIsAmaxOver448AndOneForZero() {
        assertEquals(3.25f / 448f, new Amax(3.25f, 0).perTensorScale());
        assertEquals(1f, new Amax(0f, 0).perTensorScale());
    }
}
