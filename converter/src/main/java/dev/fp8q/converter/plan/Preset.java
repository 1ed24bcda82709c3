package dev.fp8q.converter.plan;

import dev.fp8q.converter.model.ModelInfo;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/**
 * A preset's default: which 2-D float weights are quantized (by name), under which rule name. Everything
 * not matched is preserved under the preset's keep rule.
 */
public enum Preset {
    /** Attention q/k/v/o and FFN weights of every block, original and diffusers names. */
    WAN("wan", List.of(
            new Match("wan:attention", Pattern.compile("^blocks\\.\\d+\\.(self_attn|cross_attn)\\.[qkvo]\\.weight$")),
            new Match("wan:attention", Pattern.compile("^blocks\\.\\d+\\.(attn1|attn2)\\.(to_[qkv]|to_out\\.0)\\.weight$")),
            new Match("wan:ffn", Pattern.compile("^blocks\\.\\d+\\.ffn\\.(0|2|net\\.0\\.proj|net\\.2)\\.weight$")))),
    /**
     * T5/UMT5 encoders (Wan's text encoder): every attention and FFN Linear, in HF naming and Wan's own .pth
     * naming; embeddings, norms and the relative position bias kept.
     */
    T5("t5", List.of(
            new Match("t5:attention", Pattern.compile("^(encoder\\.)?block\\.\\d+\\.layer\\.0\\.SelfAttention\\.[qkvo]\\.weight$")),
            new Match("t5:ffn", Pattern.compile("^(encoder\\.)?block\\.\\d+\\.layer\\.1\\.DenseReluDense\\.(wi|wi_0|wi_1|wo)\\.weight$")),
            new Match("t5:attention", Pattern.compile("^blocks\\.\\d+\\.attn\\.[qkvo]\\.weight$")),
            new Match("t5:ffn", Pattern.compile("^blocks\\.\\d+\\.ffn\\.(fc1|fc2|gate\\.0)\\.weight$")))),
    /** vLLM-Omni's study: only the FFNs in FP8 (all-attention FP8 degraded long Wan 2.2 sequences). */
    WAN_FFN_ONLY("wan-ffn-only", List.of(
            new Match("wan:ffn", Pattern.compile("^blocks\\.\\d+\\.ffn\\.(0|2|net\\.0\\.proj|net\\.2)\\.weight$")))),
    /**
     * ModelOpt's diffusers example (filter_func_wan_video): as wan, and whole blocks 0, 1, 2, 37, 38, 39 kept (the
     * embedders and proj_out are kept by wan already).
     */
    WAN_MODELOPT("wan-modelopt", List.of(
            new Match("wan:attention", Pattern.compile("^blocks\\.(?!(0|1|2|37|38|39)\\.)\\d+\\.(self_attn|cross_attn)\\.[qkvo]\\.weight$")),
            new Match("wan:attention", Pattern.compile("^blocks\\.(?!(0|1|2|37|38|39)\\.)\\d+\\.(attn1|attn2)\\.(to_[qkv]|to_out\\.0)\\.weight$")),
            new Match("wan:ffn", Pattern.compile("^blocks\\.(?!(0|1|2|37|38|39)\\.)\\d+\\.ffn\\.(0|2|net\\.0\\.proj|net\\.2)\\.weight$")))),
    /**
     * Qwen-Image (and -Edit): every block's attention Linears of both streams and both MLPs; img_in, txt_in,
     * txt_norm, time_text_embed, img_mod/txt_mod, norm_out, proj_out, norms and biases kept.
     */
    QWEN_IMAGE("qwen-image", List.of(
            new Match("qwen-image:attention", Pattern.compile(
                    "^transformer_blocks\\.\\d+\\.attn\\.(to_q|to_k|to_v|to_out\\.0|add_q_proj|add_k_proj|add_v_proj|to_add_out)\\.weight$")),
            new Match("qwen-image:mlp", Pattern.compile("^transformer_blocks\\.\\d+\\.(img|txt)_mlp\\.net\\.(0\\.proj|2)\\.weight$")))),
    /** SGLang's ModelOpt FP8 preset for Qwen-Image: as qwen-image, and img_mlp.net.2 kept (an image-quality ablation). */
    QWEN_IMAGE_SGLANG("qwen-image-sglang", List.of(
            new Match("qwen-image:attention", Pattern.compile(
                    "^transformer_blocks\\.\\d+\\.attn\\.(to_q|to_k|to_v|to_out\\.0|add_q_proj|add_k_proj|add_v_proj|to_add_out)\\.weight$")),
            new Match("qwen-image:mlp", Pattern.compile("^transformer_blocks\\.\\d+\\.(img_mlp\\.net\\.0\\.proj|txt_mlp\\.net\\.(0\\.proj|2))\\.weight$")))),
    /**
     * Weight-only storage, as vLLM-Omni stores VAEs and non-T5 text encoders: every Linear, Conv2d and Conv3d
     * weight in FP8 with one scale, dequantized before use (the FP8 GEMM shape rule does not apply); embeddings
     * and norms kept.
     */
    WEIGHT_ONLY("weight-only", List.of(new Match("weight-only:storage",
            Pattern.compile("^(?!.*(?i:embed_tokens|embeddings?\\.|norm)).*\\.weight$")))),
    /** LLM and BERT naming: attention and MLP projections; embeddings, norms, lm_head and pooler kept. */
    GENERIC("generic", List.of(
            new Match("generic:attention", Pattern.compile("(^|\\.)(q_proj|k_proj|v_proj|o_proj|out_proj|qkv_proj|query|key|value|attention\\.output\\.dense)\\.weight$")),
            new Match("generic:ffn", Pattern.compile("(^|\\.)(gate_proj|up_proj|down_proj|fc1|fc2|intermediate\\.dense|(?<!attention\\.)output\\.dense|mlp\\.[a-z_]+)\\.weight$"))));

