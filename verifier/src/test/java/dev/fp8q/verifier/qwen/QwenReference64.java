package dev.fp8q.verifier.qwen;

import dev.fp8q.formats.codec.E4M3;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Predicate;

/**
 * An independent float64 Qwen-Image block, written from diffusers' transformer_qwenimage.py with plain loops
 * (QwenImageTransformerBlock.forward, QwenDoubleStreamAttnProcessor2_0, QwenEmbedRope with its pos/neg tables,
 * FeedForward "gelu-approximate"): the check on QwenBlock's float32 math. W8A8 when {@code w8a8} accepts a
 * Linear: its input rounded to E4M3 with scale amax / 448 over the whole input.
 */
final class QwenReference64 {

    static final int HEAD = 128;
    static final int[] AXES = {16, 56, 56};
    static final double EPS = 1e-6;

    final Map<String, float[]> w;
    final int dim;
    final Predicate<String> w8a8;
    /** Static input scales by Linear: x -> clamp(x / s, +-448) rounded to E4M3, times s (w8a8_static). */
    final Map<String, Float> inputScales;

    QwenReference64(Map<String, float[]> w, int dim, Predicate<String> w8a8) {
        this(w, dim, w8a8, Map.of());
    }

    QwenReference64(Map<String, float[]> w, int dim, Predicate<String> w8a8, Map<String, Float> inputScales) {
        this.w = w;
        this.dim = dim;
        this.w8a8 = w8a8;
        this.inputScales = inputScales;
    }

    /** {image stream, text stream} after block b, each flattened [tokens * dim]. */
    double[][] forward(int b, double[][] img0, double[][] txt0, double[] temb, int[] fhw) {
        String p = "transformer_blocks." + b + ".";
        double[][] img = copy(img0);
        double[][] txt = copy(txt0);
        double[] t = new double[dim];
        for (int i = 0; i < dim; i++) {
            t[i] = temb[i] / (1 + Math.exp(-temb[i]));
        }
        double[] imgMod = linear(p + "img_mod.1", new double[][] {t})[0];
        double[] txtMod = linear(p + "txt_mod.1", new double[][] {t})[0];
        // chunk(2) then chunk(3): shift, scale, gate of norm1 then of norm2
        double[][] im = chunks(imgMod);
        double[][] tm = chunks(txtMod);

        double[][] imgM = modulate(img, im[0], im[1]);
        double[][] txtM = modulate(txt, tm[0], tm[1]);
        double[][][] attn = attention(p + "attn.", imgM, txtM, fhw);
        addGated(img, attn[0], im[2]);
        addGated(txt, attn[1], tm[2]);
        addGated(img, mlp(p + "img_mlp.", modulate(img, im[3], im[4])), im[5]);
        addGated(txt, mlp(p + "txt_mlp.", modulate(txt, tm[3], tm[4])), tm[5]);
        return new double[][] {flat(img), flat(txt)};
    }

    double[][] chunks(double[] v) {
        double[][] out = new double[6][dim];
        for (int c = 0; c < 6; c++) {
            System.arraycopy(v, c * dim, out[c], 0, dim);
        }
        return out;
    }

    /** nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6), then x * (1 + scale) + shift. */
    double[][] modulate(double[][] x, double[] shift, double[] scale) {
        double[][] out = new double[x.length][dim];
        for (int r = 0; r < x.length; r++) {
            double mean = 0;
            for (double v : x[r]) {
                mean += v;
            }
            mean /= dim;
            double var = 0;
            for (double v : x[r]) {
                var += (v - mean) * (v - mean);
            }
            var /= dim;
            for (int i = 0; i < dim; i++) {
                out[r][i] = (x[r][i] - mean) / Math.sqrt(var + EPS) * (1 + scale[i]) + shift[i];
            }
        }
        return out;
    }

    static void addGated(double[][] x, double[][] y, double[] gate) {
        for (int r = 0; r < x.length; r++) {
            for (int i = 0; i < x[r].length; i++) {
                x[r][i] += gate[i] * y[r][i];
            }
        }
    }

    double[][] mlp(String p, double[][] x) {
        double[][] h = linear(p + "net.0.proj", x);
        for (double[] row : h) {
            for (int i = 0; i < row.length; i++) {
                double v = row[i];
                row[i] = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
            }
        }
        return linear(p + "net.2", h);
    }

