package dev.fp8q.verifier.wan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.testdata.WanCheckpoints;
import dev.fp8q.verifier.Verifier;
import dev.fp8q.verifier.VerifyReport;
import dev.fp8q.verifier.check.Bounds;
import dev.fp8q.verifier.check.Check;
import dev.fp8q.verifier.model.CapturedInputs;
import dev.fp8q.verifier.run.ReferenceWeights;
import dev.fp8q.verifier.weights.TensorValues;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * verify --whole against an independent float64 run of the whole model (embeddings, both blocks, head) written
 * here from FORMATS.md section 3, on the same synthetic recipe: the end-to-end and per-block figures agree.
 */
class WholeModelFiguresTest {

    static final int DIM = 128;

    @Test
    void endToEndAndDriftFiguresMatchTheFloat64Model(@TempDir Path dir) throws Exception {
        Path src = WanCheckpoints.extractEmbedded(dir.resolve("src.safetensors"));
        Path dst = dir.resolve("fp8.safetensors");
        VerifierFiguresTest.quantize(src, dst);
        int[] grid = {2, 2, 2};
        long seed = 5;
        double t = 600;
        var opts = new Verifier.Options(List.of(0), grid, 6, seed, null, Verifier.WeightScope.NONE, Bounds.defaults(), 32,
                64, s -> { }, Verifier.Device.CPU).withWhole(new Verifier.Whole(List.of(t), 1, null, null));
        VerifyReport report = Verifier.verify(src, dst, opts);
        assertTrue(report.summary().passed(), () -> report.failures().toString());

        Map<String, float[]> source = new HashMap<>();
        Map<String, float[]> dequant = new HashMap<>();
        try (Checkpoint s = Checkpoint.open(src); Checkpoint d = Checkpoint.open(dst)) {
            for (Checkpoint.Tensor x : s.tensors()) {
                source.put(x.name(), TensorValues.of(x));
                float[] v = TensorValues.of(d.tensor(x.name()).orElseThrow());
                var scale = d.tensor(x.name() + "_scale");
                if (scale.isPresent()) {
                    float sc = scale.get().data().get(Elements.FLOAT, 0);
                    for (int i = 0; i < v.length; i++) {
                        v[i] *= sc;
                    }
                }
                dequant.put(x.name(), v);
            }
        }
        double[][] ref = model(new Reference64(source, DIM, 128), grid, 6, seed, t);
        double[][] wo = model(new Reference64(dequant, DIM, 128), grid, 6, seed, t);
        try (Checkpoint s = Checkpoint.open(src)) { // the float32 model itself, not only its error, is the float64 one
            ReferenceWeights w = new ReferenceWeights(s);
            WanModel model = new WanModel(WanNaming.ORIGINAL, DIM, 2, 128, grid, 6, CapturedInputs.NONE, w);
            WanModel.Step step = model.inputs(t, seed, w);
            float[][][] streams = new float[3][][];
            streams[0] = step.streams();
            for (int b = 0; b < 2; b++) {
                streams[b + 1] = model.block(b, step, streams[b], w, new CpuBlockMath(128));
            }
            float[][] f32 = {streams[1][0], streams[2][0], model.head(step, streams[2], w)};
            for (int k = 0; k < 3; k++) {
                double[] asDouble = new double[f32[k].length];
                for (int i = 0; i < asDouble.length; i++) {
                    asDouble[i] = f32[k][i];
                }
                assertTrue(VerifierFiguresTest.sqnr(ref[k], asDouble, null) > 100, "float32 model output " + k
                        + " within float32 rounding of the float64 one: " + VerifierFiguresTest.sqnr(ref[k], asDouble, null));
            }
        }
        Check out = find(report, "model_output", null);
        assertEquals(VerifierFiguresTest.sqnr(ref[2], wo[2], null), out.metrics().sqnrDb(), 0.05, "end to end");
        for (int b = 0; b < 2; b++) {
            assertEquals(VerifierFiguresTest.sqnr(ref[b], wo[b], null), find(report, "drift", b).metrics().sqnrDb(), 0.05,
                    "drift after block " + b);
        }
    }

    static Check find(VerifyReport r, String scope, Integer block) {
        return r.checks().stream().filter(c -> c.scope().equals(scope) && "weight_only".equals(c.run())
                && (block == null || block.equals(c.block()))).findFirst().orElseThrow();
    }

    /** [after block 0, after block 1, head output], float64 throughout; the inputs drawn as WanModel documents. */
    static double[][] model(Reference64 m, int[] grid, int ctxTokens, long seed, double t) {
        int tokens = grid[0] * grid[1] * grid[2];
        int patchIn = m.w.get("patch_embedding.weight").length / DIM;
        SplittableRandom r = new SplittableRandom(seed);
        double sigma = t / 1000;
        double[][] x = new double[tokens][];
        double[][] patches = new double[tokens][patchIn];
        for (int i = 0; i < tokens; i++) {
            for (int j = 0; j < patchIn; j++) {
                double x0 = r.nextGaussian();
                double noise = r.nextGaussian();
                patches[i][j] = (float) ((1 - sigma) * x0 + sigma * noise); // the recipe's float latent
            }
        }
        for (int i = 0; i < tokens; i++) {
            x[i] = m.linear("patch_embedding", patches[i]);
        }
        int textDim = m.w.get("text_embedding.0.weight").length / DIM;
        double[][] ctx = new double[512][];
        for (int i = 0; i < 512; i++) {
            double[] f = new double[textDim];
            if (i < ctxTokens) {
                for (int j = 0; j < textDim; j++) {
                    f[j] = (float) (r.nextGaussian() * 0.2);
                }
            }
            double[] h = m.linear("text_embedding.0", f);
            for (int j = 0; j < h.length; j++) {
                h[j] = 0.5 * h[j] * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (h[j] + 0.044715 * h[j] * h[j] * h[j])));
            }
            ctx[i] = m.linear("text_embedding.2", h);
        }
        int freq = m.w.get("time_embedding.0.weight").length / DIM;
        double[] sin = new double[freq];
        for (int k = 0; k < freq / 2; k++) {
            double a = t * Math.pow(10000, -(double) k / (freq / 2));
            sin[k] = Math.cos(a);
            sin[freq / 2 + k] = Math.sin(a);
        }
        double[] eTime = m.linear("time_embedding.2", silu(m.linear("time_embedding.0", sin)));
        double[] e = m.linear("time_projection.1", silu(eTime.clone()));
        double[][] out = new double[3][];
        for (int b = 0; b < 2; b++) {
            out[b] = m.forward(b, x, grid, ctx, e);
            for (int i = 0; i < tokens; i++) {
                x[i] = java.util.Arrays.copyOfRange(out[b], i * DIM, (i + 1) * DIM);
            }
        }
        float[] mod = m.w.get("head.modulation");
        double[] shift = new double[DIM];
        double[] scale = new double[DIM];
        for (int i = 0; i < DIM; i++) {
            shift[i] = mod[i] + eTime[i];
            scale[i] = mod[DIM + i] + eTime[i];
        }
        int outDim = m.w.get("head.head.weight").length / DIM;
        out[2] = new double[tokens * outDim];
        for (int i = 0; i < tokens; i++) {
            double[] y = m.linear("head.head", m.modulate(Reference64.layerNorm(x[i], null, null), scale, shift));
            System.arraycopy(y, 0, out[2], i * outDim, outDim);
        }
        return out;
    }

    static double[] silu(double[] v) {
        for (int i = 0; i < v.length; i++) {
            v[i] = v[i] / (1 + Math.exp(-v[i]));
        }
        return v;
    }
}
