package dev.fp8q.converter.layout;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.converter.quant.Scaling;
import dev.fp8q.converter.quant.Scaling.Granularity;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** config.json / hf_quant_config.json fields each loader reads (FineGrainedFP8Config, Fp8Config, ModelOpt, diffusers). */
class LayoutConfigTest {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String WAN = "{\"_class_name\": \"WanTransformer3DModel\", \"_diffusers_version\": \"0.35.0\", \"num_layers\": 2}";
    private static final String LLAMA = "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 256}";

    @TempDir
    Path dir;

    private final List<String> warnings = new ArrayList<>();

    private JsonNode write(Layout layout, Scaling scaling, String source) throws Exception {
        Path src = dir.resolve("src-config.json");
        Files.writeString(src, source);
        Path out = Files.createDirectories(dir.resolve(layout.id() + "-" + scaling.describe()));
        new LayoutConfig(layout, scaling, warnings::add).write(src, out, List.of("proj_out", "lm_head"));
        return JSON.readTree(out.resolve(LayoutConfig.CONFIG).toFile());
    }

    @Test
    void defaultLayoutWritesNoQuantizationConfigIntoADiffusersConfig() throws Exception {
        JsonNode cfg = write(Layout.COMFY, Scaling.PER_TENSOR, WAN);
        assertFalse(cfg.has("quantization_config"), cfg.toString()); // diffusers: "Unknown quantization type"
        assertEquals("WanTransformer3DModel", cfg.get("_class_name").asText());
        assertEquals("compressed-tensors",
                write(Layout.COMFY, Scaling.PER_TENSOR, LLAMA).get("quantization_config").get("quant_method").asText());
    }

    /**
     * A VLM's kept modules are listed by checkpoint name and by a pattern matching transformers 5's nested module
     * names (Python's re.match and Java's regex agree on these patterns); a plain LLM gets the names only.
     */
    @Test
    void aVlmsIgnoreListAlsoMatchesTransformersNestedModuleNames() throws Exception {
        String vlm = "{\"architectures\": [\"Qwen2_5_VLForConditionalGeneration\"], \"text_config\": {}, \"vision_config\": {}}";
        Path src = dir.resolve("vlm-config.json");
        Files.writeString(src, vlm);
        Path out = Files.createDirectories(dir.resolve("vlm"));
        List<String> kept = List.of("visual.blocks.0.attn.qkv", "model.layers.1.mlp.down_proj", "lm_head");
        new LayoutConfig(Layout.COMPRESSED_TENSORS, Scaling.PER_TENSOR, warnings::add).write(src, out, kept);
        List<String> ignore = strings(JSON.readTree(out.resolve(LayoutConfig.CONFIG).toFile()).get("quantization_config").get("ignore"));
        assertEquals(kept, ignore.subList(0, 3), "the checkpoint names first, as vLLM maps them");
        List<java.util.regex.Pattern> patterns = ignore.stream().filter(e -> e.startsWith("re:"))
                .map(e -> java.util.regex.Pattern.compile(e.substring(3))).toList();
        assertEquals(2, patterns.size(), ignore.toString());
        for (String module : List.of("model.visual.blocks.0.attn.qkv", "visual.blocks.0.attn.qkv",
                "model.language_model.layers.1.mlp.down_proj", "model.layers.1.mlp.down_proj")) {
            assertTrue(patterns.stream().anyMatch(p -> p.matcher(module).lookingAt()), module);
        }
        for (String other : List.of("model.visual.blocks.0.attn.qkv_x", "model.language_model.layers.11.mlp.down_proj",
                "model.visual.blocks.10.attn.qkv", "model.language_model.layers.1.mlp.up_proj")) {
            assertFalse(patterns.stream().anyMatch(p -> p.matcher(other).lookingAt()), other);
        }
        assertTrue(warnings.stream().anyMatch(w -> w.contains("--scale-dtype bf16")), warnings.toString());
        warnings.clear();
        assertEquals(List.of("proj_out", "lm_head"),
                strings(write(Layout.COMPRESSED_TENSORS, Scaling.PER_TENSOR, LLAMA).get("quantization_config").get("ignore")));
        new LayoutConfig(Layout.COMPRESSED_TENSORS, Scaling.PER_TENSOR.withBf16Scales(true), warnings::add).write(src, out, kept);
        assertEquals(List.of(), warnings, "a plain LLM, and a VLM with BF16 scales, get no dtype warning");
        new LayoutConfig(Layout.COMFY, Scaling.PER_TENSOR, warnings::add).write(src, out, kept);
        assertFalse(JSON.readTree(out.resolve(LayoutConfig.CONFIG).toFile()).has("quantization_config"),
                "comfy's float32 scales: transformers 5 could not run the VLM from them, so no config for it");
        assertTrue(warnings.stream().anyMatch(w -> w.contains("--layout compressed-tensors --scale-dtype bf16")), warnings.toString());
    }