    /** {image output after to_out.0, text output after to_add_out}. */
    double[][][] attention(String p, double[][] img, double[][] txt, int[] fhw) {
        int li = img.length;
        int lt = txt.length;
        double[][] iq = headRms(linear(p + "to_q", img), p + "norm_q.weight");
        double[][] ik = headRms(linear(p + "to_k", img), p + "norm_k.weight");
        double[][] iv = linear(p + "to_v", img);
        double[][] tq = headRms(linear(p + "add_q_proj", txt), p + "norm_added_q.weight");
        double[][] tk = headRms(linear(p + "add_k_proj", txt), p + "norm_added_k.weight");
        double[][] tv = linear(p + "add_v_proj", txt);
        double[][][] freqs = ropeFreqs(fhw, lt);
        rotate(iq, freqs[0]);
        rotate(ik, freqs[0]);
        rotate(tq, freqs[1]);
        rotate(tk, freqs[1]);
        double[][] q = cat(tq, iq);
        double[][] k = cat(tk, ik);
        double[][] v = cat(tv, iv);
        int n = lt + li;
        double[][] o = new double[n][dim];
        for (int h = 0; h < dim / HEAD; h++) {
            for (int a = 0; a < n; a++) {
                double[] s = new double[n];
                double max = Double.NEGATIVE_INFINITY;
                for (int c = 0; c < n; c++) {
                    double d = 0;
                    for (int j = 0; j < HEAD; j++) {
                        d += q[a][h * HEAD + j] * k[c][h * HEAD + j];
                    }
                    s[c] = d / Math.sqrt(HEAD);
                    max = Math.max(max, s[c]);
                }
                double sum = 0;
                for (int c = 0; c < n; c++) {
                    s[c] = Math.exp(s[c] - max);
                    sum += s[c];
                }
                for (int c = 0; c < n; c++) {
                    for (int j = 0; j < HEAD; j++) {
                        o[a][h * HEAD + j] += s[c] / sum * v[c][h * HEAD + j];
                    }
                }
            }
        }
        double[][] txtO = new double[lt][];
        double[][] imgO = new double[li][];
        for (int a = 0; a < n; a++) {
            if (a < lt) {
                txtO[a] = o[a];
            } else {
                imgO[a - lt] = o[a];
            }
        }
        return new double[][][] {linear(p + "to_out.0", imgO), linear(p + "to_add_out", txtO)};
    }

    /** diffusers RMSNorm(128, eps=1e-6) on each head: x * rsqrt(mean(x^2) + eps) * weight. */
    double[][] headRms(double[][] x, String weight) {
        float[] g = w.get(weight);
        for (double[] row : x) {
            for (int h = 0; h < dim / HEAD; h++) {
                double ms = 0;
                for (int j = 0; j < HEAD; j++) {
                    ms += row[h * HEAD + j] * row[h * HEAD + j];
                }
                double inv = 1 / Math.sqrt(ms / HEAD + EPS);
                for (int j = 0; j < HEAD; j++) {
                    row[h * HEAD + j] = row[h * HEAD + j] * inv * g[j];
                }
            }
        }
        return x;
    }

    /**
     * QwenEmbedRope(theta=10000, axes_dim=[16, 56, 56], scale_rope=True).forward: angles [tokens][64] of the
     * video (image) tokens and of the text tokens, built as diffusers slices its pos_freqs / neg_freqs tables.
     */
    static double[][][] ropeFreqs(int[] fhw, int textLen) {
        int frame = fhw[0];
        int height = fhw[1];
        int width = fhw[2];
        // pos_index = arange(4096); neg_index = arange(4096).flip(0) * -1 - 1, i.e. row r holds r - 4096
        // freqs_frame = freqs_pos[0][0:frame]
        List<Integer> frameRows = new ArrayList<>();
        for (int f = 0; f < frame; f++) {
            frameRows.add(f);
        }
        // freqs_height = cat(freqs_neg[1][-(height - height // 2):], freqs_pos[1][:height // 2])
        List<Integer> heightPos = new ArrayList<>();
        for (int r = 4096 - (height - height / 2); r < 4096; r++) {
            heightPos.add(r - 4096);
        }
        for (int r = 0; r < height / 2; r++) {
            heightPos.add(r);
        }
        List<Integer> widthPos = new ArrayList<>();
        for (int r = 4096 - (width - width / 2); r < 4096; r++) {
            widthPos.add(r - 4096);
        }
        for (int r = 0; r < width / 2; r++) {
            widthPos.add(r);
        }
        double[][] vid = new double[frame * height * width][];
        int t = 0;
        for (int f = 0; f < frame; f++) {
            for (int y = 0; y < height; y++) {
                for (int x = 0; x < width; x++) {
                    vid[t++] = angles(frameRows.get(f), heightPos.get(y), widthPos.get(x));
                }
            }
        }
        int maxVidIndex = Math.max(height / 2, width / 2);
        double[][] txt = new double[textLen][];
        for (int i = 0; i < textLen; i++) {
            txt[i] = angles(maxVidIndex + i, maxVidIndex + i, maxVidIndex + i);
        }
        return new double[][][] {vid, txt};
    }

