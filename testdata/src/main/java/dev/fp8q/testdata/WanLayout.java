package dev.fp8q.testdata;

import java.util.ArrayList;
import java.util.List;

/**
 * Every tensor of a Wan 2.2 DiT checkpoint with its name, shape and how its values are drawn, in the order
 * the released files list them. Extra modules of S2V and Animate carry the released names of their
 * detectable parts; their inner encoders are represented by a few layers, not every tensor.
 */
public final class WanLayout {

    /** How a tensor's synthetic values are drawn. */
    public enum Init { WEIGHT, BIAS, NORM_WEIGHT, MODULATION, EMBEDDING }

    public record Spec(String name, long[] shape, Init init) {}

    private final List<Spec> specs = new ArrayList<>();
    private final WanNaming naming;

    private WanLayout(WanNaming naming) {
        this.naming = naming;
    }

    public static List<Spec> of(WanVariant v, WanDims d, WanNaming naming) {
        WanLayout l = new WanLayout(naming);
        l.build(v, d);
        return List.copyOf(l.specs);
    }

    private void add(String name, Init init, long... shape) {
        specs.add(new Spec(naming.rename(name), shape, init));
    }

    private void linear(String prefix, long out, long in) {
        add(prefix + ".weight", Init.WEIGHT, out, in);
        add(prefix + ".bias", Init.BIAS, out);
    }

    private void build(WanVariant v, WanDims d) {
        int dim = d.dim();
        add("patch_embedding.weight", Init.WEIGHT, dim, d.inDim(), 1, 2, 2);
        add("patch_embedding.bias", Init.BIAS, dim);
        linear("text_embedding.0", dim, d.textDim());
        linear("text_embedding.2", dim, dim);
        linear("time_embedding.0", dim, d.freqDim());
        linear("time_embedding.2", dim, dim);
        linear("time_projection.1", 6L * dim, dim);
        if (v == WanVariant.ANIMATE_14B) {
            add("pose_patch_embedding.weight", Init.WEIGHT, dim, 16, 1, 2, 2);
            add("pose_patch_embedding.bias", Init.BIAS, dim);
            add("img_emb.proj.0.weight", Init.NORM_WEIGHT, 1280);
            add("img_emb.proj.0.bias", Init.BIAS, 1280);
            linear("img_emb.proj.1", 1280, 1280);
            linear("img_emb.proj.3", dim, 1280);
            add("img_emb.proj.4.weight", Init.NORM_WEIGHT, dim);
            add("img_emb.proj.4.bias", Init.BIAS, dim);
        }
        for (int i = 0; i < d.layers(); i++) {
            String p = "blocks." + i + ".";
            for (String att : new String[] {"self_attn", "cross_attn"}) {
                for (String m : new String[] {"q", "k", "v", "o"}) {
                    linear(p + att + "." + m, dim, dim);
                }
                add(p + att + ".norm_q.weight", Init.NORM_WEIGHT, dim);
                add(p + att + ".norm_k.weight", Init.NORM_WEIGHT, dim);
            }
            if (v == WanVariant.ANIMATE_14B) {
                linear(p + "cross_attn.k_img", dim, dim);
                linear(p + "cross_attn.v_img", dim, dim);
                add(p + "cross_attn.norm_k_img.weight", Init.NORM_WEIGHT, dim);
            }
            add(p + "norm3.weight", Init.NORM_WEIGHT, dim);
            add(p + "norm3.bias", Init.BIAS, dim);
            linear(p + "ffn.0", d.ffn(), dim);
            linear(p + "ffn.2", dim, d.ffn());
            add(p + "modulation", Init.MODULATION, 1, 6, dim);
        }
        add("head.head.weight", Init.WEIGHT, (long) d.outDim() * 4, dim);
        add("head.head.bias", Init.BIAS, (long) d.outDim() * 4);
        add("head.modulation", Init.MODULATION, 1, 2, dim);
        if (v == WanVariant.S2V_14B) {
            s2vExtras(d);
        } else if (v == WanVariant.ANIMATE_14B) {
            animateExtras(d);
        }
    }

    private void s2vExtras(WanDims d) {
        int dim = d.dim();
        add("trainable_cond_mask.weight", Init.EMBEDDING, 3, dim);
        add("cond_encoder.weight", Init.WEIGHT, dim, 16, 1, 2, 2);
        add("cond_encoder.bias", Init.BIAS, dim);
        linear("casual_audio_encoder.encoder.conv1_local.conv", 1024, 1024);
        linear("casual_audio_encoder.encoder.out_proj", dim, 1024);
        linear("casual_audio_encoder.encoder.final_linear", dim, dim);
        int injected = Math.max(1, Math.min(12, d.layers()));
        for (int i = 0; i < injected; i++) {
            String p = "audio_injector.injector." + i + ".";
            for (String m : new String[] {"q", "k", "v", "o"}) {
                linear(p + m, dim, dim);
            }
            add(p + "norm_q.weight", Init.NORM_WEIGHT, dim);
            add(p + "norm_k.weight", Init.NORM_WEIGHT, dim);
            linear("audio_injector.injector_adain_layers." + i + ".linear", 2L * dim, dim);
        }
        add("frame_packer.proj.weight", Init.WEIGHT, dim, 16, 1, 2, 2);
        add("frame_packer.proj_2x.weight", Init.WEIGHT, dim, 16, 2, 4, 4);
        add("frame_packer.proj_4x.weight", Init.WEIGHT, dim, 16, 4, 8, 8);
    }

    private void animateExtras(WanDims d) {
        int dim = d.dim();
        int heads = d.heads();
        int adapters = Math.max(1, d.layers() / 5);
        for (int i = 0; i < adapters; i++) {
            String p = "face_adapter.fuser_blocks." + i + ".";
            linear(p + "linear1_kv", 2L * dim, dim);
            linear(p + "linear1_q", dim, dim);
            linear(p + "linear2", dim, dim);
            add(p + "q_norm.weight", Init.NORM_WEIGHT, dim / heads);
            add(p + "k_norm.weight", Init.NORM_WEIGHT, dim / heads);
        }
        add("face_encoder.conv1_local.conv.weight", Init.WEIGHT, 1024L * 4, 512, 3);
        add("face_encoder.conv1_local.conv.bias", Init.BIAS, 1024L * 4);
        add("face_encoder.conv2.conv.weight", Init.WEIGHT, 1024, 1024, 3);
        add("face_encoder.conv2.conv.bias", Init.BIAS, 1024);
        add("face_encoder.conv3.conv.weight", Init.WEIGHT, 1024, 1024, 3);
        add("face_encoder.conv3.conv.bias", Init.BIAS, 1024);
        linear("face_encoder.out_proj", dim, 1024);
        add("face_encoder.padding_tokens", Init.EMBEDDING, 1, 1, 1, dim);
        add("motion_encoder.dec.direction.weight", Init.WEIGHT, 512, 20);
    }
}
