package dev.fp8q.verifier.wan;

import dev.fp8q.formats.Checkpoint;
import java.util.Optional;

/** The two namings of the Wan DiT (FORMATS.md section 3): the original repository's and diffusers'. */
public enum WanNaming {
    ORIGINAL, DIFFUSERS;

    /** A parameter of the model, by its name in each naming ({@code %d}: the block index). */
    public enum Param {
        SELF_Q("blocks.%d.self_attn.q", "blocks.%d.attn1.to_q"),
        SELF_K("blocks.%d.self_attn.k", "blocks.%d.attn1.to_k"),
        SELF_V("blocks.%d.self_attn.v", "blocks.%d.attn1.to_v"),
        SELF_O("blocks.%d.self_attn.o", "blocks.%d.attn1.to_out.0"),
        SELF_NORM_Q("blocks.%d.self_attn.norm_q", "blocks.%d.attn1.norm_q"),
        SELF_NORM_K("blocks.%d.self_attn.norm_k", "blocks.%d.attn1.norm_k"),
        CROSS_Q("blocks.%d.cross_attn.q", "blocks.%d.attn2.to_q"),
        CROSS_K("blocks.%d.cross_attn.k", "blocks.%d.attn2.to_k"),
        CROSS_V("blocks.%d.cross_attn.v", "blocks.%d.attn2.to_v"),
        CROSS_O("blocks.%d.cross_attn.o", "blocks.%d.attn2.to_out.0"),
        CROSS_NORM_Q("blocks.%d.cross_attn.norm_q", "blocks.%d.attn2.norm_q"),
        CROSS_NORM_K("blocks.%d.cross_attn.norm_k", "blocks.%d.attn2.norm_k"),
        NORM3("blocks.%d.norm3", "blocks.%d.norm2"),
        FFN_0("blocks.%d.ffn.0", "blocks.%d.ffn.net.0.proj"),
        FFN_2("blocks.%d.ffn.2", "blocks.%d.ffn.net.2"),
        MODULATION("blocks.%d.modulation", "blocks.%d.scale_shift_table"),
        PATCH("patch_embedding", "patch_embedding"),
        TEXT_0("text_embedding.0", "condition_embedder.text_embedder.linear_1"),
        TEXT_2("text_embedding.2", "condition_embedder.text_embedder.linear_2"),
        TIME_0("time_embedding.0", "condition_embedder.time_embedder.linear_1"),
        TIME_2("time_embedding.2", "condition_embedder.time_embedder.linear_2"),
        TIME_PROJ("time_projection.1", "condition_embedder.time_proj"),
        HEAD("head.head", "proj_out"),
        HEAD_MODULATION("head.modulation", "scale_shift_table");

        private final String original;
        private final String diffusers;

        Param(String original, String diffusers) {
            this.original = original;
            this.diffusers = diffusers;
        }
    }

    /** The module name of a parameter (append ".weight" / ".bias"; MODULATION is itself the tensor). */
    public String name(Param p, int block) {
        return String.format(this == ORIGINAL ? p.original : p.diffusers, block);
    }

    public String weight(Param p, int block) {
        return p == Param.MODULATION || p == Param.HEAD_MODULATION ? name(p, block) : name(p, block) + ".weight";
    }

    public String bias(Param p, int block) {
        return name(p, block) + ".bias";
    }

    /** The naming whose block-0 modulation the checkpoint holds. */
    public static Optional<WanNaming> detect(Checkpoint c) {
        for (WanNaming n : values()) {
            if (c.tensor(n.weight(Param.MODULATION, 0)).isPresent() && c.tensor(n.weight(Param.FFN_0, 0)).isPresent()) {
                return Optional.of(n);
            }
        }
        return Optional.empty();
    }
}
