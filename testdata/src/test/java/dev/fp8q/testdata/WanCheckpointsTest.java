package dev.fp8q.testdata;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Amax;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.testing.PythonReference;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WanCheckpointsTest {

    @Test
    void theEmbeddedDefaultIsWhatTheGeneratorMakes(@TempDir Path dir) throws Exception {
        Path fresh = dir.resolve("fresh.safetensors");
        WanCheckpoints.make(WanCheckpoints.tinyDefault(), fresh);
        byte[] embedded;
        try (InputStream in = WanCheckpoints.class.getResourceAsStream(WanCheckpoints.EMBEDDED)) {
            embedded = in.readAllBytes();
        }
        assertArrayEquals(embedded, Files.readAllBytes(fresh), "regenerate with: ./fp8q testdata make OUT");
    }

    @Test
    void outputDoesNotDependOnThreadCount(@TempDir Path dir) throws Exception {
        var r = new WanCheckpoints.Request(WanVariant.TI2V_5B, WanNaming.DIFFUSERS,
                WanDims.tiny(WanVariant.TI2V_5B).withDim(256, 1024 * 3), DType.F32, 0, false, 7, 1);
        WanCheckpoints.make(r, dir.resolve("a.safetensors"));
        WanCheckpoints.make(new WanCheckpoints.Request(r.variant(), r.naming(), r.dims(), r.dtype(), 0, false, 7, 4),
                dir.resolve("b.safetensors"));
        assertArrayEquals(Files.readAllBytes(dir.resolve("a.safetensors")), Files.readAllBytes(dir.resolve("b.safetensors")));
    }

    @Test
    void fullT2vShapesGiveThePublishedParameterCounts() {
        List<WanLayout.Spec> specs = WanLayout.of(WanVariant.T2V_A14B, WanDims.full(WanVariant.T2V_A14B), WanNaming.ORIGINAL);
        long block0 = 0;
        long all = 0;
        for (WanLayout.Spec s : specs) {
            long n = SyntheticWriter.numel(s.shape());
            all += n;
            if (s.name().startsWith("blocks.0.")) {
                block0 += n;
            }
        }
        assertEquals(351_394_304L, block0);
        assertEquals(14_288_491_584L, all);
    }

    @Test
    void diffusersNamesAreTheDiffusersOnes() {
        Set<String> names = new HashSet<>();
        WanLayout.of(WanVariant.I2V_A14B, WanDims.tiny(WanVariant.I2V_A14B), WanNaming.DIFFUSERS).forEach(s -> names.add(s.name()));
        for (String n : List.of("blocks.0.attn1.to_q.weight", "blocks.0.attn1.to_out.0.weight", "blocks.1.attn2.norm_k.weight",
                "blocks.0.ffn.net.0.proj.weight", "blocks.0.ffn.net.2.bias", "blocks.0.norm2.weight", "blocks.0.scale_shift_table",
                "proj_out.weight", "scale_shift_table", "condition_embedder.time_proj.weight",
                "condition_embedder.text_embedder.linear_2.bias", "condition_embedder.time_embedder.linear_1.weight", "patch_embedding.weight")) {
            assertTrue(names.contains(n), n);
        }
        assertTrue(names.stream().noneMatch(n -> n.contains("self_attn") || n.contains("head.") || n.contains("norm3")), names.toString());
    }

    @Test
    void weightsLookTrained(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("w.safetensors");
        WanCheckpoints.make(new WanCheckpoints.Request(WanVariant.T2V_A14B, WanNaming.ORIGINAL,
                WanDims.tiny(WanVariant.T2V_A14B).withDim(512, 1024), DType.BF16, 0, false, 3, 2), f);
        try (Checkpoint cp = Checkpoint.open(f)) {
            var t = cp.tensor("blocks.0.ffn.0.weight").orElseThrow();
            long n = t.entry().numel();
            double sum2 = 0;
            for (long i = 0; i < n; i++) {
                double v = Elements.get(t.data(), DType.BF16, i);
                sum2 += v * v;
            }
            double std = Math.sqrt(sum2 / n);
            assertEquals(0.02, std, 0.003, "std");
            float amax = Amax.of(t.data(), DType.BF16).amax();
            assertTrue(amax > 0.02 * 8, "rare large outliers set amax: " + amax);
            var norm = cp.tensor("blocks.0.norm3.weight").orElseThrow();
            assertEquals(1.0, Elements.get(norm.data(), DType.BF16, 0), 0.6);
        }
    }

    @Test
    void shardedReleaseWithTwoExpertsReadsBackAndOpensInTheReferenceLibrary(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("release");
        List<Path> files = WanCheckpoints.make(new WanCheckpoints.Request(WanVariant.T2V_A14B, WanNaming.ORIGINAL,
                WanDims.tiny(WanVariant.T2V_A14B), DType.F32, 400_000, true, 0, 2), out);
        assertTrue(files.size() >= 6, "several shards per expert: " + files);
        for (String expert : List.of("high_noise_model", "low_noise_model")) {
            Path d = out.resolve(expert);
            assertTrue(Files.exists(d.resolve("diffusion_pytorch_model.safetensors.index.json")));
            try (Checkpoint cp = Checkpoint.open(d)) {
                assertEquals(69, cp.size());
                assertTrue(cp.shards().size() >= 3);
                assertTrue(cp.tensors().stream().allMatch(t -> t.entry().dtype() == DType.F32));
            }
        }
        PythonReference.require();
        String out2 = PythonReference.run("""
                import sys, json, os
                from safetensors import safe_open
                d = sys.argv[1]
                idx = json.load(open(os.path.join(d, 'diffusion_pytorch_model.safetensors.index.json')))
                n = 0
                for shard in sorted(set(idx['weight_map'].values())):
                    with safe_open(os.path.join(d, shard), 'np') as f:
                        for k in f.keys():
                            assert idx['weight_map'][k] == shard
                            f.get_tensor(k); n += 1
                print(n, idx['metadata']['total_size'])
                """, out.resolve("low_noise_model").toString());
        assertEquals("69 " + 597_440 * 4, out2.strip());
    }
}
