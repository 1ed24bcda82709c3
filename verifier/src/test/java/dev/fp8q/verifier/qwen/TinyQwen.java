package dev.fp8q.verifier.qwen;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.TensorSpec;
import dev.fp8q.testdata.QwenImageLayout;
import dev.fp8q.verifier.weights.TensorValues;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.regex.Pattern;

/**
 * A tiny BF16 checkpoint with Qwen-Image's names (FORMATS.md section 5) and biases as diffusers has them:
 * dim 256 (2 heads of 128), MLP 4 x dim, text features of TEXT_DIM, 16 latent channels in 2x2 patches.
 */
final class TinyQwen {

    static final int DIM = 256;
    static final int TEXT_DIM = 64;
    static final int PATCH_IN = 64;
    static final Pattern FP8 = Pattern.compile("transformer_blocks\\.\\d+\\.(attn\\.(to_[qkv]|to_out\\.0|add_[qkv]_proj"
            + "|to_add_out)|(img|txt)_mlp\\.net\\.(0\\.proj|2))\\.weight$");

    private TinyQwen() {}

    /** name -> shape, in testdata's order (the checkpoint's draws follow it). */
    static Map<String, long[]> shapes(int blocks, int dim) {
        Map<String, long[]> s = new LinkedHashMap<>();
        QwenImageLayout.transformer(new QwenImageLayout.Dims(dim, blocks, TEXT_DIM)).forEach(spec -> s.put(spec.name(), spec.shape()));
        return s;
    }

    /** Writes the checkpoint: Linear weights N(0, 1/in), biases N(0, 0.1^2), norm weights 1 + N(0, 0.1^2). */
    static Path write(Path file, int blocks, long seed) throws Exception {
        return write(file, blocks, seed, DIM);
    }

    /** The same at another dim (a multiple of 128). */
    static Path write(Path file, int blocks, long seed, int dim) throws Exception {
        SplittableRandom r = new SplittableRandom(seed);
        Map<String, long[]> shapes = shapes(blocks, dim);
        List<TensorSpec> specs = new ArrayList<>();
        shapes.forEach((n, sh) -> specs.add(new TensorSpec(n, DType.BF16, sh)));
        try (Arena arena = Arena.ofConfined(); SafetensorsWriter w = SafetensorsWriter.create(file, Map.of(), specs)) {
            for (var e : shapes.entrySet()) {
                long[] sh = e.getValue();
                int numel = (int) (sh.length == 2 ? sh[0] * sh[1] : sh[0]);
                boolean norm = e.getKey().contains("norm") && e.getKey().endsWith(".weight") && sh.length == 1;
                double std = sh.length == 2 ? 1 / Math.sqrt(sh[1]) : 0.1;
                if (e.getKey().contains("_mod.1.weight")) {
                    std *= 0.5; // keeps shift/scale/gate around 0.3, as trained modulation is
                }
                MemorySegment seg = arena.allocate(2L * numel);
                for (int i = 0; i < numel; i++) {
                    float v = (float) ((norm ? 1 : 0) + r.nextGaussian() * std);
                    seg.setAtIndex(Elements.SHORT, i, Elements.floatToBf16(v));
                }
                w.write(e.getKey(), seg);
            }
            w.commit();
        }
        return file;
    }

    /** A per-tensor FP8 copy written by the Wan figures test's own few lines (amax / 448, round to nearest even). */
    static Path quantize(Path src, Path dst) throws Exception {
        dev.fp8q.verifier.wan.VerifierFiguresTest.quantize(src, dst, FP8);
        return dst;
    }

    /** Every tensor's values, FP8 ones dequantized with their "_scale". */
    static Map<String, float[]> values(Path file) throws Exception {
        Map<String, float[]> out = new HashMap<>();
        try (Checkpoint c = Checkpoint.open(file)) {
            for (Checkpoint.Tensor t : c.tensors()) {
                float[] v = TensorValues.of(t);
                var scale = c.tensor(t.name() + "_scale");
                if (scale.isPresent()) {
                    float s = scale.get().data().get(Elements.FLOAT, 0);
                    for (int i = 0; i < v.length; i++) {
                        v[i] *= s;
                    }
                }
                out.put(t.name(), v);
            }
        }
        return out;
    }
}
