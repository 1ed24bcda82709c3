package dev.fp8q.verifier.wan;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.math.Ops;
import dev.fp8q.verifier.model.CapturedInputs;
import dev.fp8q.verifier.model.ChainedModel;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.wan.WanNaming.Param;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.regex.Pattern;

/**
 * WanModel.forward around the blocks (FORMATS.md section 3), float32: the input latent through patch_embedding,
 * text features through text_embedding, the timestep through time_embedding and time_projection, every block in
 * order, then the head: {@code head(norm(x) * (1 + e1) + e0)}, {@code e = head.modulation + e_time}. The output is
 * the velocity prediction in token order (unpatchify is a permutation: errors over tokens are errors over the video).
 */
public final class WanModel implements ChainedModel<WanModel.Step> {

    /** Wan's text length: the context is padded with zero rows to it before text_embedding. */
    public static final int TEXT_LEN = 512;

    /** One input of the chained run: the block inputs, e_time [dim] for the head, and how they were made. */
    public record Step(WanInputs inputs, float[] timeEmbedding, double timestep, String description)
            implements ChainedModel.Step {
        @Override
        public float[][] streams() {
            return new float[][] {inputs.x()};
        }

        @Override
        public List<String> notes() {
            return inputs.notes();
        }
    }

    /** A block tensor's name (both namings); group 1 is the block index. */
    public static final Pattern BLOCK_NAME = Pattern.compile("^blocks\\.(\\d{1,6})\\.");

    private final WanNaming n;
    private final int dim;
    private final int layers;
    private final int[] grid;
    private final int contextTokens;
    private final CapturedInputs captured;
    private final int inChannels;
    private final WanBlock block;

    /** grid: the token grid of synthetic latents (captured latents bring their own). */
    public WanModel(WanNaming naming, int dim, int layers, int headDim, int[] grid, int contextTokens,
            CapturedInputs captured, RunWeights reference) throws FormatException {
        this.n = naming;
        this.dim = dim;
        this.layers = layers;
        this.captured = captured;
        this.grid = captured.grid() != null ? captured.grid() : grid.clone();
        this.contextTokens = contextTokens;
        this.inChannels = reference.tensor(naming.weight(Param.PATCH, 0)).length / dim / 4;
        this.block = new WanBlock(naming, dim, headDim);
    }

    @Override
    public String family() {
        return "wan";
    }

    @Override
    public int layers() {
        return layers;
    }

    @Override
    public Pattern blockName() {
        return BLOCK_NAME;
    }

    @Override
    public List<String> streamNames() {
        return List.of("x");
    }

    /**
     * Three timesteps spread over what the expert serves: Wan 2.2's A14B high-noise expert (high_noise_model/, or
     * diffusers' transformer/) takes t >= boundary, the low-noise one (low_noise_model/, transformer_2/) t < boundary;
     * boundary 0.875 for T2V, 0.9 for I2V (36 input channels); anything else the whole range.
     */
    @Override
    public List<Double> defaultTimesteps(String component, List<String> notes) {
        double boundary = inChannels == 36 ? 900 : 875;
        String c = component.toLowerCase(Locale.ROOT);
        double lo = 0;
        double hi = 1000;
        if (c.contains("high_noise") || c.equals("transformer")) {
            lo = boundary;
        } else if (c.contains("low_noise") || c.equals("transformer_2")) {
            hi = boundary;
        }
        notes.add(String.format(Locale.ROOT, "whole model: timesteps spread over [%.0f, %.0f)%s", lo, hi,
                lo == 0 && hi == 1000 ? " (no expert named by the component)"
                        : " (the expert's range, boundary " + boundary / 1000 + ")"));
        return spread(lo, hi);
    }

    /** Three timesteps at the quarters of [lo, hi). */
    public static List<Double> spread(double lo, double hi) {
        List<Double> out = new ArrayList<>();
        for (int k = 1; k <= 3; k++) {
            out.add((double) Math.round(lo + (hi - lo) * k / 4));
        }
        return out;
    }

