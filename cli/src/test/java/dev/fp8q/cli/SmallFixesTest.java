package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.testdata.WanCheckpoints;
import dev.fp8q.testdata.WanDims;
import dev.fp8q.testdata.WanNaming;
import dev.fp8q.testdata.WanVariant;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Issue 18 item 10: the embedded default's temporary files, testdata make's bounds, inspect's order. */
class SmallFixesTest {

    @Test
    void theEmbeddedDefaultLeavesNothingInTheTempFolder(@TempDir Path dir) throws Exception {
        Path tmp = Files.createDirectory(dir.resolve("tmp"));
        for (List<String> args : List.of(List.of("inspect", "--summary"), List.of("plan"))) {
            List<String> cmd = new ArrayList<>(List.of(ProcessHandle.current().info().command().orElse("java"),
                    "--add-modules", "jdk.incubator.vector", "-Djava.io.tmpdir=" + tmp, "-cp",
                    System.getProperty("java.class.path"), "dev.fp8q.cli.Main"));
            cmd.addAll(args);
            Path log = dir.resolve("child.log");
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            assertTrue(p.waitFor(120, TimeUnit.SECONDS), "child finished");
            assertEquals(0, p.exitValue(), Files.readString(log));
            assertTrue(Files.readString(log).contains("wan"), Files.readString(log));
            try (Stream<Path> left = Files.list(tmp)) {
                assertEquals(List.of(), left.map(f -> f.getFileName().toString()).toList(), "after " + args);
            }
        }
    }

    @Test
    void testdataMakeNamesEachBound(@TempDir Path dir) {
        Path out = dir.resolve("t.safetensors");
        String[][] bad = {
            {"--dim", "100", "--dim must be a multiple of 128 (the head size) from 128 to 65536, not 100"},
            {"--dim", "0", "--dim must be a multiple of 128"},
            {"--dim", "-128", "not -128"},
            {"--ffn", "0", "--ffn must be from 1 to 1048576, not 0"},
            {"--layers", "0", "--layers must be from 1 to 1000, not 0"},
            {"--layers", "-3", "--layers must be from 1 to 1000, not -3"},
            {"--threads", "0", "--threads must be from 1 to 4096, not 0"},
        };
        for (String[] b : bad) {
            CliRun r = CliRun.of("testdata", "make", out.toString(), b[0], b[1]);
            assertEquals(ExitCodes.INPUT_ERROR, r.code(), b[0] + " " + b[1] + ": " + r.err());
            assertTrue(r.err().contains(b[2]), r.err());
            assertFalse(r.err().contains("internal error"), r.err());
            assertFalse(Files.exists(out), "nothing written for " + b[0] + " " + b[1]);
        }
    }

    @Test
    void testdataMakeAcceptsTheBoundsItNames(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("t.safetensors");
        CliRun r = CliRun.of("testdata", "make", out.toString(), "--dim", "256", "--ffn", "1", "--layers", "1",
                "--threads", "1");
        assertEquals(ExitCodes.OK, r.code(), r.err());
        try (Checkpoint c = Checkpoint.open(out)) {
            assertEquals(6 * 256, c.tensor("blocks.0.modulation").orElseThrow().entry().numel());
            assertEquals(256, c.tensor("blocks.0.ffn.0.weight").orElseThrow().entry().numel());
            assertTrue(c.tensor("blocks.1.modulation").isEmpty());
        }
    }

    @Test
    void inspectListsBlocksInNumericOrder(@TempDir Path dir) throws Exception {
        Path f = dir.resolve("twelve.safetensors");
        WanCheckpoints.make(new WanCheckpoints.Request(WanVariant.T2V_A14B, WanNaming.ORIGINAL,
                WanDims.tiny(WanVariant.T2V_A14B).withLayers(12), DType.BF16, 0, false, 0, 2), f);
        CliRun table = CliRun.of("inspect", f.toString());
        assertEquals(0, table.code(), table.err());
        String out = table.out();
        int two = out.indexOf("blocks.2.ffn.0.weight");
        int ten = out.indexOf("blocks.10.ffn.0.weight");
        assertTrue(two > 0 && ten > two, "blocks.2 before blocks.10 in the table");
        assertTrue(out.indexOf("blocks.9.self_attn.v.weight") < out.indexOf("blocks.10.cross_attn.k.bias"), out);

        CliRun json = CliRun.of("inspect", "--json", f.toString());
        List<String> names = new ArrayList<>();
        new ObjectMapper().readTree(json.out()).at("/components/0/tensor_list").forEach(t -> names.add(t.get("name").asText()));
        List<String> natural = new ArrayList<>(names);
        natural.sort(NaturalOrder.INSTANCE);
        assertEquals(natural, names);
        assertTrue(names.indexOf("blocks.2.modulation") < names.indexOf("blocks.11.modulation"), names.toString());
    }

    @Test
    void naturalOrderComparesDigitRunsAsNumbers() {
        List<String> names = new ArrayList<>(List.of("blocks.10.a", "blocks.2.a", "blocks.02.b", "blocks.1.a", "head",
                "blocks.100000000000000000000.a", "blocks.99999999999999999999.a", "blocks.2", "a9", "a10b", "a10a"));
        names.sort(NaturalOrder.INSTANCE);
        assertEquals(List.of("a9", "a10a", "a10b", "blocks.1.a", "blocks.2", "blocks.2.a", "blocks.02.b", "blocks.10.a",
                "blocks.99999999999999999999.a", "blocks.100000000000000000000.a", "head"), names);
        assertTrue(NaturalOrder.INSTANCE.compare("x07", "x7") != 0, "a total order: equal numbers, other text");
    }
}
