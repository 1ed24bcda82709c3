package dev.fp8q.converter.layout;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fp8q.converter.quant.Scaling;
import dev.fp8q.converter.quant.Scaling.Granularity;
import dev.fp8q.formats.manifest.Manifest;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;

/**
 * The config files of a layout (FORMATS.md section 2): config.json's quantization_config (compressed-tensors
 * for comfy and compressed-tensors, "fp8" for hf-fp8 and vllm-fp8, "modelopt"), hf_quant_config.json for
 * modelopt. Layouts whose runtimes read the scheme only from config.json get one even when the source has none.
 * A diffusers config (it has "_diffusers_version" or "_class_name") gets no compressed-tensors config from comfy:
 * diffusers refuses every quant_method it has no quantizer for. Nor does comfy with MX scaling (its swizzled scales
 * are not what compressed-tensors reads) or on a multimodal transformers model (transformers 5 runs those from BF16
 * scales only, and ComfyUI takes float32 ones).
 */
public final class LayoutConfig {

    public static final String CONFIG = "config.json";
    public static final String MODELOPT_CONFIG = "hf_quant_config.json";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final Layout layout;
    private final Scaling scaling;
    private final Consumer<String> warn;
    /** Static per-tensor activations from the checkpoint's input scales (calibrated), else dynamic. */
    private final boolean staticActivations;

    public LayoutConfig(Layout layout, Scaling scaling, Consumer<String> warn) {
        this(layout, scaling, warn, false);
    }

    public LayoutConfig(Layout layout, Scaling scaling, Consumer<String> warn, boolean staticActivations) {
        this.layout = layout;
        this.scaling = scaling;
        this.warn = warn;
        this.staticActivations = staticActivations;
    }

    /**
     * Writes the component's configs into out. source is its config.json or null; ignore names the
     * preserved Linear layers (module names, without ".weight").
     */
    public void write(Path source, Path out, List<String> ignore) throws IOException {
        ObjectNode cfg = null;
        if (source != null) {
            try {
                cfg = JSON.readTree(source.toFile()) instanceof ObjectNode o ? o : null;
            } catch (com.fasterxml.jackson.core.JacksonException e) {
                cfg = null;
            }
            if (cfg == null) {
                warn.accept(source + " is not a JSON object: copied unchanged");
                Files.copy(source, out.resolve(CONFIG));
            }
        }
        if (layout == Layout.MODELOPT) {
            JSON.writeValue(out.resolve(MODELOPT_CONFIG).toFile(), modeloptExport(ignore));
        }
        if (source != null && cfg == null) {
            return;
        }
        boolean required = layout == Layout.COMPRESSED_TENSORS || layout == Layout.HF_FP8 || layout == Layout.VLLM_FP8;
        if (cfg == null && !required) {
            return;
        }
        if (cfg == null) {
            cfg = JSON.createObjectNode();
            warn.accept("the source has no config.json: wrote one holding only quantization_config, which "
                    + layout.id() + " runtimes read; merge it into the model's config");
        }
        boolean diffusers = isDiffusers(cfg);
        if (diffusers && (layout == Layout.COMPRESSED_TENSORS || layout == Layout.HF_FP8 || layout == Layout.VLLM_FP8)) {
            warn.accept(source + ": diffusers' from_pretrained refuses a " + layout.id()
                    + " quantization_config (no diffusers quantizer reads it); this folder is for " + layout.id() + " runtimes");
        }
        List<String> ctIgnore = composite(cfg) ? withNestedModuleNames(ignore) : ignore;
        if (layout == Layout.COMPRESSED_TENSORS && composite(cfg) && !scaling.mx() && !scaling.bf16Scales()) {
            warn.accept(source + ": transformers 5 loads this multimodal model's FP8 Linears from float32 scales as "
                    + "float32 weights, and its bfloat16 forward then stops (dtype mismatch); with --scale-dtype bf16 it "
                    + "loads and runs (a tiny Qwen2.5-VL, bench/interop). vLLM reads either");
        }
        switch (layout) {
            case COMFY -> {
                if (!diffusers && (scaling.mx() || composite(cfg))) { // both seen with transformers (bench/interop)
                    warn.accept(source + ": " + (scaling.mx()
                            ? "transformers' compressed-tensors reader takes MX scales as U8 [out, in/32], and ComfyUI's "
                                    + "mxfp8 stores them swizzled as F8_E8M0 (loading failed on them)"
                            : "transformers 5 runs this multimodal model's FP8 Linears only from BF16 scales, and ComfyUI "
                                    + "takes float32 ones")
                            + ": config.json gets no quantization_config; this component is for ComfyUI (use --layout "
                            + "compressed-tensors" + (scaling.mx() ? "" : " --scale-dtype bf16") + " for transformers)");
                } else if (!diffusers) {
                    cfg.set("quantization_config", compressedTensors(ctIgnore));
                } else {
                    warn.accept(source + ": diffusers' from_pretrained has no reader for scaled FP8 weights "
                            + "without a quantization_config (it would take the codes without their scales); this "
                            + "component is for ComfyUI and runtimes that read weight_scale (use --layout modelopt for "
                            + "vLLM-Omni / SGLang)");
                }
            }
            case COMPRESSED_TENSORS -> cfg.set("quantization_config", compressedTensors(ctIgnore));
            case HF_FP8, VLLM_FP8 -> cfg.set("quantization_config", fp8(ignore));
            case MODELOPT -> cfg.set("quantization_config", modeloptFlat(ignore, diffusers));
            case COMFY_LEGACY -> { } // ComfyUI reads the marker tensor; the config is copied as it was
        }
        JSON.writeValue(out.resolve(CONFIG).toFile(), cfg);
    }

