package dev.fp8q.verifier.wan;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.math.Ops;
import dev.fp8q.verifier.math.Rope;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.wan.WanNaming.Param;

/**
 * WanAttentionBlock.forward (Wan-Video/Wan2.2 wan/modules/model.py; FORMATS.md section 3), float32:
 * <pre>
 * e0..e5 = modulation + e
 * x += self_attn(norm1(x) * (1 + e1) + e0) * e2
 * x += cross_attn(norm3(x), context)
 * x += ffn(norm2(x) * (1 + e4) + e3) * e5
 * </pre>
 * Diffusers checkpoints run the same math under their names.
 */
public final class WanBlock {

    public static final float EPS = 1e-6f;

    private final WanNaming naming;
    private final int dim;
    private final int headDim;
    private final Rope rope;

    public WanBlock(WanNaming naming, int dim, int headDim) {
        if (dim % headDim != 0) {
            throw new IllegalArgumentException("dim " + dim + " is not a multiple of head_dim " + headDim);
        }
        this.naming = naming;
        this.dim = dim;
        this.headDim = headDim;
        this.rope = new Rope(headDim);
    }

    /** The block's output for one run's weights; the inputs are not modified. */
    public float[] forward(int block, WanInputs in, RunWeights w) throws FormatException {
        int tokens = in.tokens();
        float[][] e = modulation(block, in, w);
        float[] x = in.x().clone();

        float[] h = Ops.layerNorm(x, tokens, dim, EPS, null, null);
        modulate(h, tokens, e[1], e[0], in.perTokenE());
        float[] y = selfAttention(block, h, in, w);
        gatedAdd(x, y, tokens, e[2], in.perTokenE());

        h = Ops.layerNorm(x, tokens, dim, EPS, w.tensor(naming.weight(Param.NORM3, block)),
                w.tensor(naming.bias(Param.NORM3, block)));
        y = crossAttention(block, h, in, w);
        for (int i = 0; i < x.length; i++) {
            x[i] += y[i];
        }

        h = Ops.layerNorm(x, tokens, dim, EPS, null, null);
        modulate(h, tokens, e[4], e[3], in.perTokenE());
        float[] f = w.linear(naming.name(Param.FFN_0, block), h, tokens);
        Ops.geluTanh(f);
        y = w.linear(naming.name(Param.FFN_2, block), f, tokens);
        gatedAdd(x, y, tokens, e[5], in.perTokenE());
        return x;
    }

    /** e0..e5, each [dim] or, for per-token timesteps, [tokens, dim]. */
    private float[][] modulation(int block, WanInputs in, RunWeights w) throws FormatException {
        float[] mod = w.tensor(naming.weight(Param.MODULATION, block));
        if (mod.length != 6 * dim) {
            throw new IllegalArgumentException(naming.weight(Param.MODULATION, block) + " has " + mod.length
                    + " values, not 6 x " + dim);
        }
        int rows = in.perTokenE() ? in.tokens() : 1;
        float[][] e = new float[6][rows * dim];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < 6; c++) {
                for (int i = 0; i < dim; i++) {
                    e[c][r * dim + i] = mod[c * dim + i] + in.e()[(r * 6 + c) * dim + i];
                }
            }
        }
        return e;
    }

    private void modulate(float[] h, int tokens, float[] scale, float[] shift, boolean perToken) {
        for (int t = 0; t < tokens; t++) {
            int eo = perToken ? t * dim : 0;
            for (int i = 0, o = t * dim; i < dim; i++) {
                h[o + i] = h[o + i] * (1 + scale[eo + i]) + shift[eo + i];
            }
        }
    }

    private void gatedAdd(float[] x, float[] y, int tokens, float[] gate, boolean perToken) {
        for (int t = 0; t < tokens; t++) {
            int eo = perToken ? t * dim : 0;
            for (int i = 0, o = t * dim; i < dim; i++) {
                x[o + i] += y[o + i] * gate[eo + i];
            }
        }
    }

    private float[] selfAttention(int block, float[] h, WanInputs in, RunWeights w) throws FormatException {
        int tokens = in.tokens();
        float[] q = w.linear(naming.name(Param.SELF_Q, block), h, tokens);
        Ops.rmsNorm(q, tokens, dim, EPS, w.tensor(naming.weight(Param.SELF_NORM_Q, block)));
        float[] k = w.linear(naming.name(Param.SELF_K, block), h, tokens);
        Ops.rmsNorm(k, tokens, dim, EPS, w.tensor(naming.weight(Param.SELF_NORM_K, block)));
        float[] v = w.linear(naming.name(Param.SELF_V, block), h, tokens);
        int[] g = in.grid();
        rope.apply(q, g[0], g[1], g[2], dim);
        rope.apply(k, g[0], g[1], g[2], dim);
        float[] a = w.attend(q, tokens, k, v, tokens, dim, dim / headDim);
        return w.linear(naming.name(Param.SELF_O, block), a, tokens);
    }

    private float[] crossAttention(int block, float[] h, WanInputs in, RunWeights w) throws FormatException {
        int tokens = in.tokens();
        int ctx = in.contextTokens();
        float[] q = w.linear(naming.name(Param.CROSS_Q, block), h, tokens);
        Ops.rmsNorm(q, tokens, dim, EPS, w.tensor(naming.weight(Param.CROSS_NORM_Q, block)));
        float[] k = w.linear(naming.name(Param.CROSS_K, block), in.context(), ctx);
        Ops.rmsNorm(k, ctx, dim, EPS, w.tensor(naming.weight(Param.CROSS_NORM_K, block)));
        float[] v = w.linear(naming.name(Param.CROSS_V, block), in.context(), ctx);
        float[] a = w.attend(q, tokens, k, v, ctx, dim, dim / headDim);
        return w.linear(naming.name(Param.CROSS_O, block), a, tokens);
    }
}
