package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.TensorSpec;
import dev.fp8q.testdata.WanNaming;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** fp8q sensitivity: a Linear planted to lose precision under a per-tensor scale ranks first. */
class SensitivityTest {

    static final String PLANTED = "blocks.1.ffn.0";

    /**
     * The tiny checkpoint with one BF16 outlier 2^12 x the layer's amax in PLANTED's row 0: its per-tensor scale then
     * leaves every other weight a few subnormal codes. Column 0 of blocks.1.ffn.2 is zeroed, so the outlier's own
     * hidden unit reaches nothing: what changes downstream is only PLANTED's lost precision.
     */
    static Path planted(Path dir) throws Exception {
        Path plain = DropInTest.wan(dir.resolve("plain.safetensors"), WanNaming.ORIGINAL);
        Path out = dir.resolve("planted.safetensors");
        try (Checkpoint c = Checkpoint.open(plain); Arena arena = Arena.ofConfined()) {
            List<TensorSpec> specs = new ArrayList<>();
            c.tensors().forEach(t -> specs.add(TensorSpec.of(t.entry())));
            try (SafetensorsWriter w = SafetensorsWriter.create(out, null, specs)) {
                for (Checkpoint.Tensor t : c.tensors()) {
                    MemorySegment data = t.data();
                    if (t.name().equals(PLANTED + ".weight")) {
                        data = arena.allocate(data.byteSize()).copyFrom(data);
                        float amax = 0;
                        for (long i = 0; i < t.entry().numel(); i++) {
                            amax = Math.max(amax, Math.abs(Elements.bf16ToFloat(data.getAtIndex(Elements.SHORT, i))));
                        }
                        data.setAtIndex(Elements.SHORT, 0, Elements.floatToBf16(amax * 4096));
                    }
                    if (t.name().equals("blocks.1.ffn.2.weight")) {
                        data = arena.allocate(data.byteSize()).copyFrom(data);
                        long ffn = t.entry().shape()[1];
                        for (long o = 0; o < t.entry().shape()[0]; o++) {
                            data.setAtIndex(Elements.SHORT, o * ffn, (short) 0);
                        }
                    }
                    w.write(t.name(), data);
                }
                w.commit();
            }
        }
        return out;
    }

    @Test
    void aPlantedSensitiveLayerRanksFirst(@TempDir Path dir) throws Exception {
        Path src = planted(dir);
        Path dst = dir.resolve("fp8.safetensors");
        DropInTest.ok("convert", "--quiet", src.toString(), dst.toString());
        Path json = dir.resolve("s.json");
        CliRun r = DropInTest.ok("sensitivity", "--quiet", "--device", "cpu", "--grid", "2,2,2", "--context-tokens", "4",
                "--json", json.toString(), src.toString(), dst.toString());
        assertTrue(r.out().lines().anyMatch(l -> l.startsWith("1 ") && l.contains(PLANTED)), r.out());
        JsonNode all = new ObjectMapper().readTree(json.toFile()).get("ranked");
        assertEquals(2 * 20, all.size(), "20 FP8 Linears, weight-only and W8A8");
        List<JsonNode> ranked = new ArrayList<>();
        all.forEach(n -> {
            if (n.get("run").asText().equals("weight_only")) {
                ranked.add(n);
            }
        });
        assertEquals(PLANTED, ranked.get(0).get("layer").asText());
        double first = ranked.get(0).get("sqnr_db").asDouble();
        assertTrue(first < ranked.get(1).get("sqnr_db").asDouble(), "strictly first");

        Path plain = dir.resolve("plain.safetensors"); // the same layer before planting: its figure fell by far
        Path plainFp8 = dir.resolve("plain-fp8.safetensors");
        DropInTest.ok("convert", "--quiet", plain.toString(), plainFp8.toString());
        Path plainJson = dir.resolve("p.json");
        DropInTest.ok("sensitivity", "--quiet", "--device", "cpu", "--grid", "2,2,2", "--context-tokens", "4",
                "--json", plainJson.toString(), plain.toString(), plainFp8.toString());
        double before = 0;
        for (JsonNode n : new ObjectMapper().readTree(plainJson.toFile()).get("ranked")) {
            if (n.get("run").asText().equals("weight_only") && n.get("layer").asText().equals(PLANTED)) {
                before = n.get("sqnr_db").asDouble();
            }
        }
        assertTrue(first < before - 10, "planted " + first + " dB against " + before + " dB before");
    }
}
