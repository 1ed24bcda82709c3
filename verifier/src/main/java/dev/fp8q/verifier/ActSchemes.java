package dev.fp8q.verifier;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.verifier.weights.ActivationQuantizer.Scheme;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

/**
 * The activation scheme a checkpoint's runtime applies to FP8 Linears' inputs, as its layout declares it: ComfyUI
 * one dynamic per-tensor scale (its stored input_scale when the layer has one); compressed-tensors
 * input_activations (dynamic token or group, or static tensor); the fp8 config's activation_scheme (dynamic
 * per-tensor, 1x128 groups with block weights, or static); ModelOpt's quant_algo (FP8 static,
 * FP8_PER_CHANNEL_PER_TOKEN per token, FP8_PB_WO groups of 128).
 */
final class ActSchemes {

    /** The scheme and what declared it. */
    record Declared(Scheme scheme, String why) {}

    private static final ObjectMapper JSON = new ObjectMapper();

    private ActSchemes() {}

    static Declared declared(Path component, Optional<Manifest> manifest, boolean hasInputScales) {
        String layout = manifest.map(Manifest::settings).map(s -> s.get("layout")).map(Object::toString).orElse(null);
        if ("comfy".equals(layout) || "comfy-legacy".equals(layout)) {
            return hasInputScales ? new Declared(Scheme.STATIC, "ComfyUI quantizes with the layer's input_scale")
                    : new Declared(Scheme.TENSOR, "ComfyUI quantizes each input with one dynamic per-tensor scale");
        }
        Path config = Files.isDirectory(component) ? component.resolve("config.json") : null;
        if (config != null && Files.isRegularFile(config)) {
            try {
                JsonNode qc = JSON.readTree(config.toFile()).path("quantization_config");
                Declared d = fromConfig(qc);
                if (d != null) {
                    return d;
                }
            } catch (IOException e) {
                // not JSON: the manifest or the default decides
            }
        }
        if (layout != null) {
            String scaling = String.valueOf(manifest.get().settings().getOrDefault("scaling", "tensor"));
            boolean block = scaling.startsWith("block");
            boolean calibrated = manifest.get().settings().get("calibration") instanceof Map<?, ?>;
            if (calibrated) {
                return new Declared(Scheme.STATIC, "calibrated: the " + layout + " layout declares static activations");
            }
            return switch (layout) {
                case "compressed-tensors", "modelopt" -> block ? new Declared(Scheme.GROUP128, layout + " block: dynamic groups of 128")
                        : new Declared(Scheme.TOKEN, layout + ": dynamic per-token activations");
                default -> block ? new Declared(Scheme.GROUP128, layout + " block: dynamic groups of 128")
                        : new Declared(Scheme.TENSOR, layout + ": dynamic per-tensor activations");
            };
        }
        return hasInputScales ? new Declared(Scheme.STATIC, "no layout config; the checkpoint has input scales")
                : new Declared(Scheme.TENSOR, "no layout config: dynamic per-tensor");
    }

    /** The scheme a quantization_config declares, or null when it declares none fp8q knows. */
    static Declared fromConfig(JsonNode qc) {
        String method = qc.path("quant_method").asText("");
        switch (method) {
            case "compressed-tensors" -> {
                for (JsonNode group : qc.path("config_groups")) {
                    JsonNode a = group.path("input_activations");
                    if (a.isMissingNode() || a.isNull()) {
                        continue;
                    }
                    String strategy = a.path("strategy").asText("tensor");
                    if (!a.path("dynamic").asBoolean(false)) {
                        return new Declared(Scheme.STATIC, "config.json compressed-tensors: static " + strategy + " activations");
                    }
                    return switch (strategy) {
                        case "token" -> new Declared(Scheme.TOKEN, "config.json compressed-tensors: dynamic per-token activations");
                        case "group" -> new Declared(Scheme.GROUP128, "config.json compressed-tensors: dynamic groups of "
                                + a.path("group_size").asInt(128));
                        default -> new Declared(Scheme.TENSOR, "config.json compressed-tensors: dynamic per-tensor activations");
                    };
                }
                return null;
            }
            case "fp8" -> {
                if ("static".equals(qc.path("activation_scheme").asText())) {
                    return new Declared(Scheme.STATIC, "config.json fp8: activation_scheme static");
                }
                JsonNode block = qc.path("weight_block_size");
                return block.isArray() ? new Declared(Scheme.GROUP128, "config.json fp8 block: dynamic 1x128 activation groups")
                        : new Declared(Scheme.TENSOR, "config.json fp8: dynamic per-tensor activations");
            }
            case "modelopt" -> {
                return switch (qc.path("quant_algo").asText()) {
                    case "FP8" -> new Declared(Scheme.STATIC, "config.json modelopt FP8: static input_scale");
                    case "FP8_PER_CHANNEL_PER_TOKEN" -> new Declared(Scheme.TOKEN, "config.json modelopt FP8_PER_CHANNEL_PER_TOKEN");
                    case "FP8_PB_WO" -> new Declared(Scheme.GROUP128, "config.json modelopt FP8_PB_WO: groups of 128");
                    default -> null;
                };
            }
            default -> {
                return null;
            }
        }
    }
}
