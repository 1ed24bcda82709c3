package dev.fp8q.converter.layout;

import dev.fp8q.converter.quant.Scaling;
import dev.fp8q.formats.Fp8Names;
import dev.fp8q.converter.quant.Scaling.Granularity;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * What each runtime loads (FORMATS.md section 2): the scale tensor's name and shape beside a quantized
 * weight, the marker tensors and shard metadata, and (in {@link LayoutConfig}) the config files.
 */
public enum Layout {
    /** ComfyUI mixed precision: "weight_scale" 0-dim, "_quantization_metadata" in every shard. */
    COMFY("comfy"),
    /** ComfyUI's older "scaled fp8": "scale_weight" 0-dim and a "scaled_fp8" marker tensor. */
    COMFY_LEGACY("comfy-legacy"),
    /** vLLM / llm-compressor: "weight_scale" [1], [out, 1] or the block grid; config.json quantization_config. */
    COMPRESSED_TENSORS("compressed-tensors"),
    /** HF / vLLM "fp8": "weight_scale" 0-dim, or "weight_scale_inv" grid with weight_block_size. */
    HF_FP8("hf-fp8"),
    /** NVIDIA ModelOpt HF export: "weight_scale" 0-dim, hf_quant_config.json. */
    MODELOPT("modelopt");

    /** ComfyUI's legacy marker tensor, written with shape [0] as ComfyUI itself saves it (FP8 matmul allowed). */
    public static final String LEGACY_MARKER = Fp8Names.LEGACY_MARKER;

    private final String id;

    Layout(String id) {
        this.id = id;
    }

    public String id() {
        return id;
    }

    public static Layout parse(String s) {
        for (Layout l : values()) {
            if (l.id.equals(s.toLowerCase(Locale.ROOT))) {
                return l;
            }
        }
        throw new IllegalArgumentException("unknown layout '" + s
                + "' (comfy, comfy-legacy, compressed-tensors, hf-fp8 or modelopt)");
    }

    /** Why this layout cannot carry the scaling, or null when it can. */
    public String refusal(Scaling scaling) {
        Granularity g = scaling.granularity();
        return switch (this) {
            case COMFY, COMFY_LEGACY -> g == Granularity.TENSOR ? null
                    : "ComfyUI reads only per-tensor FP8 scales (use --layout compressed-tensors"
                            + (g == Granularity.BLOCK ? " or hf-fp8" : "") + " for " + g.name().toLowerCase(Locale.ROOT) + " scaling)";
            case HF_FP8 -> g != Granularity.CHANNEL ? null
                    : "the HF fp8 format has per-tensor and 128x128 block scales only (use --layout compressed-tensors)";
            case MODELOPT -> g == Granularity.TENSOR ? null
                    : "ModelOpt's FP8 export is per-tensor (use --layout compressed-tensors for " + g.name().toLowerCase(Locale.ROOT) + " scaling)";
            case COMPRESSED_TENSORS -> null;
        };
    }

    /** The name of a quantized weight's scale tensor. */
    public String scaleName(String weight, Scaling scaling) {
        return switch (this) {
            case COMFY_LEGACY -> weight.endsWith(".weight")
                    ? weight.substring(0, weight.length() - "weight".length()) + "scale_weight" : weight + "_scale";
            case HF_FP8 -> scaling.granularity() == Granularity.BLOCK ? weight + "_scale_inv" : weight + "_scale";
            default -> weight + "_scale";
        };
    }

    /** The scale tensor's shape for a weight of this shape. */
    public long[] scaleShape(long[] weightShape, Scaling scaling) {
        return switch (scaling.granularity()) {
            case TENSOR -> this == COMPRESSED_TENSORS ? new long[] {1} : new long[0];
            case CHANNEL, BLOCK -> scaling.grid(weightShape);
        };
    }

    /** Metadata for every shard that holds quantized layers (names without ".weight"). */
    public Map<String, String> shardMetadata(Set<String> layers) {
        Map<String, String> m = new TreeMap<>();
        if (this == COMFY && !layers.isEmpty()) {
            m.put(ComfyMetadata.KEY, ComfyMetadata.of(layers));
        }
        return m;
    }
}
