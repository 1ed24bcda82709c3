package dev.fp8q.verifier.qwen;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import dev.fp8q.verifier.math.Ops;
import dev.fp8q.verifier.model.CapturedInputs;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.weights.TensorValues;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

/**
 * What a Qwen-Image block sees: the image stream img [imageTokens, dim] on an F x H x W grid, the text stream
 * txt [textTokens, dim] and the timestep embedding temb [dim]. {@code notes} says how each was made.
 */
public record QwenInputs(float[] img, int[] grid, float[] txt, int textTokens, float[] temb, List<String> notes) {

    /** QwenTimestepProjEmbeddings' Timesteps: 256 channels, scale 1000. */
    static final int TIME_CHANNELS = 256;
    static final double TIME_SCALE = 1000;
    static final double EPS = 1e-6;

    public int imageTokens() {
        return grid[0] * grid[1] * grid[2];
    }

    /**
     * Deterministic inputs from a seed, through the checkpoint's own input layers (reference weights, so every
     * run sees the same): img = img_in(N(0,1) latent patches); txt = txt_in(txt_norm(N(0,1) text features));
     * temb = time_text_embed of a seeded timestep in [0, 1) (the pipeline's sigma, scaled by 1000 inside).
     */
    public static QwenInputs synthetic(QwenNaming n, int dim, int[] grid, int textTokens, long seed, RunWeights w)
            throws FormatException {
        List<String> notes = new ArrayList<>();
        SplittableRandom r = new SplittableRandom(seed);
        int tokens = grid[0] * grid[1] * grid[2];
        String imgIn = n.top("img_in");
        int patchIn = w.tensor(imgIn + ".weight").length / dim;
        float[] img = w.linear(imgIn, CapturedInputs.gaussian(r, tokens * patchIn, 1.0), tokens);
        notes.add("img: img_in of a N(0,1) latent, " + patchIn + " values per token, grid " + grid[0] + "x" + grid[1]
                + "x" + grid[2]);
        float[] txt;
        String txtIn = n.top("txt_in");
        if (w.has(txtIn + ".weight") && w.has(n.top("txt_norm.weight"))) {
            float[] norm = w.tensor(n.top("txt_norm.weight"));
            float[] f = CapturedInputs.gaussian(r, textTokens * norm.length, 1.0);
            Ops.rmsNorm(f, textTokens, norm.length, (float) EPS, norm);
            txt = w.linear(txtIn, f, textTokens);
            notes.add("txt: txt_in(txt_norm(N(0,1) text features of " + norm.length + ")), " + textTokens + " tokens");
        } else {
            txt = CapturedInputs.gaussian(r, textTokens * dim, 1.0);
            notes.add("txt: N(0,1) (no txt_in / txt_norm in the checkpoint)");
        }
        float[] temb;
        String l1 = n.top("time_text_embed.timestep_embedder.linear_1");
        String l2 = n.top("time_text_embed.timestep_embedder.linear_2");
        double timestep = r.nextInt(1000) / 1000.0;
        if (w.has(l1 + ".weight") && w.has(l2 + ".weight")) {
            float[] h = w.linear(l1, timestepProjection(timestep), 1);
            Ops.silu(h);
            temb = w.linear(l2, h, 1);
            notes.add("temb: time_text_embed of timestep " + timestep);
        } else {
            temb = CapturedInputs.gaussian(r, dim, 1.0);
            notes.add("temb: N(0,1) (no time_text_embed in the checkpoint)");
        }
        return new QwenInputs(img, grid.clone(), txt, textTokens, temb, notes);
    }

    /**
     * diffusers' Timesteps(256, flip_sin_to_cos=True, downscale_freq_shift=0, scale=1000): [cos, sin] of
     * 1000 t exp(-ln(10000) j / 128), j < 128, in float64.
     */
    static float[] timestepProjection(double t) {
        int half = TIME_CHANNELS / 2;
        float[] out = new float[TIME_CHANNELS];
        for (int j = 0; j < half; j++) {
            double a = TIME_SCALE * t * Math.exp(-Math.log(10000) * j / half);
            out[j] = (float) Math.cos(a);
            out[half + j] = (float) Math.sin(a);
        }
        return out;
    }

    /**
     * Captured activations: {@code img} [Li, dim] and {@code txt} [Lt, dim] (the streams entering the block),
     * {@code temb} [dim], optional integer {@code grid} [3] (frames, height, width of the image tokens; without
     * it the given grid must hold Li tokens). A leading batch dimension of 1 is allowed.
     */
    public static QwenInputs captured(Path file, int dim, int[] grid) throws FormatException {
        try (Checkpoint c = Checkpoint.open(file)) {
            float[] img = TensorValues.rows(c, "img", dim, "img, txt and temb");
            float[] txt = TensorValues.rows(c, "txt", dim, "img, txt and temb");
            float[] temb = TensorValues.rows(c, "temb", dim, "img, txt and temb");
            if (temb.length != dim) {
                throw new FormatException(Rule.TENSOR_INVALID_INFO, file, "temb", "must be [" + dim + "], has "
                        + temb.length + " values");
            }
            int[] g = grid.clone();
            var gt = c.tensor("grid");
            if (gt.isPresent()) {
                g = TensorValues.grid(gt.get());
            }
            int tokens = img.length / dim;
            if ((long) g[0] * g[1] * g[2] != tokens) {
                throw new FormatException(Rule.TENSOR_INVALID_INFO, file, "img", tokens + " tokens do not fill the grid "
                        + g[0] + "x" + g[1] + "x" + g[2] + " (store a 'grid' tensor or pass --grid)");
            }
            return new QwenInputs(img, g, txt, txt.length / dim, temb, List.of("activations from " + file));
        }
    }
}
