package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.formats.safetensors.SafetensorsFile;
import dev.fp8q.formats.testing.PythonReference;
import dev.fp8q.testdata.WanCheckpoints;
import dev.fp8q.verifier.Verifier;
import dev.fp8q.verifier.VerifyReport;
import dev.fp8q.verifier.check.Bounds;
import dev.fp8q.verifier.weights.ActivationQuantizer.Scheme;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Each layout's calibrated files and configs as its loader reads them (docs/INTEROP.md "Static input scales"): tensor
 * names, dtypes and shapes, config keys; the reference Python safetensors library reads every input scale; the
 * activation scheme verify names for each layout, calibrated or not; the layouts that cannot carry static scales refused.
 */
class CalibrateLayoutsTest {

    private static final String[] CAL = {"--calibrate", "--grid", "2,4,4", "--context-tokens", "16", "--timesteps", "500",
            "--samples", "1", "--quiet"};
    private static final String FILE = "diffusion_pytorch_model.safetensors";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** What a loader expects of one layout: the names beside a Linear, the scale shapes, the declared scheme. */
    record Expect(String layout, String weightScale, String inputScale, long[] scaleShape, String declared) {}

    private static final List<Expect> LAYOUTS = List.of(
            new Expect("comfy", "weight_scale", "input_scale", new long[0], "ComfyUI quantizes with the layer's input_scale"),
            new Expect("compressed-tensors", "weight_scale", "input_scale", new long[] {1},
                    "config.json compressed-tensors: static tensor activations"),
            new Expect("modelopt", "weight_scale", "input_scale", new long[0], "config.json modelopt FP8: static input_scale"),
            new Expect("hf-fp8", "weight_scale_inv", "activation_scale", new long[0], "config.json fp8: activation_scheme static"),
            new Expect("vllm-fp8", "weight_scale", "input_scale", new long[0], "config.json fp8: activation_scheme static"));

    static Path source(Path dir) throws Exception {
        Path srcDir = Files.createDirectories(dir.resolve("src"));
        WanCheckpoints.extractEmbedded(srcDir.resolve(FILE));
        Files.writeString(srcDir.resolve("config.json"), "{\"dim\": 128}");
        return srcDir;
    }

