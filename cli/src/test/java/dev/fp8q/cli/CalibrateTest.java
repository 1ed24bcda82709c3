package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.converter.calibrate.InputScales;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.testdata.WanCheckpoints;
import dev.fp8q.verifier.Verifier;
import dev.fp8q.verifier.VerifyReport;
import dev.fp8q.verifier.check.Bounds;
import dev.fp8q.verifier.run.LinearsOver;
import dev.fp8q.verifier.run.ReferenceWeights;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.wan.WanModel;
import dev.fp8q.verifier.wan.WanNaming;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Static input scales: every input_scale equals the max |x| over the recorded inputs / 448, the inputs recorded here
 * by an independent wrapper over the same chained forward; q/k/v equal; compressed-tensors' tensors and config;
 * calibrate on an existing output changes only input scales, config and manifest; a too-small scale fails verify.
 */
class CalibrateTest {

    private static final String[] INPUTS = {"--grid", "2,4,4", "--context-tokens", "16", "--timesteps", "300,700",
            "--samples", "2", "--quiet"};

    @Test
    void inputScalesAreTheRecordedAmaxOver448AndOnlyScalesConfigAndManifestChange(@TempDir Path dir) throws Exception {
        Path srcDir = Files.createDirectories(dir.resolve("src"));
        Path src = WanCheckpoints.extractEmbedded(srcDir.resolve("diffusion_pytorch_model.safetensors"));
        Files.writeString(srcDir.resolve("config.json"), "{\"dim\": 128}");
        Path plain = dir.resolve("plain");
        assertEquals(0, CliRun.of("convert", srcDir.toString(), plain.toString(), "--layout", "compressed-tensors", "--quiet").code());
        Map<String, byte[]> before = bytes(plain.resolve("diffusion_pytorch_model.safetensors"));
        String[] args = concat(new String[] {"calibrate", srcDir.toString(), plain.toString()}, INPUTS);
        CliRun r = CliRun.of(args);
        assertEquals(0, r.code(), r.err());

        Map<String, Double> amax = recordAmax(src, List.of(300.0, 700.0), 2);
        Map<String, byte[]> after = bytes(plain.resolve("diffusion_pytorch_model.safetensors"));
        try (Checkpoint c = Checkpoint.open(plain.resolve("diffusion_pytorch_model.safetensors"))) {
            for (String layer : amax.keySet()) {
                var t = c.tensor(layer + ".input_scale").orElseThrow();
                assertEquals(DType.F32, t.entry().dtype());
                assertArrayEquals(new long[] {1}, t.entry().shape());
            }
            for (int b = 0; b < 2; b++) {
                String p = "blocks." + b + ".";
                float q = scale(c, p + "self_attn.q");
                assertEquals(q, scale(c, p + "self_attn.k"));
                assertEquals(q, scale(c, p + "self_attn.v"));
                float want = (float) Math.max(amax.get(p + "self_attn.q"), Math.max(amax.get(p + "self_attn.k"), amax.get(p + "self_attn.v")));
                assertEquals(want / 448f, q, 0f, "q/k/v share the max of their amax");
                assertEquals(scale(c, p + "cross_attn.k"), scale(c, p + "cross_attn.v"));
                for (String alone : List.of("self_attn.o", "cross_attn.q", "cross_attn.o", "ffn.0", "ffn.2")) {
                    assertEquals((float) (double) amax.get(p + alone) / 448f, scale(c, p + alone), 0f, p + alone);
                }
            }
        }
        for (Map.Entry<String, byte[]> e : before.entrySet()) {
            assertArrayEquals(e.getValue(), after.get(e.getKey()), e.getKey() + " changed");
        }
        assertEquals(before.size() + amax.size(), after.size());
        JsonNode cfg = new ObjectMapper().readTree(plain.resolve("config.json").toFile()).path("quantization_config");
        JsonNode act = cfg.path("config_groups").path("group_0").path("input_activations");
        assertEquals("tensor", act.path("strategy").asText());
        assertFalse(act.path("dynamic").asBoolean(true));
        assertEquals("float-quantized", cfg.path("format").asText());
        assertEquals(0, CliRun.of("check", plain.toString()).code());
        Manifest m = Manifest.read(plain.resolve(Manifest.FILE));
        assertTrue(m.settings().get("calibration") instanceof Map<?, ?> cal && "max".equals(cal.get("method")));

        var opts = new Verifier.Options(List.of(0), new int[] {2, 4, 4}, 16, 1, null, Verifier.WeightScope.NONE,
                Bounds.defaults(), 32, 64, s -> { }, Verifier.Device.CPU);
        VerifyReport ok = Verifier.verify(srcDir, plain, opts);
        assertTrue(ok.summary().passed(), () -> ok.failures().toString());
        assertTrue(ok.checks().stream().anyMatch(c -> "w8a8_static".equals(c.run()) && c.clipped() != null), () -> ok.checks().stream().map(c -> c.name() + " " + c.clipped()).toList().toString());

        // a deliberately too-small input_scale clips: verify fails on the static run
        Map<String, Float> small = new LinkedHashMap<>();
        amax.forEach((l, a) -> small.put(l, (float) (a / 448 / 16)));
        InputScales.apply(plain, plain, m, Map.of(m.components().getFirst().name(), small), Map.of("method", "test"), s -> { });
        VerifyReport bad = Verifier.verify(srcDir, plain, opts);
        assertFalse(bad.summary().passed());
        assertTrue(bad.failures().stream().allMatch(c -> "w8a8_static".equals(c.run())), () -> bad.failures().toString());
        assertTrue(bad.checks().stream().anyMatch(c -> c.clipped() != null && c.clipped() > 0.01));
    }

