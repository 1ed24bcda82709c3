package dev.fp8q.verifier.qwen;

import static dev.fp8q.verifier.qwen.QwenBlockTest.DIM;
import static dev.fp8q.verifier.qwen.QwenBlockTest.GRID;
import static dev.fp8q.verifier.qwen.QwenBlockTest.TEXT;
import static dev.fp8q.verifier.qwen.QwenBlockTest.sqnr;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.verifier.Verifier;
import dev.fp8q.verifier.VerifyReport;
import dev.fp8q.verifier.check.Bounds;
import dev.fp8q.verifier.check.Check;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * verify --whole on a Qwen-Image transformer: the model output and each stream's drift against an independent
 * float64 QwenImageTransformer2DModel.forward (inputs, blocks from {@link QwenReference64}, AdaLayerNormContinuous
 * head), within 0.05 dB.
 */
class QwenWholeModelTest {

    static final int BLOCKS = 2;

    @Test
    void wholeModelFiguresMatchAnIndependentFloat64Model(@TempDir Path dir) throws Exception {
        Path src = TinyQwen.write(dir.resolve("src.safetensors"), BLOCKS, 21);
        Path dst = TinyQwen.quantize(src, dir.resolve("fp8.safetensors"));
        double t = 600;
        long seed = 4;
        var opts = new Verifier.Options(List.of(0), GRID, TEXT, seed, null, Verifier.WeightScope.NONE, Bounds.defaults(),
                32, 64, s -> { }, Verifier.Device.CPU).withWhole(new Verifier.Whole(List.of(t), 1, null, null));
        VerifyReport report = Verifier.verify(src, dst, opts);
        assertTrue(report.summary().passed(), () -> report.failures().toString());

        Map<String, float[]> source = TinyQwen.values(src);
        Map<String, float[]> dequant = TinyQwen.values(dst);
        for (String run : List.of("weight_only", "w8a8")) {
            boolean w8a8 = run.equals("w8a8");
            double[][][] ref = model(new QwenReference64(source, DIM, b -> false), seed, t);
            double[][][] out = model(new QwenReference64(dequant, DIM,
                    b -> w8a8 && TinyQwen.FP8.matcher(b + ".weight").find()), seed, t);
            Check o = find(report, "model_output", run, null, null);
            System.out.printf(Locale.ROOT, "%s: model output %.2f dB (float64 %.2f)%n", run, o.metrics().sqnrDb(),
                    sqnr(ref[BLOCKS][0], out[BLOCKS][0], null));
            assertEquals(sqnr(ref[BLOCKS][0], out[BLOCKS][0], null), o.metrics().sqnrDb(), 0.05, run + " model output");
            for (int b = 0; b < BLOCKS; b++) {
                for (int s = 0; s < 2; s++) {
                    String stream = s == 0 ? "image" : "text";
                    assertEquals(sqnr(ref[b][s], out[b][s], null), find(report, "drift", run, b, stream).metrics().sqnrDb(),
                            0.05, run + " drift after block " + b + ", " + stream);
                }
            }
        }
    }

    static Check find(VerifyReport r, String scope, String run, Integer block, String stream) {
        return r.checks().stream().filter(c -> c.scope().equals(scope) && run.equals(c.run())
                && (block == null || block.equals(c.block())) && (stream == null || stream.equals(c.stream())))
                .findFirst().orElseThrow();
    }

    /**
     * [block b] = {image, text} after block b, and [BLOCKS] = {model output}, in float64; the inputs drawn as
     * QwenModel documents: latent patches x_t = (1 - sigma) x0 + sigma noise (float), then N(0,1) text features.
     */
    static double[][][] model(QwenReference64 m, long seed, double t) {
        SplittableRandom r = new SplittableRandom(seed);
        int tokens = GRID[0] * GRID[1] * GRID[2];
        double sigma = t / 1000;
        double[][] patches = new double[tokens][TinyQwen.PATCH_IN];
        for (double[] row : patches) {
            for (int j = 0; j < row.length; j++) {
                double x0 = r.nextGaussian();
                double noise = r.nextGaussian();
                row[j] = (float) ((1 - sigma) * x0 + sigma * noise);
            }
        }
        double[][] img = m.linear("img_in", patches);
        double[][] features = new double[TEXT][TinyQwen.TEXT_DIM];
        float[] g = m.w.get("txt_norm.weight");
        for (double[] row : features) {
            for (int j = 0; j < row.length; j++) {
                row[j] = (float) r.nextGaussian();
            }
            double ms = 0;
            for (double v : row) {
                ms += v * v;
            }
            double inv = 1 / Math.sqrt(ms / row.length + QwenReference64.EPS);
            for (int j = 0; j < row.length; j++) {
                row[j] = row[j] * inv * g[j];
            }
        }
        double[][] txt = m.linear("txt_in", features);
        double[][] h = m.linear("time_text_embed.timestep_embedder.linear_1",
                new double[][] {QwenReference64.timestepProjection(t / 1000)});
        silu(h[0]);
        double[] temb = m.linear("time_text_embed.timestep_embedder.linear_2", h)[0];
        double[][][] out = new double[BLOCKS + 1][][];
        for (int b = 0; b < BLOCKS; b++) {
            double[][] s = m.forward(b, img, txt, temb, GRID);
            out[b] = s;
            img = rows64(s[0]);
            txt = rows64(s[1]);
        }
        double[] e = temb.clone();
        silu(e);
        double[] emb = m.linear("norm_out.linear", new double[][] {e})[0];
        double[] scale = java.util.Arrays.copyOfRange(emb, 0, DIM); // AdaLayerNormContinuous: scale, then shift
        double[] shift = java.util.Arrays.copyOfRange(emb, DIM, 2 * DIM);
        out[BLOCKS] = new double[][] {flatten(m.linear("proj_out", m.modulate(img, shift, scale)))};
        return out;
    }

    static void silu(double[] v) {
        for (int i = 0; i < v.length; i++) {
            v[i] = v[i] / (1 + Math.exp(-v[i]));
        }
    }

    static double[] flatten(double[][] x) {
        return java.util.Arrays.stream(x).flatMapToDouble(java.util.Arrays::stream).toArray();
    }

    static double[][] rows64(double[] v) {
        double[][] out = new double[v.length / DIM][];
        for (int r = 0; r < out.length; r++) {
            out[r] = java.util.Arrays.copyOfRange(v, r * DIM, (r + 1) * DIM);
        }
        return out;
    }
}