    @Test
    void calibratedLayoutsHoldWhatTheirLoadersRead(@TempDir Path dir) throws Exception {
        Path srcDir = source(dir);
        List<String> files = new ArrayList<>();
        List<String> expected = new ArrayList<>();
        for (Expect e : LAYOUTS) {
            Path dst = dir.resolve(e.layout());
            List<String> args = new ArrayList<>(List.of("convert", srcDir.toString(), dst.toString(), "--layout", e.layout()));
            args.addAll(List.of(CAL));
            CliRun r = CliRun.of(args.toArray(String[]::new));
            assertEquals(0, r.code(), e.layout() + ": " + r.err());
            Map<?, ?> cal = (Map<?, ?>) ((Map<?, ?>) ((Map<?, ?>) Manifest.read(dst.resolve(Manifest.FILE)).settings()
                    .get("calibration")).get("layers")).values().iterator().next();
            assertEquals(20, cal.size(), e.layout());
            try (Checkpoint c = Checkpoint.open(dst.resolve(FILE))) {
                for (Object l : cal.keySet()) {
                    String layer = (String) l;
                    var w = c.tensor(layer + ".weight").orElseThrow();
                    assertEquals(DType.F8_E4M3, w.entry().dtype(), layer);
                    var ws = c.tensor(layer + "." + e.weightScale()).orElseThrow(() -> new AssertionError(e + " " + layer));
                    assertEquals(DType.F32, ws.entry().dtype());
                    assertArrayEquals(e.scaleShape(), ws.entry().shape(), e.layout() + " weight scale");
                    var is = c.tensor(layer + "." + e.inputScale()).orElseThrow(() -> new AssertionError(e + " " + layer));
                    assertEquals(DType.F32, is.entry().dtype());
                    assertArrayEquals(e.scaleShape(), is.entry().shape(), e.layout() + " input scale");
                    float want = ((Number) ((Map<?, ?>) cal.get(layer)).get("input_scale")).floatValue();
                    assertEquals(want, is.data().get(Elements.FLOAT, 0), 0f, layer);
                    expected.add(dst.resolve(FILE) + "|" + layer + "." + e.inputScale() + "|" + Float.toString(want));
                    if (!e.inputScale().equals("input_scale")) {
                        assertTrue(c.tensor(layer + ".input_scale").isEmpty(), "transformers reads activation_scale only");
                    }
                }
            }
            config(e, dst);
            files.add(dst.resolve(FILE).toString());

            var opts = new Verifier.Options(List.of(0), new int[] {2, 4, 4}, 16, 0, null, Verifier.WeightScope.NONE,
                    Bounds.defaults(), 32, 64, s -> { }, Verifier.Device.CPU);
            VerifyReport v = Verifier.verify(srcDir, dst, opts);
            assertTrue(v.summary().passed(), () -> e.layout() + ": " + v.failures());
            List<String> notes = v.components().getFirst().notes();
            assertTrue(notes.stream().anyMatch(n -> n.startsWith("w8a8_static (w8a8 beside it: dynamic tensor): "
                    + "activations static (" + e.declared() + ")")), e.layout() + ": " + notes);
            assertEquals(10, v.checks().stream().filter(ch -> ch.scope().equals("linear") && "w8a8_static".equals(ch.run()))
                    .count(), e.layout() + ": every FP8 Linear of block 0 probed with its input_scale");
        }
        String py = PythonReference.run("""
                import sys
                from safetensors import safe_open
                for path in sys.argv[1:]:
                    with safe_open(path, 'np') as f:
                        for k in f.keys():
                            if k.endswith('.input_scale') or k.endswith('.activation_scale'):
                                a = f.get_tensor(k)
                                print(path + '|' + k + '|' + str(a.dtype) + '|' + str(list(a.shape)) + '|' + repr(float(a.reshape(-1)[0])))
                """, files.toArray(String[]::new));
        List<String> lines = py.lines().toList();
        assertEquals(expected.size(), lines.size(), py);
        for (String line : lines) {
            String[] f = line.split("\\|");
            assertEquals("float32", f[2], line);
            assertEquals(f[0].contains("compressed-tensors") ? "[1]" : "[]", f[3], line);
            String key = f[0] + "|" + f[1] + "|";
            String want = expected.stream().filter(x -> x.startsWith(key)).findFirst().orElseThrow(() -> new AssertionError(line));
            assertEquals(Float.parseFloat(want.substring(key.length())), (float) Double.parseDouble(f[4]), 0f, line);
        }
    }

    private static void config(Expect e, Path dst) throws Exception {
        JsonNode qc = JSON.readTree(dst.resolve("config.json").toFile()).path("quantization_config");
        assertEquals(128, JSON.readTree(dst.resolve("config.json").toFile()).path("dim").asInt(), "the model config is kept");
        switch (e.layout()) {
            case "comfy", "compressed-tensors" -> {
                assertEquals("compressed-tensors", qc.path("quant_method").asText());
                JsonNode act = qc.path("config_groups").path("group_0").path("input_activations");
                assertEquals("tensor", act.path("strategy").asText());
                assertFalse(act.path("dynamic").asBoolean(true));
                if (e.layout().equals("comfy")) {
                    try (SafetensorsFile f = SafetensorsFile.open(dst.resolve(FILE))) {
                        JsonNode meta = JSON.readTree(f.metadata().get("_quantization_metadata"));
                        assertEquals(20, meta.path("layers").size());
                        assertEquals("float8_e4m3fn", meta.path("layers").path("blocks.0.ffn.0").path("format").asText());
                    }
                }
            }
            case "modelopt" -> {
                assertEquals("modelopt", qc.path("quant_method").asText());
                assertEquals("FP8", qc.path("quant_algo").asText());
                assertTrue(qc.path("ignore").isArray());
                JsonNode hf = JSON.readTree(dst.resolve("hf_quant_config.json").toFile()).path("quantization");
                assertEquals("FP8", hf.path("quant_algo").asText());
                assertTrue(hf.has("kv_cache_quant_algo") && hf.path("kv_cache_quant_algo").isNull());
                assertTrue(hf.path("exclude_modules").isArray());
            }
            default -> { // hf-fp8, vllm-fp8: transformers' and vLLM's "fp8" config
                assertEquals("fp8", qc.path("quant_method").asText());
                assertEquals("static", qc.path("activation_scheme").asText());
                assertTrue(qc.has("weight_block_size") && qc.path("weight_block_size").isNull(), "per tensor");
                assertTrue(qc.path("ignored_layers").isArray());
                assertEquals(e.layout().equals("hf-fp8"), qc.has("modules_to_not_convert"));
            }
        }
    }

