package dev.fp8q.verifier.weights;

import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.E8M0;
import java.util.Locale;
import java.util.stream.IntStream;

/**
 * W8A8's activation side, the exact float32 simulation of what an FP8 GEMM sees: each value divided by its scale,
 * rounded to E4M3, multiplied back. The scale comes from the scheme the runtime uses: one dynamic scale per tensor
 * (amax / 448, 1.0 for all zeros, as Transformer Engine's current scaling does), one per row (per-token), one per
 * 128 columns of a row (the block layouts' group-128), or the checkpoint's static {@code input_scale}, where values
 * beyond +-448 saturate as vLLM's {@code scaled_fp8_quant} does (see {@link #withScale}). For an MX GEMM the
 * activations are quantized as MXFP8 too: one E8M0 scale 2^(floor(log2(amax)) - 8) per 32 values along K of every row.
 */
public final class ActivationQuantizer {

    /** How a run scales a Linear's input. */
    public enum Scheme {
        TENSOR, TOKEN, GROUP128, STATIC;

        public String id() {
            return name().toLowerCase(Locale.ROOT);
        }

        public static Scheme parse(String s) {
            for (Scheme v : values()) {
                if (v.id().equals(s.toLowerCase(Locale.ROOT))) {
                    return v;
                }
            }
            throw new IllegalArgumentException("unknown activation scheme '" + s + "' (tensor, token, group128 or static)");
        }
    }

    public static final int GROUP = 128;

    /** A statically scaled input: its values after quantization and how many of them saturated. */
    public record Static(float[] values, long clipped) {}

    private ActivationQuantizer() {}

    /** One dynamic scale for the whole tensor. */
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

    /** A dynamic scheme on x [rows, cols]: TENSOR, TOKEN (one scale per row) or GROUP128 (per row and 128 columns). */
    public static float[] dynamic(Scheme scheme, float[] x, int rows) {
        return switch (scheme) {
            case TENSOR -> quantizeDequantize(x);
            case TOKEN -> grouped(x, rows, x.length / rows);
            case GROUP128 -> grouped(x, rows, GROUP);
            case STATIC -> throw new IllegalArgumentException("the static scheme takes the checkpoint's input_scale");
        };
    }

    /** Each run of at most {@code group} values of a row gets its own amax / 448 scale. */
    private static float[] grouped(float[] x, int rows, int group) {
        int cols = x.length / rows;
        float[] out = new float[x.length];
        IntStream.range(0, rows).parallel().forEach(r -> {
            for (int g = 0; g < cols; g += group) {
                int from = r * cols + g;
                int to = from + Math.min(group, cols - g);
                float amax = 0;
                for (int i = from; i < to; i++) {
                    amax = Math.max(amax, Math.abs(x[i]));
                }
                float scale = amax > 0 ? amax / E4M3.MAX : 1f;
                for (int i = from; i < to; i++) {
                    out[i] = E4M3.decode(E4M3.encode(x[i] / scale)) * scale;
                }
            }
        });
        return out;
    }

    /**
     * Beyond this |x / scale| saturation changes a value by more than rounding: 464 is 448 plus half the top binade's
     * step, the tie that rounds to 448 anyway. (The max input under a max-calibrated scale lands within an ulp of 448.)
     */
    static final float CLIP = 464f;

    /** x / scale clamped to +-448, rounded to E4M3, times scale; counts the values saturation cut (beyond {@link #CLIP}). */
    public static Static withScale(float[] x, float scale) {
        float[] out = new float[x.length];
        long clipped = IntStream.range(0, (x.length + 65535) >>> 16).parallel().mapToLong(c -> {
            long n = 0;
            for (int i = c << 16, end = Math.min(x.length, i + 65536); i < end; i++) {
                out[i] = quantize(x[i], scale);
                n += Math.abs(x[i] / scale) > CLIP ? 1 : 0;
            }
            return n;
        }).sum();
        return new Static(out, clipped);
    }

    /** One value through a static scale, saturating. */
    public static float quantize(float v, float scale) {
        float q = v / scale;
        return E4M3.decode(E4M3.encode(Math.max(-E4M3.MAX, Math.min(E4M3.MAX, q)))) * scale;
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