    /**
     * The model's inputs at timestep t (0..1000): latent x_t = (1 - sigma) x0 + sigma noise with sigma = t / 1000,
     * x0 and noise N(0,1) from the seed, or the captured latent [C, F, H, W]; text features N(0, 0.2) for
     * contextTokens rows, or the captured context [Lc, textDim]; both padded / embedded as the model does.
     */
    @Override
    public Step inputs(double t, long seed, RunWeights w) throws FormatException {
        int patchIn = inChannels * 4;
        int tokens = grid[0] * grid[1] * grid[2];
        SplittableRandom r = new SplittableRandom(seed);
        float[] patches = captured.latents() != null ? CapturedInputs.patchify(captured.latents(), inChannels, grid)
                : CapturedInputs.syntheticLatentPatches(r, tokens * patchIn, t);
        String how = captured.latents() != null ? "captured latents" : CapturedInputs.SYNTHETIC_LATENTS;
        float[] x = w.linear(n.name(Param.PATCH, 0), patches, tokens);
        int textDim = w.tensor(n.weight(Param.TEXT_0, 0)).length / dim;
        float[] features = new float[TEXT_LEN * textDim]; // zero rows past the prompt, as the model pads it
        if (captured.context() != null) {
            System.arraycopy(captured.context(), 0, features, 0, Math.min(captured.context().length, features.length));
        } else {
            int n = Math.min(contextTokens, TEXT_LEN) * textDim;
            System.arraycopy(CapturedInputs.gaussian(r, n, WanInputs.TEXT_FEATURE_STD), 0, features, 0, n);
        }
        float[] h = w.linear(n.name(Param.TEXT_0, 0), features, TEXT_LEN);
        Ops.geluTanh(h);
        float[] ctx = w.linear(n.name(Param.TEXT_2, 0), h, TEXT_LEN);
        int freqDim = w.tensor(n.weight(Param.TIME_0, 0)).length / dim;
        float[] te = w.linear(n.name(Param.TIME_0, 0), WanInputs.sinusoidal(freqDim, t), 1);
        Ops.silu(te);
        float[] eTime = w.linear(n.name(Param.TIME_2, 0), te, 1);
        float[] s = eTime.clone();
        Ops.silu(s);
        float[] e = w.linear(n.name(Param.TIME_PROJ, 0), s, 1);
        List<String> notes = new ArrayList<>(List.of("x: " + how + ", through patch_embedding; grid " + grid[0] + "x" + grid[1]
                        + "x" + grid[2],
                "context: " + (captured.context() != null ? "captured" : contextTokens + " rows of N(0,"
                        + WanInputs.TEXT_FEATURE_STD + ")")
                        + " text features padded with zero rows to " + TEXT_LEN + ", through text_embedding"));
        return new Step(new WanInputs(x, grid.clone(), ctx, TEXT_LEN, e, false, notes), eTime, t,
                "t=" + Math.round(t) + " seed=" + seed);
    }

    @Override
    public float[][] block(int b, Step step, float[][] streams, RunWeights w, BlockMath<?> math) throws FormatException {
        return new float[][] {block.forward(b, withX(step.inputs(), streams[0]), w, math)};
    }

    private static WanInputs withX(WanInputs in, float[] x) {
        return new WanInputs(x, in.grid(), in.context(), in.contextTokens(), in.e(), in.perTokenE(), in.notes());
    }

    /** The head: LayerNorm without affine, shift and scale from head.modulation + e_time, then head.head. */
    @Override
    public float[] head(Step step, float[][] streams, RunWeights w) throws FormatException {
        float[] x = streams[0];
        int tokens = step.inputs().tokens();
        float[] eTime = step.timeEmbedding();
        float[] mod = w.tensor(n.weight(Param.HEAD_MODULATION, 0));
        float[] h = Ops.layerNorm(x, tokens, dim, WanBlock.EPS, null, null);
        for (int r = 0; r < tokens; r++) {
            for (int i = 0; i < dim; i++) {
                float shift = mod[i] + eTime[i];
                float scale = mod[dim + i] + eTime[i];
                h[r * dim + i] = h[r * dim + i] * (1 + scale) + shift;
            }
        }
        return w.linear(n.name(Param.HEAD, 0), h, tokens);
    }
}
