package dev.fp8q.converter.model;

import dev.fp8q.formats.KeyPrefix;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Detects the model family from tensor names and shapes, as ComfyUI's model detection does for Wan
 * (FORMATS.md section 3): {@code head.modulation} (or diffusers' top-level {@code scale_shift_table}) means Wan;
 * Animate and S2V by their own modules; otherwise the patch embedding's input channels tell T2V (16),
 * I2V (36) and TI2V (48). Also told apart: T5/UMT5 text encoders (Wan's own naming and HF's), autoencoders
 * (an encoder and a decoder of convolutions), BERT and LLM naming.
 */
public final class ModelDetector {

    private static final Pattern BLOCK = Pattern.compile("^blocks\\.(\\d+)\\.");
    private static final Pattern QWEN_BLOCK = Pattern.compile("^transformer_blocks\\.(\\d+)\\.");

    private ModelDetector() {}

    /** @param shapes tensor name to shape (names under a ComfyUI prefix are read without it) */
    public static ModelInfo detect(Map<String, long[]> shapes) {
        String prefix = KeyPrefix.of(shapes.keySet()); // a ComfyUI single file: the names under its prefix
        if (!prefix.isEmpty()) {
            shapes = KeyPrefix.under(shapes, prefix);
        }
        boolean original = shapes.containsKey("head.modulation");
        boolean diffusers = shapes.containsKey("scale_shift_table") && shapes.containsKey("proj_out.weight");
        if (original || diffusers) {
            return wan(shapes, original ? "original" : "diffusers");
        }
        if (shapes.containsKey("img_in.weight") && shapes.containsKey("transformer_blocks.0.img_mod.1.weight")) {
            return qwenImage(shapes);
        }
        if (shapes.containsKey("token_embedding.weight") && shapes.containsKey("blocks.0.attn.q.weight")
                || shapes.keySet().stream().anyMatch(n -> n.startsWith("encoder.block.0.layer.0.SelfAttention."))) {
            return ModelInfo.generic("t5"); // Wan's own UMT5 .pth, or the HF T5/UMT5 encoder
        }
        if (isVae(shapes)) {
            return ModelInfo.generic("vae");
        }
        boolean llm = false;
        boolean bert = false;
        for (String name : shapes.keySet()) {
            if (name.contains("attention.self.query.") || name.startsWith("embeddings.word_embeddings")
                    || name.contains("embeddings.position_embeddings")) {
                bert = true;
            }
            if (name.contains(".q_proj.") || name.contains("embed_tokens") || name.startsWith("lm_head")) {
                llm = true;
            }
        }
        return ModelInfo.generic(bert ? "bert" : llm ? "llm" : "unknown");
    }

    /** Qwen-Image (and Qwen-Image-Edit: the same transformer): dim from img_in, blocks, MLP width. */
    private static ModelInfo qwenImage(Map<String, long[]> shapes) {
        int blocks = 0;
        for (String name : shapes.keySet()) {
            Matcher m = QWEN_BLOCK.matcher(name);
            if (m.find()) {
                blocks = Math.max(blocks, Integer.parseInt(m.group(1)) + 1);
            }
        }
        long[] in = shapes.get("img_in.weight");
        long[] mlp = shapes.get("transformer_blocks.0.img_mlp.net.0.proj.weight");
        return new ModelInfo("qwen-image", null, "diffusers", (int) in[0], blocks, mlp == null ? 0 : (int) mlp[0],
                in.length > 1 ? (int) in[1] : 0);
    }

    /** An autoencoder: an encoder and a decoder built of convolutions (4-D or 5-D weights). */
    private static boolean isVae(Map<String, long[]> shapes) {
        boolean enc = false;
        boolean dec = false;
        boolean conv = false;
        for (Map.Entry<String, long[]> e : shapes.entrySet()) {
            enc |= e.getKey().startsWith("encoder.");
            dec |= e.getKey().startsWith("decoder.");
            conv |= e.getValue().length >= 4 && e.getKey().endsWith(".weight");
        }
        return enc && dec && conv;
    }

    private static ModelInfo wan(Map<String, long[]> shapes, String naming) {
        long[] mod = shapes.getOrDefault(naming.equals("original") ? "head.modulation" : "scale_shift_table", new long[] {0});
        int dim = (int) mod[mod.length - 1];
        int blocks = 0;
        for (String name : shapes.keySet()) {
            Matcher m = BLOCK.matcher(name);
            if (m.find()) {
                blocks = Math.max(blocks, Integer.parseInt(m.group(1)) + 1);
            }
        }
        long[] ffn0 = shapes.get(naming.equals("original") ? "blocks.0.ffn.0.weight" : "blocks.0.ffn.net.0.proj.weight");
        long[] patch = shapes.get("patch_embedding.weight");
        int inDim = patch != null && patch.length > 1 ? (int) patch[1] : 0;
        String variant;
        if (shapes.containsKey("face_adapter.fuser_blocks.0.k_norm.weight")) {
            variant = "animate";
        } else if (shapes.containsKey("casual_audio_encoder.encoder.final_linear.weight")) {
            variant = "s2v";
        } else if (inDim == 48 || dim == 3072) {
            variant = "ti2v";
        } else if (inDim == 36) {
            variant = "i2v";
        } else {
            variant = "t2v";
        }
        return new ModelInfo("wan", variant, naming, dim, blocks, ffn0 == null ? 0 : (int) ffn0[0], inDim);
    }
}
