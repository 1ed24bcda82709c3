package dev.fp8q.verifier.wan;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import dev.fp8q.verifier.math.Ops;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.wan.WanNaming.Param;
import dev.fp8q.verifier.weights.TensorValues;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * WanModel.forward around the blocks (FORMATS.md section 3), float32: the input latent through patch_embedding,
 * text features through text_embedding, the timestep through time_embedding and time_projection, every block in
 * order, then the head: {@code head(norm(x) * (1 + e1) + e0)}, {@code e = head.modulation + e_time}. The output is
 * the velocity prediction in token order (unpatchify is a permutation: errors over tokens are errors over the video).
 */
public final class WanModel {

    /** Wan's text length: the context is padded with zero rows to it before text_embedding. */
    public static final int TEXT_LEN = 512;

    /** One input of the chained run: the block inputs, e_time [dim] for the head, and how they were made. */
    public record Step(WanInputs inputs, float[] timeEmbedding, double timestep, String description) {}

    /** One block's forward for one run, on whatever math the caller holds. */
    public interface BlockRun {
        float[] forward(int block, WanInputs in) throws FormatException;
    }

    private WanModel() {}

    /**
     * The model's inputs at timestep t (0..1000): latent x_t = (1 - sigma) x0 + sigma noise with sigma = t / 1000,
     * x0 and noise N(0,1) from the seed, or the given latent [C, F, H, W]; text features N(0, 0.2) for
     * contextTokens rows, or the given context [Lc, textDim]; both padded / embedded as the model does.
     */
    public static Step inputs(WanNaming n, int dim, int[] grid, int contextTokens, long seed, double t, RunWeights w,
            float[] latent, float[] context) throws FormatException {
        float[] pw = w.tensor(n.weight(Param.PATCH, 0));
        int patchIn = pw.length / dim;
        int tokens = grid[0] * grid[1] * grid[2];
        SplittableRandom r = new SplittableRandom(seed);
        float[] patches;
        String how;
        if (latent != null) {
            patches = patchify(latent, patchIn / 4, grid);
            how = "captured latents";
        } else {
            double sigma = t / 1000.0;
            patches = new float[tokens * patchIn];
            for (int i = 0; i < patches.length; i++) {
                double x0 = r.nextGaussian();
                double noise = r.nextGaussian();
                patches[i] = (float) ((1 - sigma) * x0 + sigma * noise);
            }
            how = "x_t = (1 - sigma) x0 + sigma noise, x0 and noise N(0,1), sigma = t/1000";
        }
        float[] x = w.linear(n.name(Param.PATCH, 0), patches, tokens);
        int textDim = w.tensor(n.weight(Param.TEXT_0, 0)).length / dim;
        float[] features = new float[TEXT_LEN * textDim]; // zero rows past the prompt, as the model pads it
        if (context != null) {
            System.arraycopy(context, 0, features, 0, Math.min(context.length, features.length));
        } else {
            for (int i = 0; i < Math.min(contextTokens, TEXT_LEN) * textDim; i++) {
                features[i] = (float) (r.nextGaussian() * WanInputs.TEXT_FEATURE_STD);
            }
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
        List<String> notes = new ArrayList<>(List.of("x: " + how + ", through patch_embedding",
                "context: " + (context != null ? "captured" : contextTokens + " rows of N(0," + WanInputs.TEXT_FEATURE_STD + ")")
                        + " text features padded with zero rows to " + TEXT_LEN + ", through text_embedding"));
        return new Step(new WanInputs(x, grid.clone(), ctx, TEXT_LEN, e, false, notes), eTime, t,
                "t=" + Math.round(t) + " seed=" + seed);
    }

    /** The residual stream after every block, and the head's output (the last entry). */
    public static float[][] forward(WanNaming n, int dim, int layers, Step s, RunWeights w, BlockRun blocks)
            throws FormatException {
        float[][] out = new float[layers + 1][];
        WanInputs in = s.inputs();
        float[] x = in.x();
        for (int b = 0; b < layers; b++) {
            x = blocks.forward(b, withX(in, x));
            out[b] = x;
        }
        out[layers] = head(n, dim, x, in.tokens(), s.timeEmbedding(), w);
        return out;
    }

    public static WanInputs withX(WanInputs in, float[] x) {
        return new WanInputs(x, in.grid(), in.context(), in.contextTokens(), in.e(), in.perTokenE(), in.notes());
    }

    /** The head: LayerNorm without affine, shift and scale from head.modulation + e_time, then head.head. */
    public static float[] head(WanNaming n, int dim, float[] x, int tokens, float[] eTime, RunWeights w)
            throws FormatException {
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

    /** Tokens of a latent [C, F, H, W] in (frame, height, width) order, each C x 1 x 2 x 2 as the Conv3d reads it. */
    static float[] patchify(float[] latent, int channels, int[] grid) {
        int f = grid[0];
        int gh = grid[1];
        int gw = grid[2];
        int hh = gh * 2;
        int ww = gw * 2;
        float[] out = new float[f * gh * gw * channels * 4];
        int o = 0;
        for (int fi = 0; fi < f; fi++) {
            for (int i = 0; i < gh; i++) {
                for (int j = 0; j < gw; j++) {
                    for (int c = 0; c < channels; c++) {
                        for (int dh = 0; dh < 2; dh++) {
                            for (int dw = 0; dw < 2; dw++) {
                                out[o++] = latent[((c * f + fi) * hh + 2 * i + dh) * ww + 2 * j + dw];
                            }
                        }
                    }
                }
            }
        }
        return out;
    }

    /** Captured inputs: {@code latents} F32 [C, F, H, W] (and {@code timestep} 0-dim), {@code context} F32 [Lc, textDim]. */
    public record Captured(float[] latents, int[] grid, Double timestep, float[] context) {}

    public static Captured captured(Path latents, Path context) throws FormatException {
        float[] lat = null;
        int[] grid = null;
        Double t = null;
        if (latents != null) {
            try (Checkpoint c = Checkpoint.open(latents)) {
                var e = c.tensor("latents").orElseThrow(() -> new FormatException(Rule.TENSOR_NOT_FOUND, latents, "latents", "no tensor 'latents'"));
                long[] s = e.entry().shape();
                if (s.length != 4 || s[2] % 2 != 0 || s[3] % 2 != 0) {
                    throw new FormatException(Rule.TENSOR_INVALID_INFO, latents, "latents", "must be [C, F, H, W] with even H and W, not "
                            + e.entry().shapeString());
                }
                lat = TensorValues.of(e);
                grid = new int[] {(int) s[1], (int) s[2] / 2, (int) s[3] / 2};
                var ts = c.tensor("timestep");
                if (ts.isPresent()) {
                    t = (double) TensorValues.of(ts.get())[0];
                }
            }
        }
        float[] ctx = null;
        if (context != null) {
            try (Checkpoint c = Checkpoint.open(context)) {
                var e = c.tensor("context").orElseThrow(() -> new FormatException(Rule.TENSOR_NOT_FOUND, context, "context", "no tensor 'context'"));
                ctx = TensorValues.of(e);
            }
        }
        return new Captured(lat, grid, t, ctx);
    }
}
