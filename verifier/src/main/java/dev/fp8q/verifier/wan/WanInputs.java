package dev.fp8q.verifier.wan;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import dev.fp8q.verifier.math.Ops;
import dev.fp8q.verifier.model.CapturedInputs;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.wan.WanNaming.Param;
import dev.fp8q.verifier.weights.TensorValues;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * What a block sees: video tokens x [tokens, dim] on an F x H x W grid, text context [contextTokens, dim],
 * and the timestep projection e, [1 or tokens, 6, dim]. {@code notes} says how each part was made.
 */
public record WanInputs(float[] x, int[] grid, float[] context, int contextTokens, float[] e, boolean perTokenE,
        List<String> notes) {

    /** Spread of the stand-in T5 features that go through text_embedding (umT5 outputs are of this order). */
    public static final double TEXT_FEATURE_STD = 0.2;

    public int tokens() {
        return grid[0] * grid[1] * grid[2];
    }

    /**
     * Deterministic inputs from a seed, made the way the model makes them where the checkpoint allows: x from
     * patch_embedding of a Gaussian latent, context from text_embedding of Gaussian text features, e from a
     * random timestep through time_embedding and time_projection. Uses the reference weights, so every run
     * sees the same inputs.
     */
    public static WanInputs synthetic(WanNaming naming, int dim, int[] grid, int contextTokens, long seed,
            RunWeights w) throws FormatException {
        List<String> notes = new ArrayList<>();
        SplittableRandom r = new SplittableRandom(seed);
        int tokens = grid[0] * grid[1] * grid[2];
        float[] x;
        String patch = naming.name(Param.PATCH, 0);
        if (w.has(patch + ".weight")) {
            float[] pw = w.tensor(patch + ".weight");
            int patchIn = pw.length / dim;
            x = w.linear(patch, CapturedInputs.gaussian(r, tokens * patchIn, 1.0), tokens);
            notes.add("x: patch_embedding of a N(0,1) latent, " + patchIn + " values per token");
        } else {
            x = CapturedInputs.gaussian(r, tokens * dim, 1.0);
            notes.add("x: N(0,1) (no patch_embedding in the checkpoint)");
        }
        float[] context;
        String text0 = naming.name(Param.TEXT_0, 0);
        String text2 = naming.name(Param.TEXT_2, 0);
        if (w.has(text0 + ".weight") && w.has(text2 + ".weight")) {
            int textDim = w.tensor(text0 + ".weight").length / dim;
            float[] h = w.linear(text0, CapturedInputs.gaussian(r, contextTokens * textDim, TEXT_FEATURE_STD), contextTokens);
            Ops.geluTanh(h);
            context = w.linear(text2, h, contextTokens);
            notes.add("context: text_embedding of N(0," + TEXT_FEATURE_STD + ") text features, " + contextTokens
                    + " tokens");
        } else {
            context = CapturedInputs.gaussian(r, contextTokens * dim, 1.0);
            notes.add("context: N(0,1) (no text_embedding in the checkpoint)");
        }
        float[] e;
        String t0 = naming.name(Param.TIME_0, 0);
        String t2 = naming.name(Param.TIME_2, 0);
        String proj = naming.name(Param.TIME_PROJ, 0);
        int timestep = r.nextInt(1000);
        if (w.has(t0 + ".weight") && w.has(t2 + ".weight") && w.has(proj + ".weight")) {
            int freqDim = w.tensor(t0 + ".weight").length / dim;
            float[] h = w.linear(t0, sinusoidal(freqDim, timestep), 1);
            Ops.silu(h);
            h = w.linear(t2, h, 1);
            Ops.silu(h);
            e = w.linear(proj, h, 1);
            notes.add("e: time_projection of timestep " + timestep + " (one row for all tokens)");
        } else {
            e = CapturedInputs.gaussian(r, 6 * dim, 0.1);
            notes.add("e: N(0,0.1) (no time embedding in the checkpoint)");
        }
        return new WanInputs(x, grid.clone(), context, contextTokens, e, false, notes);
    }

    /** Wan's sinusoidal_embedding_1d: [cos(t f_j), sin(t f_j)], f_j = 10000^(-j / half), in float64. */
    public static float[] sinusoidal(int dim, double position) {
        int half = dim / 2;
        float[] out = new float[dim];
        for (int j = 0; j < half; j++) {
            double a = position * Math.pow(10000, -(double) j / half);
            out[j] = (float) Math.cos(a);
            out[half + j] = (float) Math.sin(a);
        }
        return out;
    }

    /**
     * Captured activations: tensors {@code x} [tokens, dim], {@code context} [n, dim] and {@code e}
     * [6, dim] or [tokens, 6, dim] (a leading batch dimension of 1 is allowed), optional integer
     * {@code grid} [3]; without it the grid given on the command line must have the same token count.
     */
    public static WanInputs captured(Path file, int dim, int[] grid) throws FormatException {
        try (Checkpoint c = Checkpoint.open(file)) {
            float[] x = TensorValues.rows(c, "x", dim, "x, context and e");
            float[] context = TensorValues.rows(c, "context", dim, "x, context and e");
            float[] e = TensorValues.rows(c, "e", dim, "x, context and e");
            int[] g = grid.clone();
            var gt = c.tensor("grid");
            if (gt.isPresent()) {
                g = TensorValues.grid(gt.get());
            }
            int tokens = x.length / dim;
            if ((long) g[0] * g[1] * g[2] != tokens) {
                throw new FormatException(Rule.TENSOR_INVALID_INFO, file, "x", tokens + " tokens do not fill the grid "
                        + g[0] + "x" + g[1] + "x" + g[2] + " (store a 'grid' tensor or pass --grid)");
            }
            boolean perToken = e.length == 6L * tokens * dim;
            if (!perToken && e.length != 6 * dim) {
                throw new FormatException(Rule.TENSOR_INVALID_INFO, file, "e", "must be [6, " + dim + "] or ["
                        + tokens + ", 6, " + dim + "], has " + e.length + " values");
            }
            return new WanInputs(x, g, context, context.length / dim, e, perToken,
                    List.of("activations from " + file));
        }
    }
}
