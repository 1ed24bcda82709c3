package dev.fp8q.verifier.wan;

import java.util.Map;

/**
 * An independent float64 implementation of the Wan block (original naming), written from the reference
 * code's structure with plain loops: the check on WanBlock's float32 math.
 */
final class Reference64 {

    final Map<String, float[]> w;
    final int dim;
    final int headDim;

    Reference64(Map<String, float[]> w, int dim, int headDim) {
        this.w = w;
        this.dim = dim;
        this.headDim = headDim;
    }

    double[] forward(int b, double[][] x0, int[] grid, double[][] ctx, double[] e) {
        String p = "blocks." + b + ".";
        int n = x0.length;
        double[][] x = new double[n][];
        for (int t = 0; t < n; t++) {
            x[t] = x0[t].clone();
        }
        float[] mod = w.get(p + "modulation");
        double[][] m = new double[6][dim];
        for (int c = 0; c < 6; c++) {
            for (int i = 0; i < dim; i++) {
                m[c][i] = mod[c * dim + i] + e[c * dim + i];
            }
        }
        double[][] h = new double[n][];
        for (int t = 0; t < n; t++) {
            h[t] = modulate(layerNorm(x[t], null, null), m[1], m[0]);
        }
        double[][] y = selfAttn(p + "self_attn.", h, grid);
        for (int t = 0; t < n; t++) {
            for (int i = 0; i < dim; i++) {
                x[t][i] += y[t][i] * m[2][i];
            }
        }
        for (int t = 0; t < n; t++) {
            h[t] = layerNorm(x[t], w.get(p + "norm3.weight"), w.get(p + "norm3.bias"));
        }
        y = crossAttn(p + "cross_attn.", h, ctx);
        for (int t = 0; t < n; t++) {
            for (int i = 0; i < dim; i++) {
                x[t][i] += y[t][i];
            }
        }
        for (int t = 0; t < n; t++) {
            double[] f = linear(p + "ffn.0", modulate(layerNorm(x[t], null, null), m[4], m[3]));
            for (int i = 0; i < f.length; i++) {
                double v = f[i];
                f[i] = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
            }
            double[] g = linear(p + "ffn.2", f);
            for (int i = 0; i < dim; i++) {
                x[t][i] += g[i] * m[5][i];
            }
        }
        double[] out = new double[n * dim];
        for (int t = 0; t < n; t++) {
            System.arraycopy(x[t], 0, out, t * dim, dim);
        }
        return out;
    }

    double[] modulate(double[] v, double[] scale, double[] shift) {
        double[] o = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            o[i] = v[i] * (1 + scale[i]) + shift[i];
        }
        return o;
    }

    static double[] layerNorm(double[] v, float[] weight, float[] bias) {
        double mean = 0;
        for (double a : v) {
            mean += a;
        }
        mean /= v.length;
        double var = 0;
        for (double a : v) {
            var += (a - mean) * (a - mean);
        }
        var /= v.length;
        double[] o = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            o[i] = (v[i] - mean) / Math.sqrt(var + 1e-6);
            if (weight != null) {
                o[i] = o[i] * weight[i] + bias[i];
            }
        }
        return o;
    }

    double[] rms(double[] v, float[] weight) {
        double ms = 0;
        for (double a : v) {
            ms += a * a;
        }
        ms /= v.length;
        double[] o = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            o[i] = v[i] / Math.sqrt(ms + 1e-6) * weight[i];
        }
        return o;
    }

    double[] linear(String base, double[] v) {
        float[] wt = w.get(base + ".weight");
        float[] bias = w.get(base + ".bias");
        int out = wt.length / v.length;
        double[] o = new double[out];
        for (int j = 0; j < out; j++) {
            double s = bias == null ? 0 : bias[j];
            for (int i = 0; i < v.length; i++) {
                s += wt[j * v.length + i] * v[i];
            }
            o[j] = s;
        }
        return o;
    }

    /** rope_params of each part concatenated, as Wan builds its freqs table: [pairs] angles per position. */
    double[] ropeAngles(int f, int hh, int ww) {
        int d = headDim;
        int[] widths = {d - 4 * (d / 6), 2 * (d / 6), 2 * (d / 6)};
        int[] pos = {f, hh, ww};
        double[] angles = new double[d / 2];
        int j = 0;
        for (int part = 0; part < 3; part++) {
            for (int k = 0; k < widths[part]; k += 2) {
                angles[j++] = pos[part] / Math.pow(10000, (double) k / widths[part]);
            }
        }
        return angles;
    }

    double[][] selfAttn(String p, double[][] h, int[] grid) {
        int n = h.length;
        double[][] q = new double[n][], k = new double[n][], v = new double[n][];
        for (int t = 0; t < n; t++) {
            q[t] = rms(linear(p + "q", h[t]), w.get(p + "norm_q.weight"));
            k[t] = rms(linear(p + "k", h[t]), w.get(p + "norm_k.weight"));
            v[t] = linear(p + "v", h[t]);
            int f = t / (grid[1] * grid[2]);
            int hh = (t / grid[2]) % grid[1];
            int ww = t % grid[2];
            double[] ang = ropeAngles(f, hh, ww);
            for (int head = 0; head < dim / headDim; head++) {
                for (int j = 0; j < headDim / 2; j++) {
                    int i = head * headDim + 2 * j;
                    rotate(q[t], i, ang[j]);
                    rotate(k[t], i, ang[j]);
                }
            }
        }
        return attnOut(p, q, k, v);
    }

    static void rotate(double[] z, int i, double a) {
        double re = z[i] * Math.cos(a) - z[i + 1] * Math.sin(a);
        double im = z[i] * Math.sin(a) + z[i + 1] * Math.cos(a);
        z[i] = re;
        z[i + 1] = im;
    }

    double[][] crossAttn(String p, double[][] h, double[][] ctx) {
        double[][] q = new double[h.length][], k = new double[ctx.length][], v = new double[ctx.length][];
        for (int t = 0; t < h.length; t++) {
            q[t] = rms(linear(p + "q", h[t]), w.get(p + "norm_q.weight"));
        }
        for (int t = 0; t < ctx.length; t++) {
            k[t] = rms(linear(p + "k", ctx[t]), w.get(p + "norm_k.weight"));
            v[t] = linear(p + "v", ctx[t]);
        }
        return attnOut(p, q, k, v);
    }

    double[][] attnOut(String p, double[][] q, double[][] k, double[][] v) {
        double[][] out = new double[q.length][];
        for (int t = 0; t < q.length; t++) {
            double[] a = new double[dim];
            for (int head = 0; head < dim / headDim; head++) {
                int o = head * headDim;
                double[] s = new double[k.length];
                double max = Double.NEGATIVE_INFINITY;
                for (int u = 0; u < k.length; u++) {
                    double dot = 0;
                    for (int i = 0; i < headDim; i++) {
                        dot += q[t][o + i] * k[u][o + i];
                    }
                    s[u] = dot / Math.sqrt(headDim);
                    max = Math.max(max, s[u]);
                }
                double sum = 0;
                for (int u = 0; u < k.length; u++) {
                    s[u] = Math.exp(s[u] - max);
                    sum += s[u];
                }
                for (int u = 0; u < k.length; u++) {
                    for (int i = 0; i < headDim; i++) {
                        a[o + i] += s[u] / sum * v[u][o + i];
                    }
                }
            }
            out[t] = linear(p + "o", a);
        }
        return out;
    }
}
