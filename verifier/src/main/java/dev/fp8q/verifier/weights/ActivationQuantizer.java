package dev.fp8q.verifier.weights;

import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.E8M0;
import java.util.stream.IntStream;

/**
 * W8A8's activation side: a dynamic per-tensor scale (amax / 448, 1.0 for all zeros, as Transformer
 * Engine's current scaling does), each value rounded to E4M3 and multiplied back: the exact float32
 * simulation of what an FP8 GEMM sees. For an MX GEMM the activations are quantized as MXFP8 too: one E8M0
 * scale 2^(floor(log2(amax)) - 8) per 32 values along K of every row.
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

    /** MXFP8 quantize-dequantize of x [rows, k], blocks of 32 along k (the last block may be shorter). */
    public static float[] mxQuantizeDequantize(float[] x, int k) {
        float[] out = new float[x.length];
        int rows = k == 0 ? 0 : x.length / k;
        IntStream.range(0, rows).parallel().forEach(r -> {
            for (int c0 = r * k, end = (r + 1) * k; c0 < end; c0 += ScaleGrid.MX_BLOCK) {
                int c1 = Math.min(end, c0 + ScaleGrid.MX_BLOCK);
                float amax = 0;
                for (int i = c0; i < c1; i++) {
                    amax = Math.max(amax, Math.abs(x[i]));
                }
                float scale = Math.scalb(1f, mxExponent(amax));
                for (int i = c0; i < c1; i++) {
                    out[i] = E4M3.decode(E4M3.encode(x[i] / scale)) * scale;
                }
            }
        });
        return out;
    }

    /** OCP MX's scale exponent for E4M3: floor(log2(amax)) - 8 within E8M0's [-127, 127]; -127 for all zeros. */
    static int mxExponent(float amax) {
        return amax == 0 ? E8M0.MIN_EXP : Math.max(E8M0.MIN_EXP, Math.min(E8M0.MAX_EXP, Math.getExponent((double) amax) - 8));
    }
}
