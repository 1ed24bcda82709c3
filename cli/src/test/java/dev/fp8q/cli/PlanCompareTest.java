package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.testdata.WanNaming;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** plan --compare: the deployments' presets on memory and simulated end-to-end error, which equals verify --whole's. */
class PlanCompareTest {

    @Test
    void presetsAreComparedAndTheSimulationIsWhatVerifyMeasuresAfterConverting(@TempDir Path dir) throws Exception {
        Path src = DropInTest.wan(dir.resolve("t2v.safetensors"), WanNaming.ORIGINAL);
        CliRun r = DropInTest.ok("plan", "--compare", "--json", "--grid", "2,2,2", "--context-tokens", "4", "--timesteps", "500",
                src.toString());
        Map<String, JsonNode> rows = new HashMap<>();
        new ObjectMapper().readTree(r.out()).get("compare").forEach(n -> rows.put(n.get("preset").asText(), n));
        assertEquals(java.util.Set.of("wan", "wan-ffn-only", "wan-modelopt"), rows.keySet());
        assertEquals(20, rows.get("wan").get("fp8_linears").asInt());
        assertEquals(4, rows.get("wan-ffn-only").get("fp8_linears").asInt(), "ffn.0 and ffn.2 of 2 blocks");
        assertEquals(0, rows.get("wan-modelopt").get("fp8_linears").asInt(), "blocks 0 and 1 are in ModelOpt's kept set");
        assertTrue(rows.get("wan-ffn-only").get("sqnr_db_weight_only").asDouble() > rows.get("wan").get("sqnr_db_weight_only").asDouble(),
                "fewer FP8 layers, less error");
        assertTrue(rows.get("wan").get("bytes_after").asLong() < rows.get("wan-ffn-only").get("bytes_after").asLong());

        Path dst = dir.resolve("fp8.safetensors");
        DropInTest.ok("convert", "--quiet", src.toString(), dst.toString());
        Path json = dir.resolve("v.json");
        DropInTest.ok("verify", "--quiet", "--whole", "--device", "cpu", "--grid", "2,2,2", "--context-tokens", "4",
                "--timesteps", "500", "--weights", "none", "--json", json.toString(), src.toString(), dst.toString());
        for (JsonNode c : new ObjectMapper().readTree(json.toFile()).get("checks")) {
            if (c.get("scope").asText().equals("model_output")) {
                String run = c.get("run").asText();
                assertEquals(rows.get("wan").get("sqnr_db_" + run).asDouble(), c.get("metrics").get("sqnr_db").asDouble(), 1e-6,
                        run + ": the simulated preset and the converted checkpoint give the same end-to-end figure");
            }
        }
    }

    @Test
    void qwenImagePresetsGetEndToEndFiguresFromTheSameSeamVerifyRuns(@TempDir Path dir) throws Exception {
        Path src = QwenImageVerifyTest.tinyQwenImage(dir.resolve("qwen.safetensors"), 2);
        CliRun r = DropInTest.ok("plan", "--compare", "--json", "--grid", "1,2,2", "--context-tokens", "3", "--timesteps", "700",
                src.toString());
        Map<String, JsonNode> rows = new HashMap<>();
        new ObjectMapper().readTree(r.out()).get("compare").forEach(n -> rows.put(n.get("preset").asText(), n));
        assertEquals(java.util.Set.of("qwen-image", "qwen-image-sglang"), rows.keySet());
        assertEquals(24, rows.get("qwen-image").get("fp8_linears").asInt(), "12 Linears of 2 blocks");
        assertEquals(22, rows.get("qwen-image-sglang").get("fp8_linears").asInt(), "img_mlp.net.2 kept");
        assertTrue(rows.get("qwen-image-sglang").get("sqnr_db_weight_only").asDouble()
                > rows.get("qwen-image").get("sqnr_db_weight_only").asDouble(), "fewer FP8 layers, less error");

        Path dst = dir.resolve("fp8.safetensors");
        DropInTest.ok("convert", "--quiet", src.toString(), dst.toString());
        Path json = dir.resolve("v.json");
        DropInTest.ok("verify", "--quiet", "--whole", "--sensitivity", "--device", "cpu", "--grid", "1,2,2", "--context-tokens",
                "3", "--timesteps", "700", "--weights", "none", "--json", json.toString(), src.toString(), dst.toString());
        int ranked = 0;
        for (JsonNode c : new ObjectMapper().readTree(json.toFile()).get("checks")) {
            String scope = c.get("scope").asText();
            if (scope.equals("model_output")) {
                String run = c.get("run").asText();
                assertEquals(rows.get("qwen-image").get("sqnr_db_" + run).asDouble(), c.get("metrics").get("sqnr_db").asDouble(),
                        1e-6, run + ": the simulated preset and the converted checkpoint give the same end-to-end figure");
            }
            ranked += scope.equals("sensitivity") ? 1 : 0;
        }
        assertEquals(24 * 2, ranked, "every FP8 Linear alone in FP8, weight-only and W8A8");
    }

