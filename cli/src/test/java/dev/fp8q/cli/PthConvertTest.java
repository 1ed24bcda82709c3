package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.formats.testing.PythonReference;
import dev.fp8q.testdata.WanCheckpoints;
import dev.fp8q.testdata.WanDims;
import dev.fp8q.testdata.WanNaming;
import dev.fp8q.testdata.WanVariant;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Converting torch-written .pth files: every byte recomputed from the .pth as fp8q reads it (checked in PthFileTest). */
class PthConvertTest {

    static Path torch(String name) {
        Path p = PythonReference.sharedDir().resolve("testdata/torch").resolve(name);
        Assumptions.assumeTrue(Files.exists(p), "SKIPPED: " + p + " not present");
        return p;
    }

    @Test
    void aWanPthConvertsExactlyAndPassesCheckAndVerify(@TempDir Path dir) throws Exception {
        Path src = torch("wan_tiny_bf16.pth");
        Path dst = dir.resolve("out.safetensors");
        // dim 64 is below Wan's head_dim, so no preset takes it for Wan: the user names the layers
        CliRun r = CliRun.of("convert", "--quiet", "--quantize", "attn\\.[qkvo]\\.weight$", "--quantize", "ffn\\.[02]\\.weight$",
                src.toString(), dst.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(Files.isRegularFile(dst), "a .pth file gives a .safetensors file");
        ConvertCommandTest.assertExact(src, dst);
        Manifest m = Manifest.read(Manifest.locate(dst));
        assertEquals(20, m.totals().quantized(), "q, k, v, o of self and cross attention and 2 FFN, in 2 blocks");
        assertEquals(0, CliRun.of("check", dst.toString()).code());
        CliRun v = CliRun.of("verify", src.toString(), dst.toString());
        assertEquals(0, v.code(), v.out() + v.err());
        assertTrue(v.out().contains("checked per linear"), v.out());
        String out = PythonReference.run("""
                import sys
                from safetensors import safe_open
                with safe_open(sys.argv[1], 'np') as f:
                    print(len(list(f.keys())), f.get_slice('transposed').get_shape())
                """, dst.toString());
        assertEquals("72 [8, 12]", out.strip(), "52 tensors and 20 scales, read by the reference library");
    }

    @Test
    void convWeightsAreQuantizedWeightOnlyWhenAsked(@TempDir Path dir) throws Exception {
        Path src = torch("vae_like_f32.pth");
        Path dst = dir.resolve("vae.safetensors");
        CliRun none = CliRun.of("convert", "--quiet", "--preset", "generic", src.toString(), dst.toString());
        assertEquals(ExitCodes.INPUT_ERROR, none.code(), "conv weights are no Linear of the generic preset: nothing to do");
        assertTrue(none.err().contains("nothing to quantize"), none.err());
        for (String[] how : List.of(new String[] {"--quantize", "weight$"}, new String[] {"--preset", "auto"})) {
            Path q = dir.resolve("vae-fp8" + how[0] + ".safetensors");
            CliRun r = CliRun.of("convert", "--quiet", how[0], how[1], src.toString(), q.toString());
            assertEquals(0, r.code(), r.err());
            Manifest m = Manifest.read(Manifest.locate(q));
            assertEquals(3, m.totals().quantized(), "detected as a VAE, or named by the user");
            for (Manifest.TensorRecord t : m.tensors()) {
                if (t.action().equals("quantize")) {
                    assertEquals(DType.F8_E4M3.name(), t.dtype());
                    assertEquals(5, t.shape().size(), "Conv3d weight");
                    assertTrue(t.rule().contains("weight-only"), t.rule());
                }
            }
            ConvertCommandTest.assertExact(src, q);
        }
    }

    @Test
    void aNestedStateDictConvertsByKey(@TempDir Path dir) throws Exception {
        Path src = torch("nested_dict.pth");
        assertEquals(0, CliRun.of("convert", "--quiet", "--quantize", "ffn\\.[02]\\.weight$", "--key", "model", src.toString(),
                dir.resolve("a.safetensors").toString()).code());
        ConvertCommandTest.assertExact(src, dir.resolve("a.safetensors"));
        CliRun bad = CliRun.of("convert", "--quiet", "--key", "nope", src.toString(), dir.resolve("b").toString());
        assertEquals(2, bad.code());
        assertTrue(bad.err().contains("no dict under key 'nope'"), bad.err());
        CliRun legacy = CliRun.of("convert", "--quiet", torch("legacy_format.pth").toString(), dir.resolve("c").toString());
        assertEquals(2, legacy.code());
        assertTrue(legacy.err().contains("pre-1.6 format"), legacy.err());
        assertTrue(!Files.exists(dir.resolve("b.safetensors")) && !Files.exists(dir.resolve("c.safetensors")));
    }

    @Test
    void aReleaseFolderConvertsItsPthComponentsBesideTheExperts(@TempDir Path dir) throws Exception {
        Path rel = dir.resolve("Wan2.2-T2V-A14B");
        WanCheckpoints.make(new WanCheckpoints.Request(WanVariant.T2V_A14B, WanNaming.ORIGINAL, WanDims.tiny(WanVariant.T2V_A14B),
                DType.BF16, 0, true, 0, 2), rel);
        Files.copy(torch("vae_like_f32.pth"), rel.resolve("Wan2.1_VAE.pth"));
        Path dst = dir.resolve("fp8");
        CliRun r = CliRun.of("convert", "--quiet", rel.toString(), dst.toString());
        assertEquals(0, r.code(), r.err());
        assertArrayEquals(Files.readAllBytes(rel.resolve("Wan2.1_VAE.pth")), Files.readAllBytes(dst.resolve("Wan2.1_VAE.pth")),
                "the VAE is carried unchanged by default");
        Path both = dir.resolve("fp8-vae");
        assertEquals(0, CliRun.of("convert", "--quiet", "--components", "vae", rel.toString(), both.toString()).code());
        assertTrue(Files.exists(both.resolve("Wan2.1_VAE-fp8.safetensors")), "converted beside the experts");
        assertFalse(Files.exists(both.resolve("Wan2.1_VAE.pth")));
        assertTrue(Files.isDirectory(both.resolve("high_noise_model")) && Files.isDirectory(both.resolve("low_noise_model")));
        assertEquals(0, CliRun.of("check", both.toString()).code());
        CliRun v = CliRun.of("verify", "--blocks", "0", rel.toString(), both.toString());
        assertEquals(0, v.code(), v.out() + v.err());
    }
}
