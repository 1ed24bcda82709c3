package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.testing.PythonReference;
import dev.fp8q.testdata.WanCheckpoints;
import dev.fp8q.testdata.WanDims;
import dev.fp8q.testdata.WanNaming;
import dev.fp8q.testdata.WanVariant;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InspectCommandTest {

    static final ObjectMapper JSON = new ObjectMapper();

    @Test
    void theEmbeddedDefaultIsAWanT2vCheckpoint() throws Exception {
        CliRun r = CliRun.of("inspect", "--json");
        assertEquals(0, r.code(), r.err());
        JsonNode c = JSON.readTree(r.out()).get("components").get(0);
        assertEquals("wan", c.get("model").get("family").asText());
        assertEquals("t2v", c.get("model").get("variant").asText());
        assertEquals("original", c.get("model").get("naming").asText());
        assertEquals(69, c.get("tensors").asInt());
        assertEquals(597_440 * 2, c.get("bytes").asLong());
        assertEquals(597_440 * 2, c.get("dtypes").get("BF16").get("bytes").asLong());
    }

    @Test
    void tableShowsEveryTensorAndTotals() {
        CliRun r = CliRun.of("inspect");
        assertEquals(0, r.code());
        assertTrue(r.out().contains("wan t2v (original naming, dim 128, 2 blocks"), r.out());
        assertTrue(r.out().contains("blocks.1.ffn.2.weight") && r.out().contains("[128, 256]"), r.out());
        assertTrue(r.out().contains("597,440 parameters"), r.out());
        assertEquals("", r.err());
    }

    @Test
    void everyVariantAndNamingIsDetected(@TempDir Path dir) throws Exception {
        for (WanVariant v : WanVariant.values()) {
            for (WanNaming n : WanNaming.values()) {
                Path f = dir.resolve(v.id + "-" + n + ".safetensors");
                WanCheckpoints.make(new WanCheckpoints.Request(v, n, WanDims.tiny(v), DType.BF16, 0, false, 0, 2), f);
                CliRun r = CliRun.of("inspect", "--json", f.toString());
                assertEquals(0, r.code(), r.err());
                JsonNode m = JSON.readTree(r.out()).get("components").get(0).get("model");
                String expect = v.id.substring(0, v.id.indexOf('-'));
                assertEquals(expect, m.get("variant").asText(), f.toString());
                assertEquals(n.name().toLowerCase(), m.get("naming").asText(), f.toString());
                assertEquals(128, m.get("dim").asInt());
                assertEquals(2, m.get("blocks").asInt());
            }
        }
    }

    @Test
    void releaseFolderListsEachExpert(@TempDir Path dir) throws Exception {
        Path rel = dir.resolve("Wan2.2-T2V-A14B");
        WanCheckpoints.make(new WanCheckpoints.Request(WanVariant.T2V_A14B, WanNaming.ORIGINAL, WanDims.tiny(WanVariant.T2V_A14B),
                DType.BF16, 300_000, true, 0, 2), rel);
        Path vae = PythonReference.sharedDir().resolve("testdata/torch/vae_like_f32.pth");
        Assumptions.assumeTrue(Files.exists(vae), "SKIPPED: " + vae + " not present");
        Files.copy(vae, rel.resolve("Wan2.1_VAE.pth"));
        CliRun r = CliRun.of("inspect", "--json", rel.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode root = JSON.readTree(r.out());
        assertEquals(3, root.get("components").size(), "two experts and the VAE");
        assertEquals("high_noise_model", root.get("components").get(1).get("component").asText());
        assertTrue(root.get("components").get(1).get("sharded").asBoolean());
        assertEquals("Wan2.1_VAE", root.get("components").get(0).get("component").asText(), "sorted by file name");
        // the index file itself and one shard folder work too
        Path idx = rel.resolve("low_noise_model/diffusion_pytorch_model.safetensors.index.json");
        assertEquals(0, CliRun.of("inspect", "--summary", idx.toString()).code());
    }

    @Test
    void malformedInputIsOneLineAndExitTwo(@TempDir Path dir) throws Exception {
        Path bad = dir.resolve("bad.safetensors");
        Files.write(bad, new byte[] {16, 0, 0, 0, 0, 0, 0, 0, '{', '"', 'a', '"', ':', '1', '}', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '});
        CliRun r = CliRun.of("inspect", bad.toString());
        assertEquals(ExitCodes.INPUT_ERROR, r.code());
        assertEquals(1, r.err().strip().lines().count(), r.err());
        assertTrue(r.err().contains(bad.toString()) && r.err().contains("invalid header JSON"), r.err());
        assertFalse(r.err().contains("\tat "), "no stack trace");
        CliRun v = CliRun.of("inspect", "--verbose", bad.toString());
        assertEquals(ExitCodes.INPUT_ERROR, v.code());
        assertTrue(v.err().contains("\tat "), "--verbose shows the trace");
    }

    @Test
    void hostileIndexIsRefusedByName(@TempDir Path dir) throws Exception {
        Path d = dir.resolve("ckpt");
        WanCheckpoints.make(new WanCheckpoints.Request(WanVariant.T2V_A14B, WanNaming.ORIGINAL, WanDims.tiny(WanVariant.T2V_A14B),
                DType.BF16, 300_000, false, 0, 1), d);
        Path idx = d.resolve("diffusion_pytorch_model.safetensors.index.json");
        String s = Files.readString(idx);
        Files.writeString(idx, s.replaceFirst("\"diffusion_pytorch_model-00001-of-", "\"../diffusion_pytorch_model-00001-of-"));
        CliRun r = CliRun.of("inspect", d.toString());
        assertEquals(ExitCodes.INPUT_ERROR, r.code());
        assertTrue(r.err().contains("leaves the folder"), r.err());
        Files.writeString(idx, s.replaceFirst("\"diffusion_pytorch_model-00001-of-", "\"/tmp/diffusion_pytorch_model-00001-of-"));
        CliRun abs = CliRun.of("inspect", d.toString());
        assertEquals(ExitCodes.INPUT_ERROR, abs.code());
        assertTrue(abs.err().contains("leaves the folder"), abs.err());
        // a shard that is a symlink to a file outside the folder: its name is clean, its target is not
        String shard;
        try (var files = Files.list(d)) {
            shard = files.map(f -> f.getFileName().toString()).filter(n -> n.startsWith("diffusion_pytorch_model-00001"))
                    .findFirst().orElseThrow();
        }
        Files.writeString(idx, s);
        Path outside = Files.move(d.resolve(shard), dir.resolve(shard));
        Files.createSymbolicLink(d.resolve(shard), outside);
        CliRun link = CliRun.of("inspect", d.toString());
        assertEquals(ExitCodes.INPUT_ERROR, link.code());
        assertTrue(link.err().contains("leaves the folder") && link.err().contains("resolves to " + outside.toRealPath()), link.err());
        Files.delete(d.resolve(shard));
        Files.move(outside, d.resolve(shard));
        Files.writeString(idx, s.replaceFirst("\"blocks.0.ffn.0.weight\"", "\"blocks.0.ffn.0.weight.missing\""));
        CliRun m = CliRun.of("inspect", d.toString());
        assertEquals(ExitCodes.INPUT_ERROR, m.code());
        assertTrue(m.err().contains("index"), m.err());
    }

    @Test
    void realMiniLmWeightsAreBert() throws Exception {
        Path real = PythonReference.sharedDir().resolve("testdata/real/all-minilm-l6-v2-layers0-1-bf16.safetensors");
        Assumptions.assumeTrue(Files.exists(real), "SKIPPED: " + real + " not present");
        CliRun r = CliRun.of("inspect", "--json", real.toString());
        assertEquals(0, r.code(), r.err());
        JsonNode c = JSON.readTree(r.out()).get("components").get(0);
        assertEquals("bert", c.get("model").get("family").asText());
        assertTrue(c.get("parameters").asLong() > 3_000_000);
    }

    @Test
    void missingPathAndBadUsage() {
        assertEquals(ExitCodes.INPUT_ERROR, CliRun.of("inspect", "/no/such/file.safetensors").code());
        assertEquals(ExitCodes.INPUT_ERROR, CliRun.of("inspect", "--no-such-flag").code());
        assertEquals(ExitCodes.INPUT_ERROR, CliRun.of("testdata", "make", "/tmp/x", "--variant", "nope").code());
    }
}