    /** --scalings: every preset under each scaling; the MX row's simulation is what verify measures on the MX output. */
    @Test
    void scalingsAreComparedAndTheMxSimulationIsWhatVerifyMeasures(@TempDir Path dir) throws Exception {
        Path src = DropInTest.wan(dir.resolve("t2v.safetensors"), WanNaming.ORIGINAL);
        CliRun r = DropInTest.ok("plan", "--compare", "--json", "--presets", "wan", "--scalings", "tensor,channel,block,mx",
                "--grid", "2,2,2", "--context-tokens", "4", "--timesteps", "500", src.toString());
        Map<String, JsonNode> rows = new HashMap<>();
        new ObjectMapper().readTree(r.out()).get("compare").forEach(n -> rows.put(n.get("scaling").asText(), n));
        assertEquals(java.util.Set.of("tensor", "channel", "block", "mx"), rows.keySet());
        for (JsonNode row : rows.values()) {
            assertEquals(20, row.get("fp8_linears").asInt(), row.toString());
            JsonNode kinds = row.get("weight_sqnr_db");
            assertEquals(java.util.Set.of("attention", "ffn"), iterable(kinds.fieldNames()), row.toString());
            kinds.forEach(db -> assertTrue(db.asDouble() > 25 && db.asDouble() < 40, row.toString()));
        }
        long tensor = rows.get("tensor").get("bytes_after").asLong();
        assertTrue(rows.get("mx").get("bytes_after").asLong() > tensor, "E8M0 scales per 32 values cost more than one per tensor");
        assertTrue(rows.get("mx").get("sqnr_db_w8a8").asDouble() != rows.get("tensor").get("sqnr_db_w8a8").asDouble());

        Path dst = dir.resolve("mx.safetensors");
        DropInTest.ok("convert", "--quiet", "--scaling", "mx", src.toString(), dst.toString());
        Path json = dir.resolve("v.json");
        DropInTest.ok("verify", "--quiet", "--whole", "--device", "cpu", "--grid", "2,2,2", "--context-tokens", "4",
                "--timesteps", "500", "--weights", "none", "--json", json.toString(), src.toString(), dst.toString());
        int compared = 0;
        for (JsonNode c : new ObjectMapper().readTree(json.toFile()).get("checks")) {
            if (c.get("scope").asText().equals("model_output")) {
                String run = c.get("run").asText();
                assertEquals(rows.get("mx").get("sqnr_db_" + run).asDouble(), c.get("metrics").get("sqnr_db").asDouble(), 1e-6,
                        run + ": the simulated MX conversion and the converted MX checkpoint give the same end-to-end figure");
                compared++;
            }
        }
        assertEquals(2, compared, "weight_only and w8a8");
        assertEquals(rows.get("mx").get("bytes_after").asLong(), java.nio.file.Files.size(dst) - headerBytes(dst),
                "plan's bytes after are the MX file's tensor bytes");
    }

    private static java.util.Set<String> iterable(java.util.Iterator<String> it) {
        java.util.Set<String> out = new java.util.TreeSet<>();
        it.forEachRemaining(out::add);
        return out;
    }

    private static long headerBytes(Path file) throws java.io.IOException {
        try (var in = java.nio.file.Files.newInputStream(file)) {
            byte[] b = in.readNBytes(8);
            return 8 + java.nio.ByteBuffer.wrap(b).order(java.nio.ByteOrder.LITTLE_ENDIAN).getLong();
        }
    }
}