    @Test
    void verifyNamesTheSchemeEachUncalibratedLayoutDeclaresAndActSchemeOverridesIt(@TempDir Path dir) throws Exception {
        Path srcDir = source(dir);
        record Case(String layout, String scaling, Scheme scheme, String why) {}
        List<Case> cases = List.of(
                new Case("comfy", "tensor", Scheme.TENSOR, "ComfyUI quantizes each input with one dynamic per-tensor scale"),
                new Case("compressed-tensors", "channel", Scheme.TOKEN, "config.json compressed-tensors: dynamic per-token activations"),
                new Case("modelopt", "channel", Scheme.TOKEN, "config.json modelopt FP8_PER_CHANNEL_PER_TOKEN"),
                new Case("compressed-tensors", "block", Scheme.GROUP128, "config.json compressed-tensors: dynamic groups of 128"),
                new Case("vllm-fp8", "block", Scheme.GROUP128, "config.json fp8 block: dynamic 1x128 activation groups"),
                new Case("modelopt", "block", Scheme.GROUP128, "config.json modelopt FP8_PB_WO: groups of 128"));
        var opts = new Verifier.Options(List.of(0), new int[] {2, 4, 4}, 16, 0, null, Verifier.WeightScope.NONE,
                Bounds.defaults(), 32, 64, s -> { }, Verifier.Device.CPU);
        for (Case k : cases) {
            Path dst = dir.resolve(k.layout() + "-" + k.scaling());
            CliRun r = CliRun.of("convert", srcDir.toString(), dst.toString(), "--layout", k.layout(), "--scaling",
                    k.scaling(), "--quiet");
            assertEquals(0, r.code(), k + ": " + r.err());
            List<String> notes = Verifier.verify(srcDir, dst, opts).components().getFirst().notes();
            assertTrue(notes.contains("w8a8: activations " + k.scheme().id() + " (" + k.why() + ")"), k + ": " + notes);
            Scheme other = k.scheme() == Scheme.TENSOR ? Scheme.TOKEN : Scheme.TENSOR;
            VerifyReport o = Verifier.verify(srcDir, dst, opts.withActScheme(other));
            assertTrue(o.components().getFirst().notes().contains("w8a8: activations " + other.id()
                    + " (--act-scheme; the checkpoint declares " + k.scheme().id() + ": " + k.why() + ")"), k.toString());
        }
    }

    @Test
    void layoutsThatCannotCarryStaticScalesAreRefusedWithTheReason(@TempDir Path dir) throws Exception {
        Path srcDir = source(dir);
        for (String[] k : List.of(new String[] {"comfy-legacy", "tensor", "legacy"}, new String[] {"vllm-fp8", "block",
                "per-tensor only"}, new String[] {"modelopt", "channel", "FP8_PER_CHANNEL_PER_TOKEN"},
                new String[] {"compressed-tensors", "block", "dynamic group activations only"})) {
            Path dst = dir.resolve("out-" + k[0] + "-" + k[1]);
            List<String> args = new ArrayList<>(List.of("convert", srcDir.toString(), dst.toString(), "--layout", k[0],
                    "--scaling", k[1]));
            args.addAll(List.of(CAL));
            CliRun r = CliRun.of(args.toArray(String[]::new));
            assertEquals(2, r.code(), String.join(" ", k) + ": " + r.err());
            assertEquals(1, r.err().strip().lines().count(), r.err());
            assertTrue(r.err().contains(k[2]), r.err());
            assertFalse(Files.exists(dst), "nothing written for " + String.join(" ", k));
        }
        try (var left = Files.list(dir)) {
            assertEquals(List.of(srcDir), left.toList(), "no staging folder left behind");
        }
    }
}
