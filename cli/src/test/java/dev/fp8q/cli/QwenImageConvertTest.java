package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.manifest.Manifest;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Qwen-Image (issue 22): detection, the two presets, the other components as weight-only storage, pipelines. */
class QwenImageConvertTest {

    private static final Pattern ATTENTION = Pattern.compile(
            "^transformer_blocks\\.\\d+\\.attn\\.(to_q|to_k|to_v|to_out\\.0|add_q_proj|add_k_proj|add_v_proj|to_add_out)\\.weight$");
    private static final Pattern MLP = Pattern.compile("^transformer_blocks\\.\\d+\\.(img|txt)_mlp\\.net\\.(0\\.proj|2)\\.weight$");

    /** The names a plan quantizes. */
    private static TreeSet<String> quantized(String... args) throws Exception {
        List<String> a = new ArrayList<>(List.of("plan", "--json"));
        a.addAll(List.of(args));
        CliRun r = DropInTest.ok(a.toArray(String[]::new));
        TreeSet<String> out = new TreeSet<>();
        for (JsonNode c : new ObjectMapper().readTree(r.out()).get("components")) {
            if (c.has("tensors")) {
                c.get("tensors").forEach(t -> {
                    if (t.get("action").asText().equals("quantize")) {
                        out.add(t.get("name").asText());
                    }
                });
            }
        }
        return out;
    }

    @Test
    void thePresetsQuantizeExactlyTheirLinears(@TempDir Path dir) throws Exception {
        Path t = dir.resolve("qwen.safetensors");
        DropInTest.ok("testdata", "make", "--family", "qwen-image", t.toString());
        assertTrue(DropInTest.ok("inspect", "--summary", t.toString()).out().contains("qwen-image (dim 256, 2 blocks"));
        TreeSet<String> all = new TreeSet<>();
        try (Checkpoint cp = Checkpoint.open(t)) {
            cp.tensors().forEach(x -> all.add(x.name()));
        }
        TreeSet<String> expected = new TreeSet<>(all.stream().filter(n -> ATTENTION.matcher(n).find() || MLP.matcher(n).find()).toList());
        assertEquals(2 * 12, expected.size(), "8 attention and 4 MLP Linears per block");
        assertEquals(expected, quantized(t.toString()), "auto detects qwen-image");
        TreeSet<String> sglang = new TreeSet<>(expected);
        sglang.removeIf(n -> n.contains("img_mlp.net.2"));
        assertEquals(sglang, quantized("--preset", "qwen-image-sglang", t.toString()));
        Path dst = dir.resolve("qwen-fp8.safetensors");
        DropInTest.ok("convert", "--quiet", t.toString(), dst.toString());
        ConvertCommandTest.assertExact(t, dst);
        DropInTest.ok("check", dst.toString());
    }

    @Test
    void aPipelineConvertsItsTransformerAndOnRequestStoresTheOthersWeightOnly(@TempDir Path dir) throws Exception {
        for (boolean edit : List.of(false, true)) {
            Path p = dir.resolve(edit ? "Qwen-Image-Edit" : "Qwen-Image");
            List<String> make = new ArrayList<>(List.of("testdata", "make", "--family", "qwen-image", "--pipeline", p.toString()));
            if (edit) {
                make.add("--edit");
            }
            DropInTest.ok(make.toArray(String[]::new));
            Map<String, byte[]> before = DropInTest.tree(p);
            Path dst = dir.resolve(p.getFileName() + "-fp8");
            CliRun conv = DropInTest.ok("convert", "--quiet", p.toString(), dst.toString());
            // warnings name the user's files, never the temporary folder the output is staged in
            assertTrue(conv.err().contains(p.resolve("transformer").resolve("config.json") + ": diffusers"), conv.err());
            assertFalse(conv.err().contains("fp8q-tmp-"), conv.err());
            List<String> expected = new ArrayList<>(before.keySet());
            expected.add(Manifest.FILE);
            assertEquals(expected.stream().sorted().toList(), List.copyOf(DropInTest.tree(dst).keySet()), "a complete pipeline folder");
            Manifest m = Manifest.read(dst.resolve(Manifest.FILE));
            assertEquals(24, m.totals().quantized(), "the transformer only, by default");
            CliRun v = DropInTest.ok("verify", "--quiet", "--device", "cpu", "--grid", "1,2,2", "--context-tokens", "4",
                    p.toString(), dst.toString());
            assertTrue(v.out().contains("qwen-image") && v.out().contains("PASS"), "the Qwen block reran: " + v.out());

            Path all = dir.resolve(p.getFileName() + "-all");
            DropInTest.ok("convert", "--quiet", "--components", "vae,text_encoder", p.toString(), all.toString());
            Manifest ma = Manifest.read(all.resolve(Manifest.FILE));
            for (Manifest.TensorRecord r : ma.tensors()) {
                boolean other = !r.component().equals("transformer");
                if (other && r.action().equals("quantize")) {
                    assertTrue(r.rule().startsWith("weight-only:storage"), r.name() + ": " + r.rule());
                }
            }
            try (Checkpoint te = Checkpoint.open(all.resolve("text_encoder")); Checkpoint vae = Checkpoint.open(all.resolve("vae"))) {
                for (String n : List.of("model.layers.0.self_attn.k_proj.weight", "model.layers.1.mlp.down_proj.weight",
                        "visual.patch_embed.proj.weight", "visual.blocks.0.attn.qkv.weight", "lm_head.weight")) {
                    assertEquals(DType.F8_E4M3, te.tensor(n).orElseThrow().entry().dtype(), n + ": Linears and Conv3d, any shape");
                }
                for (String n : List.of("model.embed_tokens.weight", "model.norm.weight", "model.layers.0.self_attn.q_proj.bias")) {
                    assertEquals(DType.BF16, te.tensor(n).orElseThrow().entry().dtype(), n + " kept");
                }
                for (String n : List.of("encoder.conv_in.weight", "encoder.mid_block.attentions.0.to_qkv.weight", "decoder.conv_out.weight")) {
                    assertEquals(DType.F8_E4M3, vae.tensor(n).orElseThrow().entry().dtype(), n);
                }
                assertEquals(DType.BF16, vae.tensor("encoder.down_blocks.0.norm1.gamma").orElseThrow().entry().dtype());
            }
            assertEquals(Files.readString(p.resolve("vae/config.json")), Files.readString(all.resolve("vae/config.json")),
                    "diffusers' VAE config is not given a quantization_config it would refuse");
            assertFalse(Files.readString(all.resolve("text_encoder/config.json")).contains("quantization_config"),
                    "the comfy layout's float32 scales: transformers 5 could not run the Qwen2.5-VL from them");
            Path back = dir.resolve(p.getFileName() + "-bf16");
            DropInTest.ok("dequantize", all.toString(), back.toString());
            try (Checkpoint te = Checkpoint.open(back.resolve("text_encoder")); Checkpoint vae = Checkpoint.open(back.resolve("vae"))) {
                assertTrue(te.tensors().stream().allMatch(x -> x.entry().dtype() == DType.BF16), "dequantize restores them");
                assertTrue(vae.tensors().stream().allMatch(x -> x.entry().dtype() == DType.BF16));
                assertFalse(vae.tensor("encoder.conv_in.weight_scale").isPresent());
            }
            if (edit) {
                assertTrue(Files.isRegularFile(all.resolve("processor/preprocessor_config.json")));
            }
        }
    }
}
