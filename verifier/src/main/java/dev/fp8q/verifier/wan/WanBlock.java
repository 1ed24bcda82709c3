package dev.fp8q.verifier.wan;

import dev.fp8q.formats.FormatException;
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

    public WanBlock(WanNaming naming, int dim, int headDim) {
        if (dim % headDim != 0) {
            throw new IllegalArgumentException("dim " + dim + " is not a multiple of head_dim " + headDim);
        }
        this.naming = naming;
        this.dim = dim;
        this.headDim = headDim;
    }

    /** The block's output for one run's weights, in float32 on the CPU; the inputs are not modified. */
    public float[] forward(int block, WanInputs in, RunWeights w) throws FormatException {
        return forward(block, in, w, new CpuBlockMath(headDim));
    }

    /** The same on the given math (the CPU's or a GPU's); what the math allocated is freed before returning. */
    public <A> float[] forward(int block, WanInputs in, RunWeights w, BlockMath<A> m) throws FormatException {
        try (m) {
            int tokens = in.tokens();
            boolean pt = in.perTokenE();
            float[][] e = modulation(block, in, w);
            A x = m.input(in.x());

            A h = m.layerNorm(x, tokens, dim, EPS, null, null);
            m.modulate(h, tokens, dim, e[1], e[0], pt);
            m.gatedAdd(x, selfAttention(block, h, in, w, m), tokens, dim, e[2], pt);

            h = m.layerNorm(x, tokens, dim, EPS, w.tensor(naming.weight(Param.NORM3, block)),
                    w.tensor(naming.bias(Param.NORM3, block)));
            m.gatedAdd(x, crossAttention(block, h, in, w, m), tokens, dim, null, pt);

            h = m.layerNorm(x, tokens, dim, EPS, null, null);
            m.modulate(h, tokens, dim, e[4], e[3], pt);
            A f = m.linear(w, naming.name(Param.FFN_0, block), h, tokens);
            m.geluTanh(f);
            m.gatedAdd(x, m.linear(w, naming.name(Param.FFN_2, block), f, tokens), tokens, dim, e[5], pt);
            return m.output(x);
        }
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

    private <A> A selfAttention(int block, A h, WanInputs in, RunWeights w, BlockMath<A> m) throws FormatException {
        int tokens = in.tokens();
        A q = m.linear(w, naming.name(Param.SELF_Q, block), h, tokens);
        m.rmsNorm(q, tokens, dim, EPS, w.tensor(naming.weight(Param.SELF_NORM_Q, block)));
        A k = m.linear(w, naming.name(Param.SELF_K, block), h, tokens);
        m.rmsNorm(k, tokens, dim, EPS, w.tensor(naming.weight(Param.SELF_NORM_K, block)));
        A v = m.linear(w, naming.name(Param.SELF_V, block), h, tokens);
        int[] g = in.grid();
        m.rope(q, g[0], g[1], g[2], dim);
        m.rope(k, g[0], g[1], g[2], dim);
        A a = m.attend(w, q, tokens, k, v, tokens, dim, dim / headDim);
        return m.linear(w, naming.name(Param.SELF_O, block), a, tokens);
    }

    private <A> A crossAttention(int block, A h, WanInputs in, RunWeights w, BlockMath<A> m) throws FormatException {
        int tokens = in.tokens();
        int ctx = in.contextTokens();
        A q = m.linear(w, naming.name(Param.CROSS_Q, block), h, tokens);
        m.rmsNorm(q, tokens, dim, EPS, w.tensor(naming.weight(Param.CROSS_NORM_Q, block)));
        A c = m.input(in.context());
        A k = m.linear(w, naming.name(Param.CROSS_K, block), c, ctx);
        m.rmsNorm(k, ctx, dim, EPS, w.tensor(naming.weight(Param.CROSS_NORM_K, block)));
        A v = m.linear(w, naming.name(Param.CROSS_V, block), c, ctx);
        A a = m.attend(w, q, tokens, k, v, ctx, dim, dim / headDim);
        return m.linear(w, naming.name(Param.CROSS_O, block), a, tokens);
    }
}