    private ObjectNode compressedTensors(List<String> ignore) {
        ObjectNode qc = JSON.createObjectNode();
        qc.put("quant_method", "compressed-tensors");
        qc.put("format", scaling.mx() ? "mxfp8-quantized" : "float-quantized");
        qc.put("quantization_status", "compressed");
        ObjectNode g = qc.putObject("config_groups").putObject("group_0");
        g.putArray("targets").add("Linear");
        ObjectNode w = g.putObject("weights");
        ObjectNode a = g.putObject("input_activations");
        if (scaling.mx()) { // compressed-tensors' MXFP8 preset scheme (quant_scheme.py): group 32, uint8 E8M0 scales
            for (ObjectNode args : List.of(w, a)) {
                args.put("num_bits", 8).put("type", "float").put("symmetric", true).put("strategy", "group")
                        .put("group_size", Scaling.MX_BLOCK).put("dynamic", args == a)
                        .put("scale_dtype", "torch.uint8").put("zp_dtype", "torch.uint8");
            }
            names(qc.putArray("ignore"), ignore);
            return qc;
        }
        w.put("num_bits", 8).put("type", "float").put("symmetric", true)
                .put("strategy", scaling.granularity().name().toLowerCase(Locale.ROOT)).put("dynamic", false);
        a.put("num_bits", 8).put("type", "float").put("symmetric", true);
        if (scaling.granularity() == Granularity.BLOCK) {
            w.putArray("block_structure").add(Scaling.BLOCK).add(Scaling.BLOCK);
            a.put("strategy", "group").put("group_size", Scaling.BLOCK); // llm-compressor's FP8_BLOCK scheme
        } else {
            a.put("strategy", staticActivations ? "tensor" : "token"); // static: llm-compressor's FP8 (static_minmax)
        }
        a.put("dynamic", !staticActivations);
        names(qc.putArray("ignore"), ignore);
        return qc;
    }

    /** True for a diffusers model config (diffusers writes both keys; either is enough). */
    static boolean isDiffusers(ObjectNode cfg) {
        return cfg != null && (cfg.has("_diffusers_version") || cfg.has("_class_name"));
    }

