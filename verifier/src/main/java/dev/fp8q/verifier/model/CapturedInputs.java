package dev.fp8q.verifier.model;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import dev.fp8q.verifier.weights.TensorValues;
import java.nio.file.Path;

/**
 * Inputs captured from a real pipeline for the chained runs: {@code latents} F32 [C, F, H, W] (the model's input
 * x_t; the token grid is F x H/2 x W/2) with an optional 0-dim {@code timestep} (0..1000), and {@code context}
 * F32 [L, textDim] (the text encoder's output entering the model). Either may be absent (null); the static helpers
 * make the seeded stand-ins used in their place.
 */
public record CapturedInputs(float[] latents, int[] grid, Double timestep, float[] context) {

    public static final CapturedInputs NONE = new CapturedInputs(null, null, null, null);

    public static CapturedInputs read(Path latents, Path context) throws FormatException {
        float[] lat = null;
        int[] grid = null;
        Double t = null;
        if (latents != null) {
            try (Checkpoint c = Checkpoint.open(latents)) {
                var e = c.tensor("latents").orElseThrow(() -> new FormatException(Rule.TENSOR_NOT_FOUND, latents, "latents",
                        "no tensor 'latents'"));
                long[] s = e.entry().shape();
                if (s.length != 4 || s[2] % 2 != 0 || s[3] % 2 != 0) {
                    throw new FormatException(Rule.TENSOR_INVALID_INFO, latents, "latents",
                            "must be [C, F, H, W] with even H and W, not " + e.entry().shapeString());
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
                var e = c.tensor("context").orElseThrow(() -> new FormatException(Rule.TENSOR_NOT_FOUND, context, "context",
                        "no tensor 'context'"));
                ctx = TensorValues.of(e);
            }
        }
        return new CapturedInputs(lat, grid, t, ctx);
    }

    /**
     * Tokens of a latent [C, F, H, W] in (frame, height, width) order, each C x 2 x 2 values in (channel, dh, dw)
     * order: how Wan's Conv3d patch_embedding reads them and how Qwen-Image's pipeline packs them for img_in.
     */
    public static float[] patchify(float[] latent, int channels, int[] grid) {
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

    /** x_t = (1 - sigma) x0 + sigma noise with sigma = t / 1000, x0 and noise N(0,1) drawn in turn from r. */
    public static float[] syntheticLatentPatches(java.util.SplittableRandom r, int n, double t) {
        double sigma = t / 1000.0;
        float[] patches = new float[n];
        for (int i = 0; i < n; i++) {
            double x0 = r.nextGaussian();
            double noise = r.nextGaussian();
            patches[i] = (float) ((1 - sigma) * x0 + sigma * noise);
        }
        return patches;
    }

    /** n values N(0, std^2) drawn in turn from r, as float. */
    public static float[] gaussian(java.util.SplittableRandom r, int n, double std) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) (r.nextGaussian() * std);
        }
        return out;
    }

    public static final String SYNTHETIC_LATENTS = "x_t = (1 - sigma) x0 + sigma noise, x0 and noise N(0,1), sigma = t/1000";
}
