package dev.fp8q.verifier.qwen;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.math.Ops;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.wan.BlockMath;
import dev.fp8q.verifier.wan.CpuBlockMath;
import java.util.Arrays;

/**
 * diffusers' QwenImageTransformerBlock.forward with QwenDoubleStreamAttnProcessor2_0, no text mask, float32:
 * <pre>
 * (shift1, scale1, gate1, shift2, scale2, gate2) = img_mod.1(SiLU(temb)), and likewise txt_mod.1 for the text
 * img_m = LN(img) * (1 + scale1) + shift1; txt_m the same with the text's
 * q, k, v = to_q/k/v(img_m) and add_q/k/v_proj(txt_m); RMSNorm per head of 128 on q and k; Qwen's RoPE
 * attention over [text; image]; img += gate1 * to_out.0(image part); txt += gate1' * to_add_out(text part)
 * img += gate2 * img_mlp(LN(img) * (1 + scale2) + shift2), img_mlp = net.2(GELU-tanh(net.0.proj(.))); text alike
 * </pre>
 * LayerNorms without affine, eps 1e-6 everywhere.
 */
public final class QwenBlock {

    public static final float EPS = 1e-6f;

    /** The two residual streams after the block. */
    public record Streams(float[] img, float[] txt) {}

    private final QwenNaming n;
    private final int dim;
    private final int heads;

    public QwenBlock(QwenNaming naming, int dim) {
        if (dim % QwenRope.HEAD_DIM != 0) {
            throw new IllegalArgumentException("dim " + dim + " is not a multiple of Qwen-Image's head_dim "
                    + QwenRope.HEAD_DIM);
        }
        this.n = naming;
        this.dim = dim;
        this.heads = dim / QwenRope.HEAD_DIM;
    }

    /** The block's outputs for one run's weights, in float32 on the CPU; the inputs are not modified. */
    public Streams forward(int block, QwenInputs in, RunWeights w) throws FormatException {
        return forward(block, in, w, new CpuBlockMath(QwenRope.HEAD_DIM));
    }

    /**
     * The same on the given math. RoPE and the joins of the two streams run on the host (values pass through
     * {@link BlockMath#output} and {@link BlockMath#input}); what the math allocated is freed before returning.
     */
    public <A> Streams forward(int block, QwenInputs in, RunWeights w, BlockMath<A> m) throws FormatException {
        try (m) {
            int li = in.imageTokens();
            int lt = in.textTokens();
            float[][] im = modulation(block, "img_mod.1", in.temb(), w);
            float[][] tm = modulation(block, "txt_mod.1", in.temb(), w);
            A img = m.input(in.img());
            A txt = m.input(in.txt());

            A imgM = modulated(m, img, li, im[0], im[1]);
            A txtM = modulated(m, txt, lt, tm[0], tm[1]);
            Both<A> attn = attention(block, imgM, txtM, in, w, m);
            m.gatedAdd(img, attn.img(), li, dim, im[2], false);
            m.gatedAdd(txt, attn.txt(), lt, dim, tm[2], false);

            m.gatedAdd(img, mlp(block, "img_mlp", modulated(m, img, li, im[3], im[4]), li, w, m), li, dim, im[5], false);
            m.gatedAdd(txt, mlp(block, "txt_mlp", modulated(m, txt, lt, tm[3], tm[4]), lt, w, m), lt, dim, tm[5], false);
            return new Streams(m.output(img), m.output(txt));
        }
    }

    /** shift1, scale1, gate1, shift2, scale2, gate2 from mod(SiLU(temb)): _modulate's chunk order. */
    private float[][] modulation(int block, String module, float[] temb, RunWeights w) throws FormatException {
        float[] t = temb.clone();
        Ops.silu(t);
        float[] p = w.linear(n.block(block, module), t, 1);
        if (p.length != 6 * dim) {
            throw new IllegalArgumentException(n.block(block, module) + " gives " + p.length + " values, not 6 x " + dim);
        }
        float[][] out = new float[6][];
        for (int c = 0; c < 6; c++) {
            out[c] = Arrays.copyOfRange(p, c * dim, (c + 1) * dim);
        }
        return out;
    }

    private <A> A modulated(BlockMath<A> m, A x, int rows, float[] shift, float[] scale) {
        A h = m.layerNorm(x, rows, dim, EPS, null, null);
        m.modulate(h, rows, dim, scale, shift, false);
        return h;
    }

    private record Both<A>(A img, A txt) {}

    /** The image part after to_out.0 and the text part after to_add_out. */
    private <A> Both<A> attention(int block, A img, A txt, QwenInputs in, RunWeights w, BlockMath<A> m)
            throws FormatException {
        int li = in.imageTokens();
        int lt = in.textTokens();
        int[][] imgPos = QwenRope.imagePositions(in.grid());
        int[][] txtPos = QwenRope.textPositions(in.grid(), lt);
        A iq = m.linear(w, n.block(block, "attn.to_q"), img, li);
        A ik = m.linear(w, n.block(block, "attn.to_k"), img, li);
        A iv = m.linear(w, n.block(block, "attn.to_v"), img, li);
        A tq = m.linear(w, n.block(block, "attn.add_q_proj"), txt, lt);
        A tk = m.linear(w, n.block(block, "attn.add_k_proj"), txt, lt);
        A tv = m.linear(w, n.block(block, "attn.add_v_proj"), txt, lt);
        float[] q = headNormRoped(m, iq, li, w, block, "attn.norm_q", imgPos);
        float[] k = headNormRoped(m, ik, li, w, block, "attn.norm_k", imgPos);
        float[] tqv = headNormRoped(m, tq, lt, w, block, "attn.norm_added_q", txtPos);
        float[] tkv = headNormRoped(m, tk, lt, w, block, "attn.norm_added_k", txtPos);
        // joint order [text, image], as the processor concatenates
        A jq = m.input(concat(tqv, q));
        A jk = m.input(concat(tkv, k));
        A jv = m.input(concat(m.output(tv), m.output(iv)));
        float[] a = m.output(m.attend(w, jq, lt + li, jk, jv, lt + li, dim, heads));
        A imgA = m.input(Arrays.copyOfRange(a, lt * dim, (lt + li) * dim));
        A txtA = m.input(Arrays.copyOfRange(a, 0, lt * dim));
        return new Both<>(m.linear(w, n.block(block, "attn.to_out.0"), imgA, li),
                m.linear(w, n.block(block, "attn.to_add_out"), txtA, lt));
    }

    /** RMSNorm over each head of 128 (weight [128]), then RoPE; returned on the host for the join. */
    private <A> float[] headNormRoped(BlockMath<A> m, A x, int rows, RunWeights w, int block, String norm,
            int[][] positions) throws FormatException {
        float[] weight = w.tensor(n.block(block, norm + ".weight"));
        if (weight.length != QwenRope.HEAD_DIM) {
            throw new IllegalArgumentException(n.block(block, norm + ".weight") + " has " + weight.length
                    + " values, not head_dim " + QwenRope.HEAD_DIM);
        }
        m.rmsNorm(x, rows * heads, QwenRope.HEAD_DIM, EPS, weight);
        float[] v = m.output(x);
        QwenRope.apply(v, positions, dim);
        return v;
    }

    private <A> A mlp(int block, String module, A x, int rows, RunWeights w, BlockMath<A> m) throws FormatException {
        A h = m.linear(w, n.block(block, module + ".net.0.proj"), x, rows);
        m.geluTanh(h);
        return m.linear(w, n.block(block, module + ".net.2"), h, rows);
    }

    private static float[] concat(float[] a, float[] b) {
        float[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
