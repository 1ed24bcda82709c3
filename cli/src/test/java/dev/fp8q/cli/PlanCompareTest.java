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
}
