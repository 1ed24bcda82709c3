package dev.fp8q.cli;

import dev.fp8q.converter.plan.UserRules;
import dev.fp8q.converter.quant.Scaling;
import dev.fp8q.formats.lora.LoraSpec;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Option;

/** The options plan and convert share: preset, components, the user's rules and the scaling. */
final class ConversionOptions {

    @Option(names = "--preset", defaultValue = "auto", description = "auto, wan, qwen-image, qwen-image-sglang, t5, weight-only or generic (default: ${DEFAULT-VALUE}); it names the transformer's preset, other components get theirs by kind")
    String preset;

    @Option(names = "--components", split = ",", paramLabel = "NAME",
            description = "Also convert these components of a folder (names, or kinds: text_encoder, vae, all); by default only the diffusion transformers are, and the rest is copied unchanged.")
    List<String> components = new ArrayList<>();

    @Option(names = "--ignore", paramLabel = "REGEX", description = "Keep matching tensors in high precision (repeatable).")
    List<String> ignore = new ArrayList<>();

    @Option(names = "--quantize", paramLabel = "REGEX", description = "Quantize matching weights (repeatable); also Conv2d/Conv3d weights, stored weight-only with one scale.")
    List<String> quantize = new ArrayList<>();

    @Option(names = "--rules", paramLabel = "FILE", description = "JSON rules file: {\"ignore\": [...], \"quantize\": [...], \"loras\": [\"FILE[:STRENGTH]\", ...]}")
    Path rules;

    @Option(names = "--scaling", defaultValue = "tensor", paramLabel = "GRANULARITY",
            description = "tensor, channel (one scale per output row), block (128x128 tiles) or mx (MXFP8: one E8M0 scale per 32 "
                    + "values of a row; layouts comfy, compressed-tensors, modelopt) (default: ${DEFAULT-VALUE})")
    String scaling;

    @Option(names = "--pow2-scales", description = "Round each scale up to a power of two (Transformer Engine's block recipe).")
    boolean pow2;

    @Option(names = "--key", paramLabel = "KEY", description = "In a .pth that nests its state dict, the top-level key that holds it (e.g. model).")
    String pthKey;

    @Option(names = "--lora", paramLabel = "FILE[:STRENGTH]",
            description = "Merge this LoRA into the weights before quantizing (repeatable, applied in order; strength default 1.0): W + strength * alpha / rank * up @ down in float64, rounded once.")
    List<String> lora = new ArrayList<>();

    @Option(names = "--lora-lenient", description = "List LoRA keys that match no weight or do not fit it, and go on without them (default: refuse).")
    boolean loraLenient;

    Scaling scaling() {
        try {
            return Scaling.parse(scaling, pow2);
        } catch (IllegalArgumentException e) {
            throw new Fp8q.UsageException("--scaling: " + e.getMessage());
        }
    }

    /** The rules file's LoRAs, then --lora's, in order. */
    List<LoraSpec> loras() throws java.io.IOException {
        List<LoraSpec> out = new ArrayList<>(rules != null ? UserRules.loras(rules) : List.of());
        for (String l : lora) {
            try {
                out.add(LoraSpec.parse(l));
            } catch (IllegalArgumentException e) {
                throw new Fp8q.UsageException(e.getMessage());
            }
        }
        return out;
    }

    UserRules userRules() throws java.io.IOException {
        return rules != null ? UserRules.read(rules, ignore, quantize) : UserRules.of(ignore, quantize);
    }
}
