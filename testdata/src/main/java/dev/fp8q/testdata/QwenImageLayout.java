package dev.fp8q.testdata;

import dev.fp8q.testdata.WanLayout.Init;
import dev.fp8q.testdata.WanLayout.Spec;
import java.util.ArrayList;
import java.util.List;

/**
 * The tensors of a Qwen-Image pipeline's three components with diffusers' and transformers' key names
 * (FORMATS.md section 5): the dual-stream transformer (QwenImageTransformer2DModel), a Qwen2.5-VL-like text
 * encoder and an AutoencoderKLQwenImage-like VAE. The text encoder and VAE carry the names and kinds of layer
 * that matter for conversion (Linears, Conv2d/Conv3d, embeddings, norms), not every tensor of the real ones.
 */
public final class QwenImageLayout {

    /** dim = heads x 128; textDim: joint_attention_dim. */
    public record Dims(int dim, int layers, int textDim) {
        public static Dims full() {
            return new Dims(3072, 60, 3584);
        }

        public static Dims tiny() {
            return new Dims(256, 2, 128);
        }
    }

    private final List<Spec> specs = new ArrayList<>();

    private QwenImageLayout() {}

    private void add(String name, Init init, long... shape) {
        specs.add(new Spec(name, shape, init));
    }

    private void linear(String prefix, long out, long in) {
        add(prefix + ".weight", Init.WEIGHT, out, in);
        add(prefix + ".bias", Init.BIAS, out);
    }

    public static List<Spec> transformer(Dims d) {
        QwenImageLayout l = new QwenImageLayout();
        int dim = d.dim();
        l.linear("img_in", dim, 64);
        l.add("txt_norm.weight", Init.NORM_WEIGHT, d.textDim());
        l.linear("txt_in", dim, d.textDim());
        l.linear("time_text_embed.timestep_embedder.linear_1", dim, 256);
        l.linear("time_text_embed.timestep_embedder.linear_2", dim, dim);
        for (int i = 0; i < d.layers(); i++) {
            String p = "transformer_blocks." + i + ".";
            l.linear(p + "img_mod.1", 6L * dim, dim);
            l.linear(p + "txt_mod.1", 6L * dim, dim);
            for (String m : List.of("to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj", "to_add_out")) {
                l.linear(p + "attn." + m, dim, dim);
            }
            for (String n : List.of("norm_q", "norm_k", "norm_added_q", "norm_added_k")) {
                l.add(p + "attn." + n + ".weight", Init.NORM_WEIGHT, 128);
            }
            for (String s : List.of("img_mlp", "txt_mlp")) {
                l.linear(p + s + ".net.0.proj", 4L * dim, dim);
                l.linear(p + s + ".net.2", dim, 4L * dim);
            }
        }
        l.linear("norm_out.linear", 2L * dim, dim);
        l.linear("proj_out", 64, dim);
        return List.copyOf(l.specs);
    }

    /** A Qwen2.5-VL-like text encoder: language layers, a vision block and its Conv3d patch embedding. */
    public static List<Spec> textEncoder(Dims d) {
        QwenImageLayout l = new QwenImageLayout();
        int h = d.textDim();
        l.add("model.embed_tokens.weight", Init.EMBEDDING, 512, h);
        for (int i = 0; i < 2; i++) {
            String p = "model.layers." + i + ".";
            l.add(p + "input_layernorm.weight", Init.NORM_WEIGHT, h);
            l.linear(p + "self_attn.q_proj", h, h);
            l.linear(p + "self_attn.k_proj", h / 4, h);
            l.linear(p + "self_attn.v_proj", h / 4, h);
            l.add(p + "self_attn.o_proj.weight", Init.WEIGHT, h, h);
            l.add(p + "post_attention_layernorm.weight", Init.NORM_WEIGHT, h);
            l.add(p + "mlp.gate_proj.weight", Init.WEIGHT, 2L * h, h);
            l.add(p + "mlp.up_proj.weight", Init.WEIGHT, 2L * h, h);
            l.add(p + "mlp.down_proj.weight", Init.WEIGHT, h, 2L * h);
        }
        l.add("model.norm.weight", Init.NORM_WEIGHT, h);
        l.add("visual.patch_embed.proj.weight", Init.WEIGHT, 64, 3, 2, 14, 14);
        l.add("visual.blocks.0.norm1.weight", Init.NORM_WEIGHT, 64);
        l.linear("visual.blocks.0.attn.qkv", 192, 64);
        l.linear("visual.blocks.0.attn.proj", 64, 64);
        l.add("lm_head.weight", Init.WEIGHT, 512, h);
        return List.copyOf(l.specs);
    }

    /** An AutoencoderKLQwenImage-like VAE: causal Conv3d layers, a Conv2d-shaped attention projection, norms. */
    public static List<Spec> vae() {
        QwenImageLayout l = new QwenImageLayout();
        l.add("encoder.conv_in.weight", Init.WEIGHT, 32, 3, 3, 3, 3);
        l.add("encoder.conv_in.bias", Init.BIAS, 32);
        l.add("encoder.down_blocks.0.norm1.gamma", Init.NORM_WEIGHT, 32, 1, 1, 1);
        l.add("encoder.down_blocks.0.conv1.weight", Init.WEIGHT, 32, 32, 3, 3, 3);
        l.add("encoder.down_blocks.0.conv1.bias", Init.BIAS, 32);
        l.add("encoder.mid_block.attentions.0.to_qkv.weight", Init.WEIGHT, 96, 32, 1, 1);
        l.add("encoder.mid_block.attentions.0.proj.weight", Init.WEIGHT, 32, 32, 1, 1);
        l.add("encoder.conv_out.weight", Init.WEIGHT, 32, 32, 3, 3, 3);
        l.add("quant_conv.weight", Init.WEIGHT, 32, 32, 1, 1, 1);
        l.add("post_quant_conv.weight", Init.WEIGHT, 16, 16, 1, 1, 1);
        l.add("decoder.conv_in.weight", Init.WEIGHT, 32, 16, 3, 3, 3);
        l.add("decoder.up_blocks.0.resnets.0.conv1.weight", Init.WEIGHT, 32, 32, 3, 3, 3);
        l.add("decoder.conv_out.weight", Init.WEIGHT, 3, 32, 3, 3, 3);
        l.add("decoder.conv_out.bias", Init.BIAS, 3);
        return List.copyOf(l.specs);
    }
}