    private static float scale(Checkpoint c, String layer) {
        return c.tensor(layer + ".input_scale").orElseThrow().data().get(Elements.FLOAT, 0);
    }

    /** Each FP8 Linear's max |x| over the chained forward, recorded by a wrapper of this test's own, in double. */
    static Map<String, Double> recordAmax(Path src, List<Double> timesteps, int samples) throws Exception {
        Map<String, Double> amax = new HashMap<>();
        try (Checkpoint c = Checkpoint.open(src)) {
            WanNaming n = WanNaming.detect(c).orElseThrow();
            ReferenceWeights ref = new ReferenceWeights(c);
            RunWeights rec = new LinearsOver() {
                public RunWeights reference() {
                    return ref;
                }

                public float[] linear(String base, float[] x, int rows) throws dev.fp8q.formats.FormatException {
                    if (base.startsWith("blocks.")) {
                        double m = 0;
                        for (float v : x) {
                            m = Math.max(m, Math.abs((double) v));
                        }
                        amax.merge(base, m, Math::max);
                    }
                    return ref.linear(base, x, rows);
                }
            };
            int dim = ref.tensor(n.weight(WanNaming.Param.MODULATION, 0)).length / 6;
            WanModel model = new WanModel(n, dim, 2, 128, new int[] {2, 4, 4}, 16,
                    dev.fp8q.verifier.model.CapturedInputs.NONE, ref);
            for (double t : timesteps) {
                for (int s = 0; s < samples; s++) {
                    WanModel.Step step = model.inputs(t, s, rec);
                    model.output(step, 0, step.streams(), rec, new dev.fp8q.verifier.wan.CpuBlockMath(128));
                }
            }
        }
        return amax;
    }

    private static Map<String, byte[]> bytes(Path file) throws Exception {
        Map<String, byte[]> out = new HashMap<>();
        try (Checkpoint c = Checkpoint.open(file)) {
            for (Checkpoint.Tensor t : c.tensors()) {
                out.put(t.name(), t.data().toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
            }
        }
        return out;
    }

    private static String[] concat(String[] a, String[] b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