    @Test
    void hfFp8PerTensorSaysWeightBlockSizeNull() throws Exception {
        JsonNode qc = write(Layout.HF_FP8, Scaling.PER_TENSOR, LLAMA).get("quantization_config");
        assertEquals("fp8", qc.get("quant_method").asText());
        assertTrue(qc.has("weight_block_size") && qc.get("weight_block_size").isNull(), qc.toString());
        assertEquals(List.of("proj_out", "lm_head"), strings(qc.get("modules_to_not_convert")));
        assertEquals(List.of("proj_out", "lm_head"), strings(qc.get("ignored_layers")));
        JsonNode block = write(Layout.HF_FP8, new Scaling(Granularity.BLOCK, false), LLAMA).get("quantization_config");
        assertEquals("[128,128]", block.get("weight_block_size").toString());
    }

    @Test
    void vllmFp8UsesIgnoredLayersOnly() throws Exception {
        JsonNode qc = write(Layout.VLLM_FP8, Scaling.PER_TENSOR, LLAMA).get("quantization_config");
        assertEquals("fp8", qc.get("quant_method").asText());
        assertTrue(qc.get("weight_block_size").isNull());
        assertFalse(qc.has("modules_to_not_convert"));
        assertEquals(List.of("proj_out", "lm_head"), strings(qc.get("ignored_layers")));
    }

    @Test
    void modeloptWritesVllmsQuantAlgoAndIgnore() throws Exception {
        Scaling channel = new Scaling(Granularity.CHANNEL, false);
        JsonNode qc = write(Layout.MODELOPT, channel, LLAMA).get("quantization_config");
        assertEquals("modelopt", qc.get("quant_method").asText());
        assertEquals("FP8_PER_CHANNEL_PER_TOKEN", qc.get("quant_algo").asText());
        assertEquals(List.of("proj_out", "lm_head"), strings(qc.get("ignore"))); // vLLM reads "ignore" in config.json
        assertFalse(qc.has("quant_type"));
        JsonNode hq = JSON.readTree(dir.resolve("modelopt-channel").resolve(LayoutConfig.MODELOPT_CONFIG).toFile());
        assertEquals("FP8_PER_CHANNEL_PER_TOKEN", hq.get("quantization").get("quant_algo").asText());
        assertEquals(List.of("proj_out", "lm_head"), strings(hq.get("quantization").get("exclude_modules")));
        assertEquals("FP8_PB_WO", write(Layout.MODELOPT, new Scaling(Granularity.BLOCK, false), LLAMA)
                .get("quantization_config").get("quant_algo").asText());
    }

    @Test
    void modeloptOnADiffusersModelCarriesDiffusersQuantType() throws Exception {
        JsonNode qc = write(Layout.MODELOPT, new Scaling(Granularity.CHANNEL, false), WAN).get("quantization_config");
        assertEquals("FP8", qc.get("quant_type").asText()); // NVIDIAModelOptConfig's required argument
        assertEquals(List.of("proj_out", "lm_head"), strings(qc.get("modules_to_not_convert")));
        assertEquals("modelopt", qc.get("quant_method").asText());
    }

    @Test
    void otherLayoutsOnADiffusersModelWarnThatDiffusersRefusesThem() throws Exception {
        write(Layout.COMPRESSED_TENSORS, Scaling.PER_TENSOR, WAN);
        assertEquals(1, warnings.size());
        assertTrue(warnings.getFirst().contains("diffusers"), warnings.toString());
        write(Layout.COMFY, Scaling.PER_TENSOR, WAN);
        assertEquals(2, warnings.size(), warnings.toString());
        assertTrue(warnings.get(1).contains("no reader for scaled FP8") && warnings.get(1).contains("ComfyUI"),
                "the default layout is not refused, but diffusers would read its codes without their scales: " + warnings);
    }

    private static List<String> strings(JsonNode array) {
        List<String> out = new ArrayList<>();
        array.forEach(n -> out.add(n.asText()));
        return out;
    }
}
