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
 * for comfy and compressed-tensors, "fp8" for hf-fp8, "modelopt"), hf_quant_config.json for modelopt. Layouts
 * whose runtimes read the scheme only from config.json get one even when the source has none.
 */
public final class LayoutConfig {

    public static final String CONFIG = "config.json";
    public static final String MODELOPT_CONFIG = "hf_quant_config.json";
    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    private final Layout layout;
    private final Scaling scaling;
    private final Consumer<String> warn;

    public LayoutConfig(Layout layout, Scaling scaling, Consumer<String> warn) {
        this.layout = layout;
        this.scaling = scaling;
        this.warn = warn;
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
            JSON.writeValue(out.resolve(MODELOPT_CONFIG).toFile(), modelopt(ignore, false));
        }
        if (source != null && cfg == null) {
            return;
        }
        boolean required = layout == Layout.COMPRESSED_TENSORS || layout == Layout.HF_FP8;
        if (cfg == null && !required) {
            return;
        }
        if (cfg == null) {
            cfg = JSON.createObjectNode();
            warn.accept("the source has no config.json: wrote one holding only quantization_config, which "
                    + layout.id() + " runtimes read; merge it into the model's config");
        }
        switch (layout) {
            case COMFY, COMPRESSED_TENSORS -> cfg.set("quantization_config", compressedTensors(ignore));
            case HF_FP8 -> cfg.set("quantization_config", hfFp8(ignore));
            case MODELOPT -> cfg.set("quantization_config", modelopt(ignore, true));
            case COMFY_LEGACY -> { } // ComfyUI reads the marker tensor; the config is copied as it was
        }
        JSON.writeValue(out.resolve(CONFIG).toFile(), cfg);
    }

    private ObjectNode compressedTensors(List<String> ignore) {
        ObjectNode qc = JSON.createObjectNode();
        qc.put("quant_method", "compressed-tensors");
        qc.put("format", "float-quantized");
        qc.put("quantization_status", "compressed");
        ObjectNode g = qc.putObject("config_groups").putObject("group_0");
        g.putArray("targets").add("Linear");
        ObjectNode w = g.putObject("weights");
        w.put("num_bits", 8).put("type", "float").put("symmetric", true)
                .put("strategy", scaling.granularity().name().toLowerCase(Locale.ROOT)).put("dynamic", false);
        ObjectNode a = g.putObject("input_activations");
        a.put("num_bits", 8).put("type", "float").put("symmetric", true);
        if (scaling.granularity() == Granularity.BLOCK) {
            w.putArray("block_structure").add(Scaling.BLOCK).add(Scaling.BLOCK);
            a.put("strategy", "group").put("group_size", Scaling.BLOCK); // llm-compressor's FP8_BLOCK scheme
        } else {
            a.put("strategy", "token");
        }
        a.put("dynamic", true);
        names(qc.putArray("ignore"), ignore);
        return qc;
    }

    private ObjectNode hfFp8(List<String> ignore) {
        ObjectNode qc = JSON.createObjectNode();
        qc.put("quant_method", "fp8");
        qc.put("activation_scheme", "dynamic");
        if (scaling.granularity() == Granularity.BLOCK) {
            qc.putArray("weight_block_size").add(Scaling.BLOCK).add(Scaling.BLOCK);
        }
        names(qc.putArray("ignored_layers"), ignore);
        return qc;
    }

    /** hf_quant_config.json, or (flat, with quant_method) config.json's quantization_config. */
    private ObjectNode modelopt(List<String> ignore, boolean flat) {
        ObjectNode root = JSON.createObjectNode();
        ObjectNode q = flat ? root : root.putObject("quantization");
        if (flat) {
            root.put("quant_method", "modelopt");
        } else {
            root.putObject("producer").put("name", "modelopt").put("version", "fp8q-" + Manifest.TOOL_VERSION);
        }
        q.put("quant_algo", "FP8");
        q.putNull("kv_cache_quant_algo");
        names(q.putArray("exclude_modules"), ignore);
        return root;
    }

    private static void names(ArrayNode array, List<String> names) {
        names.forEach(array::add);
    }
}
