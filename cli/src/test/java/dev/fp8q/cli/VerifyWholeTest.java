package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.TensorSpec;
import dev.fp8q.testdata.WanNaming;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** verify --whole from the command line: timesteps, the experts' ranges, captured latents, bounds, usage. */
class VerifyWholeTest {

    static final String[] SMALL = {"--quiet", "--device", "cpu", "--grid", "2,2,2", "--context-tokens", "4", "--weights", "none"};

    static JsonNode verify(Path src, Path dst, Path json, int code, String... extra) throws Exception {
        List<String> args = new ArrayList<>(List.of("verify", "--whole", "--json", json.toString()));
        args.addAll(List.of(SMALL));
        args.addAll(List.of(extra));
        args.addAll(List.of(src.toString(), dst.toString()));
        CliRun r = CliRun.of(args.toArray(String[]::new));
        assertEquals(code, r.code(), r.out() + r.err());
        return new ObjectMapper().readTree(json.toFile());
    }

    static TreeSet<String> layers(JsonNode report, String scope) {
        TreeSet<String> out = new TreeSet<>();
        report.get("checks").forEach(c -> {
            if (c.get("scope").asText().equals(scope)) {
                out.add(c.get("layer").asText());
            }
        });
        return out;
    }

    @Test
    void chainsTheModelAtTheGivenTimestepsAndHoldsTheOutputToItsBound(@TempDir Path dir) throws Exception {
        Path src = DropInTest.wan(dir.resolve("t2v.safetensors"), WanNaming.ORIGINAL);
        Path dst = dir.resolve("fp8.safetensors");
        DropInTest.ok("convert", "--quiet", src.toString(), dst.toString());
        JsonNode r = verify(src, dst, dir.resolve("a.json"), 0, "--timesteps", "100,900", "--samples", "2");
        assertEquals(new TreeSet<>(List.of("t=100 seed=0", "t=100 seed=1", "t=900 seed=0", "t=900 seed=1")), layers(r, "model_output"));
        long drift = 0;
        for (JsonNode c : r.get("checks")) {
            drift += c.get("scope").asText().equals("drift") ? 1 : 0;
        }
        assertEquals(2 * 4 * 2, drift, "after each of 2 blocks, 4 inputs, 2 FP8 runs");
        JsonNode tight = verify(src, dst, dir.resolve("b.json"), ExitCodes.FAILED_CHECK, "--timesteps", "500",
                "--min-sqnr-db", "model_output=200");
        assertTrue(tight.toString().contains("model_output"));
        assertEquals(ExitCodes.INPUT_ERROR, CliRun.of("verify", "--whole", "--timesteps", "2000", src.toString(), dst.toString()).code());
        assertEquals(ExitCodes.INPUT_ERROR, CliRun.of("verify", "--timesteps", "500", src.toString(), dst.toString()).code());
    }

    @Test
    void eachExpertGetsItsOwnRangeAndCapturedLatentsSetGridAndTimestep(@TempDir Path dir) throws Exception {
        Path rel = dir.resolve("rel");
        ConvertCommandTest.make(rel, dev.fp8q.testdata.WanVariant.T2V_A14B, WanNaming.ORIGINAL, DType.BF16, 0, true);
        Path dst = dir.resolve("rel-fp8");
        DropInTest.ok("convert", "--quiet", rel.toString(), dst.toString());
        JsonNode r = verify(rel, dst, dir.resolve("r.json"), 0);
        TreeSet<Double> high = new TreeSet<>();
        TreeSet<Double> low = new TreeSet<>();
        r.get("checks").forEach(c -> {
            if (c.get("scope").asText().equals("model_output")) {
                double t = Double.parseDouble(c.get("layer").asText().replaceAll("t=(\\d+).*", "$1"));
                (c.get("component").asText().equals("high_noise_model") ? high : low).add(t);
            }
        });
        assertEquals(3, high.size());
        assertEquals(3, low.size());
        assertTrue(high.first() >= 875 && low.last() < 875, high + " / " + low);

        Path latents = dir.resolve("latents.safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.create(latents, null, List.of(
                new TensorSpec("latents", DType.F32, new long[] {16, 1, 4, 6}), new TensorSpec("timestep", DType.F32, new long[0])));
                Arena arena = Arena.ofConfined()) {
            MemorySegment l = arena.allocate(4L * 16 * 1 * 4 * 6);
            for (int i = 0; i < 16 * 1 * 4 * 6; i++) {
                l.setAtIndex(Elements.FLOAT, i, (float) Math.sin(i));
            }
            MemorySegment t = arena.allocate(4);
            t.set(Elements.FLOAT, 0, 300f);
            w.write("latents", l);
            w.write("timestep", t);
            w.commit();
        }
        Path src = rel.resolve("low_noise_model/diffusion_pytorch_model.safetensors");
        Path one = dir.resolve("one.safetensors");
        DropInTest.ok("convert", "--quiet", src.toString(), one.toString());
        JsonNode c = verify(src, one, dir.resolve("c.json"), 0, "--latents", latents.toString());
        assertEquals(new TreeSet<>(List.of("t=300 seed=0")), layers(c, "model_output"), "the captured timestep");
        assertTrue(c.toString().contains("grid 1x2x3"), "the grid from the latents' [F, H/2, W/2]");
    }
}
