package dev.fp8q.converter.plan;

import java.util.Locale;

/** The kinds of layer the memory report groups by, read from tensor names (Wan both namings, LLM, BERT). */
public enum LayerKind {
    ATTENTION, FFN, EMBEDDING, NORM, MODULATION, HEAD, OTHER;

    public String label() {
        return name().toLowerCase(Locale.ROOT);
    }

    public static LayerKind of(String name) {
        String n = name.toLowerCase(Locale.ROOT);
        if (n.contains("modulation") || n.contains("scale_shift_table") || n.contains("adaln") || n.contains("img_mod.")
                || n.contains("txt_mod.")) {
            return MODULATION;
        }
        if (n.contains("norm") || n.contains("layernorm") || n.contains("ln_")) {
            return NORM;
        }
        if (n.startsWith("head.") || n.startsWith("proj_out") || n.startsWith("lm_head") || n.contains("pooler")) {
            return HEAD;
        }
        if (n.contains("embed") || n.contains("time_projection") || n.contains("time_proj") || n.contains("img_emb")
                || n.contains("cond_encoder") || n.contains("trainable_cond_mask")) {
            return EMBEDDING;
        }
        if (n.contains("attn") || n.contains("attention") || n.contains(".q_proj") || n.contains(".k_proj")
                || n.contains(".v_proj") || n.contains(".o_proj")) {
            return ATTENTION;
        }
        if (n.contains("ffn") || n.contains("mlp") || n.contains("intermediate") || n.contains(".output.dense")
                || n.contains("gate_proj") || n.contains("up_proj") || n.contains("down_proj") || n.contains(".fc1") || n.contains(".fc2")) {
            return FFN;
        }
        return OTHER;
    }
}