    /** rope_params per axis: pos * 1 / 10000^(arange(0, dim, 2) / dim), concatenated over the axes. */
    static double[] angles(int... pos) {
        double[] out = new double[HEAD / 2];
        int o = 0;
        for (int a = 0; a < 3; a++) {
            for (int i = 0; i < AXES[a]; i += 2) {
                out[o++] = pos[a] * (1.0 / Math.pow(10000, (double) i / AXES[a]));
            }
        }
        return out;
    }

    /** apply_rotary_emb_qwen(use_real=False): pairs (2j, 2j+1) as complex numbers times e^(i angle_j). */
    void rotate(double[][] x, double[][] angles) {
        for (int r = 0; r < x.length; r++) {
            for (int h = 0; h < dim / HEAD; h++) {
                for (int j = 0; j < HEAD / 2; j++) {
                    int o = h * HEAD + 2 * j;
                    double re = x[r][o];
                    double im = x[r][o + 1];
                    double c = Math.cos(angles[r][j]);
                    double s = Math.sin(angles[r][j]);
                    x[r][o] = re * c - im * s;
                    x[r][o + 1] = re * s + im * c;
                }
            }
        }
    }

    double[][] linear(String base, double[][] x) {
        float[] wt = w.get(base + ".weight");
        float[] bias = w.get(base + ".bias");
        int in = x[0].length;
        int out = wt.length / in;
        double[][] xin = x;
        if (inputScales.containsKey(base)) {
            float s = inputScales.get(base);
            xin = new double[x.length][in];
            for (int r = 0; r < x.length; r++) {
                for (int i = 0; i < in; i++) {
                    float q = (float) Math.max(-448, Math.min(448, x[r][i] / s));
                    xin[r][i] = (double) E4M3.decode(E4M3.encode(q)) * s;
                }
            }
        } else if (w8a8.test(base)) {
            double amax = 0;
            for (double[] row : x) {
                for (double v : row) {
                    amax = Math.max(amax, Math.abs(v));
                }
            }
            double scale = amax > 0 ? amax / 448 : 1;
            xin = new double[x.length][in];
            for (int r = 0; r < x.length; r++) {
                for (int i = 0; i < in; i++) {
                    xin[r][i] = E4M3.decode(E4M3.encode((float) (x[r][i] / scale))) * scale;
                }
            }
        }
        double[][] y = new double[x.length][out];
        for (int r = 0; r < x.length; r++) {
            for (int o = 0; o < out; o++) {
                double s = bias == null ? 0 : bias[o];
                for (int i = 0; i < in; i++) {
                    s += xin[r][i] * wt[o * in + i];
                }
                y[r][o] = s;
            }
        }
        return y;
    }

    static double[][] cat(double[][] a, double[][] b) {
        double[][] out = new double[a.length + b.length][];
        System.arraycopy(a, 0, out, 0, a.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    static double[][] copy(double[][] x) {
        double[][] out = new double[x.length][];
        for (int r = 0; r < x.length; r++) {
            out[r] = x[r].clone();
        }
        return out;
    }

    double[] flat(double[][] x) {
        double[] out = new double[x.length * dim];
        for (int r = 0; r < x.length; r++) {
            System.arraycopy(x[r], 0, out, r * dim, dim);
        }
        return out;
    }

    /**
     * diffusers get_timestep_embedding(t, 256, flip_sin_to_cos=True, downscale_freq_shift=0, scale=1000):
     * exponent = -ln(10000) j / (128 - 0); emb = 1000 t e^exponent; [sin, cos] flipped to [cos, sin].
     */
    static double[] timestepProjection(double t) {
        int half = 128;
        double[] sin = new double[half];
        double[] cos = new double[half];
        for (int j = 0; j < half; j++) {
            double e = 1000 * (t * Math.exp(-Math.log(10000) * j / (half - 0.0)));
            sin[j] = Math.sin(e);
            cos[j] = Math.cos(e);
        }
        double[] out = new double[2 * half];
        System.arraycopy(cos, 0, out, 0, half);
        System.arraycopy(sin, 0, out, half, half);
        return out;
    }
}