    public record Match(String rule, Pattern pattern) {}

    /** True for presets that store weights in FP8 without running FP8 GEMMs on them (any rank >= 2, any shape). */
    public boolean weightOnly() {
        return this == WEIGHT_ONLY;
    }

    public final String id;
    private final List<Match> matches;

    Preset(String id, List<Match> matches) {
        this.id = id;
        this.matches = matches;
    }

    /** The rule that quantizes this name, or null. */
    public String quantizeRule(String name) {
        for (Match m : matches) {
            if (m.pattern.matcher(name).find()) {
                return m.rule;
            }
        }
        return null;
    }

    /** The rule name for a tensor this preset keeps, by its kind. */
    public String keepRule(String name) {
        return id + ":keep-" + LayerKind.of(name).label();
    }

    /** The ids --preset takes. */
    public static final String IDS = "auto, wan, wan-ffn-only, wan-modelopt, qwen-image, qwen-image-sglang, t5, weight-only (or vae), generic";

    /** A preset by id; auto picks by the detected family. */
    public static Preset resolve(String id, ModelInfo model) {
        return switch (id.toLowerCase(Locale.ROOT)) {
            case "auto" -> switch (model.family()) {
                case "wan" -> WAN;
                case "qwen-image" -> QWEN_IMAGE;
                case "t5" -> T5;
                case "vae" -> WEIGHT_ONLY;
                default -> GENERIC;
            };
            case "wan" -> WAN;
            case "wan-ffn-only" -> WAN_FFN_ONLY;
            case "wan-modelopt" -> WAN_MODELOPT;
            case "qwen-image" -> QWEN_IMAGE;
            case "qwen-image-sglang" -> QWEN_IMAGE_SGLANG;
            case "t5" -> T5;
            case "weight-only", "vae" -> WEIGHT_ONLY;
            case "generic" -> GENERIC;
            default -> throw new IllegalArgumentException("unknown preset '" + id + "' (" + IDS + ")");
        };
    }
}
