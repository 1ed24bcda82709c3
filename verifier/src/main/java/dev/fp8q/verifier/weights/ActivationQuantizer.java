package dev.fp8q.verifier.weights;

import dev.fp8q.formats.codec.E4M3;
import java.util.stream.IntStream;

/**
 * W8A8's activation side: a dynamic per-tensor scale (amax / 448, 1.0 for all zeros, as Transformer
 * Engine's current scaling does), each value rounded to E4M3 and multiplied back: the exact float32
 * simulation of what an FP8 GEMM sees.
 */
public final class ActivationQuantizer {

    private ActivationQuantizer() {}

    public static float[] quantizeDequantize(float[] x) {
        float amax = (float) IntStream.range(0, x.length).parallel().mapToDouble(i -> Math.abs(x[i])).max().orElse(0);
        float scale = amax > 0 ? amax / E4M3.MAX : 1f;
        float[] out = new float[x.length];
        IntStream.range(0, (x.length + 65535) >>> 16).parallel().forEach(c -> {
            for (int i = c << 16, end = Math.min(x.length, i + 65536); i < end; i++) {
                out[i] = E4M3.decode(E4M3.encode(x[i] / scale)) * scale;
            }
        });
        return out;
    }
}