    /**
     * The "fp8" config of transformers (FineGrainedFP8Config) and vLLM (Fp8Config): weight_block_size null means
     * per-tensor to both (transformers assumes [128, 128] when the key is absent); transformers reads the skip list
     * as modules_to_not_convert, vLLM as ignored_layers.
     */
    private ObjectNode fp8(List<String> ignore) {
        ObjectNode qc = JSON.createObjectNode();
        qc.put("quant_method", "fp8");
        qc.put("activation_scheme", staticActivations ? "static" : "dynamic");
        if (scaling.granularity() == Granularity.BLOCK) {
            qc.putArray("weight_block_size").add(Scaling.BLOCK).add(Scaling.BLOCK);
        } else {
            qc.putNull("weight_block_size");
        }
        if (layout == Layout.HF_FP8) {
            names(qc.putArray("modules_to_not_convert"), ignore);
        }
        names(qc.putArray("ignored_layers"), ignore);
        return qc;
    }

    /** ModelOpt's quant_algo for the scaling (Layout.refusal turns per-tensor away). */
    String quantAlgo() {
        return switch (scaling.granularity()) {
            case TENSOR -> "FP8"; // per-tensor weights with static input_scale (Layout.refusal lets it through only calibrated)
            case MX -> "MXFP8";
            case BLOCK -> "FP8_PB_WO";
            default -> "FP8_PER_CHANNEL_PER_TOKEN";
        };
    }

    /** hf_quant_config.json as ModelOpt's export writes it (vLLM reads it when config.json has no quantization_config). */
    private ObjectNode modeloptExport(List<String> ignore) {
        ObjectNode root = JSON.createObjectNode();
        root.putObject("producer").put("name", "modelopt").put("version", "fp8q-" + Manifest.TOOL_VERSION);
        ObjectNode q = root.putObject("quantization");
        q.put("quant_algo", quantAlgo());
        if (scaling.mx()) {
            q.put("group_size", Scaling.MX_BLOCK); // quant_utils.py writes it beside MXFP8
        }
        q.putNull("kv_cache_quant_algo");
        names(q.putArray("exclude_modules"), ignore);
        return root;
    }

    /**
     * config.json's quantization_config as ModelOpt's convert_hf_quant_config_format writes it (vLLM reads "ignore"
     * there, not "exclude_modules"). diffusers parses it into NVIDIAModelOptConfig, which needs quant_type.
     */
    private ObjectNode modeloptFlat(List<String> ignore, boolean diffusers) {
        ObjectNode qc = JSON.createObjectNode();
        qc.put("quant_method", "modelopt");
        qc.put("quant_algo", quantAlgo());
        if (scaling.mx()) {
            qc.put("group_size", Scaling.MX_BLOCK);
        }
        names(qc.putArray("ignore"), ignore);
        qc.putObject("producer").put("name", "modelopt").put("version", "fp8q-" + Manifest.TOOL_VERSION);
        if (diffusers) {
            qc.put("quant_type", "FP8");
            names(qc.putArray("modules_to_not_convert"), ignore);
        }
        return qc;
    }

    /** A transformers config of several models (a VLM: text_config or vision_config beside each other). */
    private static boolean composite(ObjectNode cfg) {
        return cfg.has("text_config") || cfg.has("vision_config");
    }

    /**
     * The kept modules by their checkpoint names and, for each dotted one, a pattern that also matches the name
     * transformers 5 gives the module in memory: a VLM's checkpoint says model.layers.N / visual.blocks.N where
     * the model has model.language_model.layers.N / model.visual.blocks.N (its checkpoint conversion mapping), and
     * compressed-tensors matches "ignore" against those names, exactly or by "re:" pattern. With checkpoint names
     * alone it took kept vision Linears for FP8 ones and initialized their missing weight_scale at random
     * (transformers 5.18 + compressed-tensors, a tiny Qwen2.5-VL in bench/interop). vLLM maps the plain names.
     */
    private static List<String> withNestedModuleNames(List<String> ignore) {
        List<String> out = new java.util.ArrayList<>(ignore);
        for (String name : ignore) {
            String rest = name.startsWith("model.") ? name.substring("model.".length()) : name;
            if (rest.contains(".")) {
                out.add("re:^(model\\.)?(language_model\\.)?" + rest.replaceAll("([^A-Za-z0-9_])", "\\\\$1") + "$");
            }
        }
        return out;
    }

    private static void names(ArrayNode array, List<String> names) {
        names.forEach(array::add);
    }
}
