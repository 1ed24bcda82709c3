package dev.fp8q.testdata;

import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** The two namings of the Wan DiT: the original repository's and diffusers' (FORMATS.md section 3). */
public enum WanNaming {
    ORIGINAL, DIFFUSERS;

    private record Rule(Pattern from, String to) {}

    private static final List<Rule> TO_DIFFUSERS = List.of(
            rule("^blocks\\.(\\d+)\\.self_attn\\.([qkv])\\.", "blocks.$1.attn1.to_$2."),
            rule("^blocks\\.(\\d+)\\.self_attn\\.o\\.", "blocks.$1.attn1.to_out.0."),
            rule("^blocks\\.(\\d+)\\.self_attn\\.norm_([qk])\\.", "blocks.$1.attn1.norm_$2."),
            rule("^blocks\\.(\\d+)\\.cross_attn\\.([qkv])\\.", "blocks.$1.attn2.to_$2."),
            rule("^blocks\\.(\\d+)\\.cross_attn\\.o\\.", "blocks.$1.attn2.to_out.0."),
            rule("^blocks\\.(\\d+)\\.cross_attn\\.norm_([qk])\\.", "blocks.$1.attn2.norm_$2."),
            rule("^blocks\\.(\\d+)\\.cross_attn\\.k_img\\.", "blocks.$1.attn2.add_k_proj."),
            rule("^blocks\\.(\\d+)\\.cross_attn\\.v_img\\.", "blocks.$1.attn2.add_v_proj."),
            rule("^blocks\\.(\\d+)\\.cross_attn\\.norm_k_img\\.", "blocks.$1.attn2.norm_added_k."),
            rule("^blocks\\.(\\d+)\\.norm3\\.", "blocks.$1.norm2."),
            rule("^blocks\\.(\\d+)\\.ffn\\.0\\.", "blocks.$1.ffn.net.0.proj."),
            rule("^blocks\\.(\\d+)\\.ffn\\.2\\.", "blocks.$1.ffn.net.2."),
            rule("^blocks\\.(\\d+)\\.modulation$", "blocks.$1.scale_shift_table"),
            rule("^head\\.head\\.", "proj_out."),
            rule("^head\\.modulation$", "scale_shift_table"),
            rule("^time_embedding\\.0\\.", "condition_embedder.time_embedder.linear_1."),
            rule("^time_embedding\\.2\\.", "condition_embedder.time_embedder.linear_2."),
            rule("^time_projection\\.1\\.", "condition_embedder.time_proj."),
            rule("^text_embedding\\.0\\.", "condition_embedder.text_embedder.linear_1."),
            rule("^text_embedding\\.2\\.", "condition_embedder.text_embedder.linear_2."),
            rule("^img_emb\\.proj\\.0\\.", "condition_embedder.image_embedder.norm1."),
            rule("^img_emb\\.proj\\.1\\.", "condition_embedder.image_embedder.ff.net.0.proj."),
            rule("^img_emb\\.proj\\.3\\.", "condition_embedder.image_embedder.ff.net.2."),
            rule("^img_emb\\.proj\\.4\\.", "condition_embedder.image_embedder.norm2."));

    private static Rule rule(String from, String to) {
        return new Rule(Pattern.compile(from), to);
    }

    /** An original-naming key in this naming (modules diffusers does not rename keep their names). */
    public String rename(String original) {
        if (this == ORIGINAL) {
            return original;
        }
        for (Rule r : TO_DIFFUSERS) {
            Matcher m = r.from.matcher(original);
            if (m.find()) {
                return m.replaceFirst(r.to);
            }
        }
        return original;
    }

    /** Folder names of a two-expert release in this naming. */
    public List<String> expertFolders() {
        return this == ORIGINAL ? List.of("high_noise_model", "low_noise_model") : List.of("transformer", "transformer_2");
    }
}
