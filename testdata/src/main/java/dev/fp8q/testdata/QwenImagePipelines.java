package dev.fp8q.testdata;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.FormatException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Synthetic Qwen-Image checkpoints: the transformer alone (a file), or a whole diffusers pipeline folder
 * (model_index.json, transformer/, text_encoder/, vae/, tokenizer/, scheduler/) as Qwen-Image and
 * Qwen-Image-Edit publish it.
 */
public final class QwenImagePipelines {

    private QwenImagePipelines() {}

    /** The transformer alone, as one file or shards under out. */
    public static List<Path> transformer(QwenImageLayout.Dims d, DType dtype, long seed, Path out, long shardBytes,
            int threads) throws IOException, FormatException {
        return SyntheticWriter.write(QwenImageLayout.transformer(d), dtype, seed, out, WanCheckpoints.PREFIX, shardBytes, threads);
    }

    /** A pipeline folder; edit: Qwen-Image-Edit's pipeline class. */
    public static List<Path> pipeline(QwenImageLayout.Dims d, DType dtype, long seed, Path out, boolean edit, int threads)
            throws IOException, FormatException {
        List<Path> files = new ArrayList<>();
        String pipelineClass = edit ? "QwenImageEditPipeline" : "QwenImagePipeline";
        files.add(write(out.resolve("model_index.json"), """
                {
                  "_class_name": "%s",
                  "_diffusers_version": "0.35.0",
                  "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
                  "text_encoder": ["transformers", "Qwen2_5_VLForConditionalGeneration"],
                  "tokenizer": ["transformers", "Qwen2Tokenizer"],
                  %s"transformer": ["diffusers", "QwenImageTransformer2DModel"],
                  "vae": ["diffusers", "AutoencoderKLQwenImage"]
                }
                """.formatted(pipelineClass, edit ? "\"processor\": [\"transformers\", \"Qwen2VLProcessor\"],\n  " : "")));
        files.addAll(SyntheticWriter.write(QwenImageLayout.transformer(d), dtype, seed,
                out.resolve("transformer/diffusion_pytorch_model.safetensors"), WanCheckpoints.PREFIX, 0, threads));
        files.add(write(out.resolve("transformer/config.json"), """
                {"_class_name": "QwenImageTransformer2DModel", "_diffusers_version": "0.35.0", "attention_head_dim": 128,
                 "in_channels": 64, "joint_attention_dim": %d, "num_attention_heads": %d, "num_layers": %d,
                 "out_channels": 16, "patch_size": 2}
                """.formatted(d.textDim(), d.dim() / 128, d.layers())));
        files.addAll(SyntheticWriter.write(QwenImageLayout.textEncoder(d), dtype, seed + 1,
                out.resolve("text_encoder/model.safetensors"), "model", 0, threads));
        files.add(write(out.resolve("text_encoder/config.json"), """
                {"architectures": ["Qwen2_5_VLForConditionalGeneration"], "hidden_size": %d, "model_type": "qwen2_5_vl",
                 "vision_config": {"model_type": "qwen2_5_vl", "depth": 1}}
                """.formatted(d.textDim())));
        files.add(write(out.resolve("text_encoder/generation_config.json"), "{\"do_sample\": false}\n"));
        files.addAll(SyntheticWriter.write(QwenImageLayout.vae(), dtype, seed + 2,
                out.resolve("vae/diffusion_pytorch_model.safetensors"), WanCheckpoints.PREFIX, 0, threads));
        files.add(write(out.resolve("vae/config.json"), "{\"_class_name\": \"AutoencoderKLQwenImage\", \"z_dim\": 16}\n"));
        files.add(write(out.resolve("tokenizer/tokenizer_config.json"), "{\"model_max_length\": 1024}\n"));
        files.add(write(out.resolve("tokenizer/vocab.json"), "{\"a\": 0}\n"));
        files.add(write(out.resolve("scheduler/scheduler_config.json"),
                "{\"_class_name\": \"FlowMatchEulerDiscreteScheduler\", \"shift\": 1.0}\n"));
        if (edit) {
            files.add(write(out.resolve("processor/preprocessor_config.json"), "{\"patch_size\": 14}\n"));
        }
        return files;
    }

    private static Path write(Path file, String text) throws IOException {
        Files.createDirectories(file.getParent());
        Files.writeString(file, text);
        return file;
    }
}
