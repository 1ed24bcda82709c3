package dev.fp8q.verifier.qwen;

import dev.fp8q.formats.Checkpoint;
import java.util.Optional;
import java.util.regex.Pattern;

/**
 * The Qwen-Image transformer's names (diffusers QwenImageTransformer2DModel, FORMATS.md section 5), under an
 * optional prefix (ComfyUI's "model.diffusion_model." and the like).
 */
public record QwenNaming(String prefix) {

    static final String MARKER = "transformer_blocks.0.img_mod.1.weight";

    /** Qwen-Image when the checkpoint has block 0's img_mod.1 and img_in under the same prefix. */
    public static Optional<QwenNaming> detect(Checkpoint c) {
        for (Checkpoint.Tensor t : c.tensors()) {
            if (t.name().endsWith(MARKER)) {
                String prefix = t.name().substring(0, t.name().length() - MARKER.length());
                if ((prefix.isEmpty() || prefix.endsWith(".")) && c.tensor(prefix + "img_in.weight").isPresent()) {
                    return Optional.of(new QwenNaming(prefix));
                }
            }
        }
        return Optional.empty();
    }

    /** A module of block {@code block}, e.g. block(3, "attn.to_q"); append ".weight" / ".bias". */
    public String block(int block, String module) {
        return prefix + "transformer_blocks." + block + "." + module;
    }

    /** A top-level module: img_in, txt_norm, txt_in, time_text_embed.timestep_embedder.linear_1, ... */
    public String top(String module) {
        return prefix + module;
    }

    /** Matches a block tensor's name; group 1 is the block index. */
    public Pattern blockPattern() {
        return Pattern.compile("^" + Pattern.quote(prefix) + "transformer_blocks\\.(\\d{1,6})\\.");
    }
}
