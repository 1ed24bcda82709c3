package dev.fp8q.converter.layout;

import dev.fp8q.converter.quant.Scaling;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.Fp8Names;
import dev.fp8q.formats.codec.E8M0;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.codec.ScaleSwizzle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
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
    /**
     * transformers' FineGrainedFP8 ("fp8"): "weight_scale_inv" for every scaling (FP8Linear registers only that
     * name), 0-dim with weight_block_size null, or the block grid with [128, 128].
     */
    HF_FP8("hf-fp8"),
    /** vLLM's "fp8" loader: per-tensor "weight_scale" (its name there), block "weight_scale_inv" grid. */
    VLLM_FP8("vllm-fp8"),
    /**
     * NVIDIA ModelOpt HF export as vLLM reads it: "weight_scale" [out] (FP8_PER_CHANNEL_PER_TOKEN) or
     * [out/128, 1, in/128, 1] (FP8_PB_WO); hf_quant_config.json.
     */
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
                + "' (comfy, comfy-legacy, compressed-tensors, hf-fp8, vllm-fp8 or modelopt)");
    }

    /** Why this layout cannot carry the scaling, or null when it can. */
    public String refusal(Scaling scaling) {
        return refusal(scaling, false);
    }

    /**
     * Why this layout cannot carry the scaling, or null; calibrated: with static input scales, which is what
     * ModelOpt's per-tensor FP8 needs.
     */
    public String refusal(Scaling scaling, boolean calibrated) {
        if (calibrated && this == MODELOPT && scaling.granularity() == Granularity.TENSOR) {
            return null;
        }
        Granularity g = scaling.granularity();
        if (g == Granularity.MX) {
            return mxRefusal(scaling);
        }
        String name = g.name().toLowerCase(Locale.ROOT);
        String granularity = granularityRefusal(g, name);
        if (granularity == null && scaling.bf16Scales() && (this == COMFY || this == COMFY_LEGACY)) {
            return "ComfyUI hands the stored scale to torch._scaled_mm, which takes float32 scales only (use --scale-dtype f32)";
        }
        return granularity;
    }

    /** MXFP8 is read by ComfyUI ("mxfp8"), compressed-tensors ("mxfp8-quantized") and ModelOpt ("MXFP8") only. */
    private String mxRefusal(Scaling scaling) {
        String layout = switch (this) {
            case COMFY_LEGACY -> "ComfyUI's scaled-fp8 format has one float32 scale per tensor and no MX variant";
            case HF_FP8, VLLM_FP8 -> "the fp8 format (FineGrainedFP8 / vLLM Fp8Config) has float32 per-tensor and 128x128 "
                    + "block scales only, no E8M0 1x32 scales";
            default -> null;
        };
        if (layout != null) {
            return layout + " (use --layout comfy, compressed-tensors or modelopt for mx scaling)";
        }
        return scaling.bf16Scales() ? "MX scales are stored as one E8M0 byte each; --scale-dtype does not apply" : null;
    }

    private String granularityRefusal(Granularity g, String name) {
        return switch (this) {
            case COMFY, COMFY_LEGACY -> g == Granularity.TENSOR ? null
                    : "ComfyUI reads only per-tensor FP8 scales (use --layout compressed-tensors"
                            + (g == Granularity.BLOCK ? ", hf-fp8 or vllm-fp8" : "") + " for " + name + " scaling)";
            case HF_FP8, VLLM_FP8 -> g != Granularity.CHANNEL ? null
                    : "the fp8 format has per-tensor and 128x128 block scales only (use --layout compressed-tensors)";
            case MODELOPT -> g != Granularity.TENSOR ? null
                    : "ModelOpt's per-tensor FP8 (quant_algo FP8) computes with a static input_scale, and vLLM would "
                            + "run with an unset one; add --calibrate to measure them, or use --scaling channel "
                            + "(FP8_PER_CHANNEL_PER_TOKEN) or block (FP8_PB_WO), both with dynamic activations";
            case COMPRESSED_TENSORS -> null;
        };
    }

    /**
     * Why a weight of this shape cannot be stored in this layout and scaling (it is then kept in high precision
     * and listed as ignored), or null.
     */
    public String shapeRefusal(long[] shape, Scaling scaling) {
        if (scaling.mx()) {
            return mxShapeRefusal(shape);
        }
        if (scaling.granularity() != Granularity.BLOCK) {
            return null;
        }
        long rows = Scaling.rows(shape);
        long cols = Scaling.cols(shape);
        return switch (this) {
            // vLLM's FP8_PB_WO refuses such a weight; compressed-tensors warns and then fails in the forward
            case MODELOPT, COMPRESSED_TENSORS -> rows % Scaling.BLOCK == 0 && cols % Scaling.BLOCK == 0 ? null
                    : id + "-block-needs-128-multiples";
            // transformers' dequantizing route derives the tile from weight / grid: wrong for a partial edge tile
            case HF_FP8 -> edgeSafe(rows) && edgeSafe(cols) ? null : "hf-fp8-block-partial-tile";
            default -> null;
        };
    }

    /**
     * MXFP8 blocks run along a Linear's input dimension: ModelOpt and compressed-tensors refuse an input dimension
     * that is not a multiple of 32, and ComfyUI stores such weights padded to 32 x 32 (fp8q does not pad).
     */
    private String mxShapeRefusal(long[] shape) {
        if (shape.length != 2) {
            return "mx-needs-2d-linear";
        }
        if (shape[1] % Scaling.MX_BLOCK != 0) {
            return "mx-needs-in-multiple-of-32";
        }
        return this == COMFY && shape[0] % Scaling.MX_BLOCK != 0 ? "comfy-mxfp8-needs-out-multiple-of-32" : null;
    }

    private static boolean edgeSafe(long side) {
        return side <= Scaling.BLOCK || side % Scaling.BLOCK == 0;
    }

    /**
     * Why this layout and scaling cannot carry static input scales, or null. What the runtimes' loaders accept:
     * vLLM's fp8 and transformers' FineGrainedFP8 take a static activation scheme only per tensor, compressed-tensors'
     * FP8 block scheme only dynamic group activations, ModelOpt static input scales only with quant_algo FP8, and
     * ComfyUI's legacy scaled-fp8 Linear computes with scale 1 for the input.
     */
    public String staticRefusal(Scaling scaling) {
        Granularity g = scaling.granularity();
        return switch (this) {
            case COMFY -> null;
            case COMFY_LEGACY -> "ComfyUI's legacy scaled-fp8 Linear quantizes its input with scale 1 and reads no input "
                    + "scale (use --layout comfy)";
            case COMPRESSED_TENSORS -> g != Granularity.BLOCK ? null
                    : "compressed-tensors' FP8 block scheme takes dynamic group activations only (use tensor or channel scaling)";
            case HF_FP8, VLLM_FP8 -> g == Granularity.TENSOR ? null
                    : "the fp8 format's static activation scheme is per-tensor only: vLLM and transformers require "
                            + "dynamic activations with weight_block_size (use --scaling tensor)";
            case MODELOPT -> g == Granularity.TENSOR ? null
                    : "ModelOpt's FP8_PER_CHANNEL_PER_TOKEN and FP8_PB_WO quantize activations dynamically; static input "
                            + "scales need per-tensor FP8 (quant_algo FP8: --scaling tensor)";
        };
    }

    /** The static activation scale's name beside a Linear (module name): transformers' fp8 reads "activation_scale". */
    public String inputScaleName(String layer) {
        return layer + (this == HF_FP8 ? ".activation_scale" : ".input_scale");
    }

    /** Its shape: [1] for compressed-tensors (as llm-compressor saves it), 0-dim for the others. */
    public long[] inputScaleShape() {
        return this == COMPRESSED_TENSORS ? new long[] {1} : new long[0];
    }

    /** The name of a quantized weight's scale tensor. */
    public String scaleName(String weight, Scaling scaling) {
        return switch (this) {
            case COMFY_LEGACY -> weight.endsWith(".weight")
                    ? weight.substring(0, weight.length() - "weight".length()) + "scale_weight" : weight + "_scale";
            case HF_FP8 -> weight + "_scale_inv";
            case VLLM_FP8 -> scaling.granularity() == Granularity.BLOCK ? weight + "_scale_inv" : weight + "_scale";
            default -> weight + "_scale";
        };
    }

    /** The scale tensor's shape for a weight of this shape. */
    public long[] scaleShape(long[] weightShape, Scaling scaling) {
        long[] grid = scaling.grid(weightShape);
        return switch (scaling.granularity()) {
            case TENSOR -> this == COMPRESSED_TENSORS ? new long[] {1} : new long[0];
            case CHANNEL -> this == MODELOPT ? new long[] {grid[0]} : grid;
            case BLOCK -> this == MODELOPT ? new long[] {grid[0], 1, grid[1], 1} : grid;
            case MX -> this == COMFY ? ScaleSwizzle.paddedShape(grid[0], grid[1]) : grid;
        };
    }

    /** The scale tensor's dtype: MX scales are E8M0, typed F8_E8M0 by ComfyUI (float8_e8m0fnu) and U8 by the others. */
    public DType scaleDType(Scaling scaling) {
        return scaling.mx() && this == COMFY ? DType.F8_E8M0 : scaling.scaleDType();
    }

    /**
     * The scale tensor's bytes (little-endian): F32 or BF16 values, or for MX one E8M0 byte per block, in
     * ComfyUI's swizzled cuBLAS layout for comfy.
     */
    public byte[] scaleBytes(Scaling scaling, float[] scales, long[] weightShape) {
        if (!scaling.mx()) {
            boolean bf16 = scaling.scaleDType() == DType.BF16;
            ByteBuffer s = ByteBuffer.allocate((bf16 ? 2 : 4) * scales.length).order(ByteOrder.LITTLE_ENDIAN);
            for (float v : scales) {
                if (bf16) {
                    s.putShort(Elements.floatToBf16(v)); // already BF16 values: the narrowing is exact
                } else {
                    s.putFloat(v);
                }
            }
            return s.array();
        }
        byte[] e8m0 = new byte[scales.length];
        for (int i = 0; i < scales.length; i++) {
            e8m0[i] = E8M0.encode(scales[i]);
        }
        long[] grid = scaling.grid(weightShape);
        return this == COMFY ? ScaleSwizzle.swizzle(e8m0, (int) grid[0], (int) grid[1]) : e8m0;
    }

    /** Metadata for every shard that holds quantized layers (names without ".weight"). */
    public Map<String, String> shardMetadata(Set<String> layers, Scaling scaling) {
        Map<String, String> m = new TreeMap<>();
        if (this == COMFY && !layers.isEmpty()) {
            m.put(ComfyMetadata.KEY, ComfyMetadata.of(layers, scaling.mx() ? ComfyMetadata.MXFP8 : ComfyMetadata.FP8));
        }
        return m;
    }
}
