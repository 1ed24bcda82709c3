package dev.fp8q.converter.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Elements;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import java.util.concurrent.ForkJoinPool;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Per-tensor quantization of tensors of several chunks (16-bit ones through histogram and table, F32 through
 * the kernel): bytes and every figure against the definition.
 */
class TensorQuantizerTest {

    @ParameterizedTest
    @CsvSource({"BF16, 1", "BF16, 3", "F16, 2", "F32, 3"})
    void figuresOfAManyChunkTensorAreThoseOfTheDefinition(DType dt, int threads) throws Exception {
        long n = 3L * TensorQuantizer.CHUNK + 12345;
        try (Arena arena = Arena.ofShared()) {
            MemorySegment src = arena.allocate(n * dt.bits() / 8);
            SplittableRandom r = new SplittableRandom(threads);
            for (long i = 0; i < n; i++) {
                // Mostly N(0, 0.02), a few values small enough to underflow, some exact zeros.
                float x = i % 1000 == 0 ? 0f : (float) (r.nextGaussian() * (i % 97 == 0 ? 1e-7 : 0.02));
                switch (dt) {
                    case BF16 -> src.setAtIndex(Elements.SHORT, i, Elements.floatToBf16(x));
                    case F16 -> src.setAtIndex(Elements.SHORT, i, Float.floatToFloat16(x));
                    default -> src.setAtIndex(Elements.FLOAT, i, x);
                }
            }
            MemorySegment out = arena.allocate(n);
            ForkJoinPool pool = new ForkJoinPool(threads);
            QuantResult q;
            try {
                q = new TensorQuantizer(pool, QuantKernel.best()).quantize("t", src, dt, (el, bytes) -> MemorySegment.copy(bytes, 0, out, el,
                        bytes.byteSize()));
            } finally {
                pool.shutdown();
            }
            float amax = 0;
            for (long i = 0; i < n; i++) {
                amax = Math.max(amax, Math.abs(Elements.get(src, dt, i)));
            }
            float scale = amax / E4M3.MAX;
            assertEquals(amax, q.amax());
            assertEquals(scale, q.scales()[0]);
            double signal = 0;
            double noise = 0;
            long nonzero = 0;
            long underflow = 0;
            for (long i = 0; i < n; i++) {
                float x = Elements.get(src, dt, i);
                byte code = E4M3.encode(x / scale);
                assertEquals(code, out.get(ValueLayout.JAVA_BYTE, i), "code " + i);
                double d = E4M3.decode(code) * scale;
                signal += (double) x * x;
                noise += (x - d) * (x - d);
                if (x != 0) {
                    nonzero++;
                    underflow += d == 0 ? 1 : 0;
                }
            }
            assertEquals(nonzero, q.nonzero());
            assertEquals(underflow, q.underflow());
            assertEquals(signal, q.signal(), signal * 1e-6);
            assertEquals(noise, q.noise(), noise * 1e-6);
        }
    }
}
