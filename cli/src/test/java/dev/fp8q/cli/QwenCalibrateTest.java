package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.verifier.Verifier;
import dev.fp8q.verifier.VerifyReport;
import dev.fp8q.verifier.check.Bounds;
import dev.fp8q.verifier.model.CapturedInputs;
import dev.fp8q.verifier.model.ChainedModel;
import dev.fp8q.verifier.model.ChainedModels;
import dev.fp8q.verifier.run.LinearsOver;
import dev.fp8q.verifier.run.ReferenceWeights;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.wan.CpuBlockMath;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * fp8q calibrate on a tiny Qwen-Image transformer: every input scale equals the max |x| / 448 of an independent
 * recording over the same chained forwards, with Qwen's joint attention grouped as vLLM fuses it: to_q/k/v (the image
 * stream's input) one group, add_q/k/v_proj (the text stream's) another.
 */
class QwenCalibrateTest {

    private static final List<Double> TIMESTEPS = List.of(300.0, 700.0);
    private static final int[] GRID = {1, 2, 2};

    @Test
    void qwenImageScalesEqualAnIndependentRecordingWithImageAndTextQkvAsTwoGroups(@TempDir Path dir) throws Exception {
        Path src = QwenImageVerifyTest.tinyQwenImage(dir.resolve("src.safetensors"), 2);
        Path dst = dir.resolve("fp8.safetensors");
        assertEquals(0, CliRun.of("convert", "--quiet", "--quantize", QwenImageVerifyTest.QUANTIZE, src.toString(),
                dst.toString()).code());
        CliRun r = CliRun.of("calibrate", src.toString(), dst.toString(), "--grid", "1,2,2", "--context-tokens", "3",
                "--timesteps", "300,700", "--samples", "1");
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("4 group(s) of Linears share their input"), r.out());

        Map<String, Double> amax = record(src);
        List<List<String>> groups = List.of(List.of("attn.to_q", "attn.to_k", "attn.to_v"),
                List.of("attn.add_q_proj", "attn.add_k_proj", "attn.add_v_proj"), List.of("attn.to_out.0"),
                List.of("attn.to_add_out"), List.of("img_mlp.net.0.proj"), List.of("img_mlp.net.2"),
                List.of("txt_mlp.net.0.proj"), List.of("txt_mlp.net.2"));
        int layers = 0;
        try (Checkpoint c = Checkpoint.open(dst)) {
            for (int b = 0; b < 2; b++) {
                String p = "transformer_blocks." + b + ".";
                for (List<String> g : groups) {
                    double a = g.stream().mapToDouble(l -> amax.get(p + l)).max().orElseThrow();
                    for (String l : g) {
                        assertEquals((float) a / 448f, scale(c, p + l), 0f, p + l);
                        layers++;
                    }
                }
                assertNotEquals(scale(c, p + "attn.to_q"), scale(c, p + "attn.add_q_proj"),
                        "image and text q/k/v are two groups");
                assertTrue(c.tensor(p + "img_mod.1.input_scale").isEmpty(), "only FP8 Linears get input scales");
            }
            assertEquals(layers, c.tensors().stream().filter(t -> t.name().endsWith(".input_scale")).count());
        }
        assertEquals(2 * 12, layers);

        var opts = new Verifier.Options(List.of(1), GRID, 3, 0, null, Verifier.WeightScope.NONE, Bounds.defaults(), 32,
                64, s -> { }, Verifier.Device.CPU).withWhole(new Verifier.Whole(TIMESTEPS, 1, null, null));
        VerifyReport v = Verifier.verify(src, dst, opts);
        assertTrue(v.summary().passed(), () -> v.failures().toString());
        assertEquals(layers, v.staticScales().size(), "the static scales section lists every calibrated Linear");
        assertTrue(v.staticScales().stream().allMatch(s -> "calibration".equals(s.spreadFrom())));
        assertTrue(v.checks().stream().anyMatch(c -> "model_output".equals(c.scope()) && "w8a8_static".equals(c.run())));
    }

    private static float scale(Checkpoint c, String layer) {
        return c.tensor(layer + ".input_scale").orElseThrow().data().get(Elements.FLOAT, 0);
    }

    /** Each Linear's max |x| over the chained forwards (timesteps 300, 700; seed 0), recorded here, in double. */
    static Map<String, Double> record(Path src) throws Exception {
        Map<String, Double> amax = new HashMap<>();
        try (Checkpoint c = Checkpoint.open(src)) {
            ReferenceWeights ref = new ReferenceWeights(c);
            RunWeights rec = new LinearsOver() {
                public RunWeights reference() {
                    return ref;
                }

                public float[] linear(String base, float[] x, int rows) throws FormatException {
                    double m = 0;
                    for (float v : x) {
                        m = Math.max(m, Math.abs((double) v));
                    }
                    amax.merge(base, m, Math::max);
                    return ref.linear(base, x, rows);
                }
            };
            ChainedModel<?> model = ChainedModels.of(c, ref, GRID, 3, CapturedInputs.NONE).orElseThrow();
            assertEquals("qwen-image", model.family());
            for (double t : TIMESTEPS) {
                forward(model, t, rec);
            }
        }
        return amax;
    }

    private static <S extends ChainedModel.Step> void forward(ChainedModel<S> model, double t, RunWeights w)
            throws FormatException {
        S s = model.inputs(t, 0, w);
        model.output(s, 0, s.streams(), w, new CpuBlockMath(128));
    }
}
