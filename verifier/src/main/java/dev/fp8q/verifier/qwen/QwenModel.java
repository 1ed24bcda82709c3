package dev.fp8q.verifier.qwen;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.math.Ops;
import dev.fp8q.verifier.model.CapturedInputs;
import dev.fp8q.verifier.model.ChainedModel;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.wan.BlockMath;
import dev.fp8q.verifier.wan.WanModel;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.regex.Pattern;

/**
 * diffusers' QwenImageTransformer2DModel.forward, float32, without text mask, guidance or Edit's zero_cond_t:
 * img = img_in(packed latent patches), txt = txt_in(txt_norm(text features)), temb = time_text_embed(t / 1000);
 * every dual-stream block in order; then the head on the image stream:
 * {@code proj_out(LN(img) * (1 + scale) + shift)}, (scale, shift) = norm_out.linear(SiLU(temb)) in that order
 * (AdaLayerNormContinuous).
 */
public final class QwenModel implements ChainedModel<QwenModel.Step> {

    /** One input of the chained run: what every block sees apart from its two streams. */
    public record Step(QwenInputs inputs, double timestep, String description) implements ChainedModel.Step {
        @Override
        public float[][] streams() {
            return new float[][] {inputs.img(), inputs.txt()};
        }

        @Override
        public List<String> notes() {
            return inputs.notes();
        }
    }

    private final QwenNaming n;
    private final int dim;
    private final int layers;
    private final int[] grid;
    private final int contextTokens;
    private final CapturedInputs captured;
    private final QwenBlock block;

    public QwenModel(QwenNaming naming, int dim, int layers, int[] grid, int contextTokens, CapturedInputs captured) {
        this.n = naming;
        this.dim = dim;
        this.layers = layers;
        this.grid = captured.grid() != null ? captured.grid() : grid.clone();
        this.contextTokens = contextTokens;
        this.captured = captured;
        this.block = new QwenBlock(naming, dim);
    }

    @Override
    public String family() {
        return "qwen-image";
    }

    @Override
    public int layers() {
        return layers;
    }

    @Override
    public Pattern blockName() {
        return n.blockPattern();
    }

    @Override
    public List<String> streamNames() {
        return List.of("image", "text");
    }

    @Override
    public List<Double> defaultTimesteps(String component, List<String> notes) {
        notes.add("whole model: timesteps spread over [0, 1000) (Qwen-Image has one transformer for every timestep)");
        return WanModel.spread(0, 1000);
    }

    /**
     * img from img_in of x_t = (1 - sigma) x0 + sigma noise (sigma = t / 1000) or the captured latent, packed as the
     * pipeline packs it; txt from txt_in(txt_norm(.)) of contextTokens N(0,1) text features or the captured context;
     * temb from time_text_embed of t / 1000, as the pipeline passes the timestep.
     */
    @Override
    public Step inputs(double t, long seed, RunWeights w) throws FormatException {
        SplittableRandom r = new SplittableRandom(seed);
        int tokens = grid[0] * grid[1] * grid[2];
        String imgIn = n.top("img_in");
        int patchIn = w.tensor(imgIn + ".weight").length / dim;
        float[] patches = captured.latents() != null ? CapturedInputs.patchify(captured.latents(), patchIn / 4, grid)
                : CapturedInputs.syntheticLatentPatches(r, tokens * patchIn, t);
        float[] img = w.linear(imgIn, patches, tokens);
        float[] norm = w.tensor(n.top("txt_norm.weight"));
        int textDim = norm.length;
        float[] features;
        if (captured.context() != null) {
            features = captured.context().clone();
        } else {
            features = CapturedInputs.gaussian(r, contextTokens * textDim, 1.0);
        }
        int lt = features.length / textDim;
        Ops.rmsNorm(features, lt, textDim, (float) QwenInputs.EPS, norm);
        float[] txt = w.linear(n.top("txt_in"), features, lt);
        float[] h = w.linear(n.top("time_text_embed.timestep_embedder.linear_1"), QwenInputs.timestepProjection(t / 1000), 1);
        Ops.silu(h);
        float[] temb = w.linear(n.top("time_text_embed.timestep_embedder.linear_2"), h, 1);
        List<String> notes = new ArrayList<>(List.of(
                "img: " + (captured.latents() != null ? "captured latents" : CapturedInputs.SYNTHETIC_LATENTS)
                        + ", packed 2x2, through img_in; grid " + grid[0] + "x" + grid[1] + "x" + grid[2],
                "txt: " + (captured.context() != null ? "captured context" : contextTokens + " rows of N(0,1) text features")
                        + " through txt_norm and txt_in; no text mask",
                "temb: time_text_embed of t/1000"));
        return new Step(new QwenInputs(img, grid.clone(), txt, lt, temb, notes), t, "t=" + Math.round(t) + " seed=" + seed);
    }

    @Override
    public float[][] block(int b, Step step, float[][] streams, RunWeights w, BlockMath<?> math) throws FormatException {
        QwenInputs in = step.inputs();
        QwenBlock.Streams out = block.forward(b,
                new QwenInputs(streams[0], in.grid(), streams[1], in.textTokens(), in.temb(), in.notes()), w, math);
        return new float[][] {out.img(), out.txt()};
    }

    @Override
    public float[] head(Step step, float[][] streams, RunWeights w) throws FormatException {
        float[] t = step.inputs().temb().clone();
        Ops.silu(t);
        float[] emb = w.linear(n.top("norm_out.linear"), t, 1);
        int tokens = step.inputs().imageTokens();
        float[] h = Ops.layerNorm(streams[0], tokens, dim, QwenBlock.EPS, null, null);
        for (int r = 0; r < tokens; r++) {
            for (int i = 0; i < dim; i++) {
                h[r * dim + i] = h[r * dim + i] * (1 + emb[i]) + emb[dim + i];
            }
        }
        return w.linear(n.top("proj_out"), h, tokens);
    }
}
