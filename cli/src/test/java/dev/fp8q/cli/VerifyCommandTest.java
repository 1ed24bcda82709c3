package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.safetensors.SafetensorsFile;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.TensorSpec;
import dev.fp8q.formats.testing.PythonReference;
import dev.fp8q.testdata.WanNaming;
import dev.fp8q.testdata.WanVariant;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;

class VerifyCommandTest {

    static final String[] SMALL = {"--quiet", "--grid", "2,4,4", "--context-tokens", "32"};

    static Path convert(Path dir, WanNaming naming, DType dtype) throws Exception {
        Path src = ConvertCommandTest.make(dir.resolve("src-" + naming + "-" + dtype + ".safetensors"), WanVariant.T2V_A14B,
                naming, dtype, 0, false);
        Path dst = dir.resolve("fp8-" + naming + "-" + dtype + ".safetensors");
        assertEquals(0, CliRun.of("convert", "--quiet", src.toString(), dst.toString()).code());
        return src;
    }

    static CliRun verify(Path src, Path dst, String... extra) {
        List<String> args = new ArrayList<>(List.of("verify", src.toString(), dst.toString()));
        args.addAll(List.of(SMALL));
        args.addAll(List.of(extra));
        return CliRun.of(args.toArray(String[]::new));
    }

    /** The FP8 file a conversion wrote: DST itself, since a file SRC gives a file. */
    static Path fp8File(Path src, Path dst) {
        return dst;
    }

    /** Absolute file offset of a tensor's first byte. */
    static long offset(Path file, String tensor) throws Exception {
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            return f.header().dataStart() + f.tensor(tensor).orElseThrow().begin();
        }
    }

    static void overwrite(Path file, long pos, byte[] bytes) throws Exception {
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.seek(pos);
            raf.write(bytes);
        }
    }

    static Document junit(Path xml) throws Exception {
        return DocumentBuilderFactory.newInstance().newDocumentBuilder().parse(xml.toFile());
    }

    @Test
    void correctConversionsPassInBothNamingsAndDtypesWithEveryReport(@TempDir Path dir) throws Exception {
        for (WanNaming n : WanNaming.values()) {
            for (DType dt : List.of(DType.BF16, DType.F32)) {
                Path src = convert(dir, n, dt);
                Path dst = dir.resolve("fp8-" + n + "-" + dt + ".safetensors");
                Path xml = dir.resolve(n + "-" + dt + ".xml");
                Path json = dir.resolve(n + "-" + dt + ".json");
                Path md = dir.resolve(n + "-" + dt + ".md");
                CliRun r = verify(src, dst, "--junit", xml.toString(), "--json", json.toString(), "--markdown",
                        md.toString());
                assertEquals(ExitCodes.OK, r.code(), r.out() + r.err());
                assertTrue(r.out().contains("wan (" + n.name().toLowerCase() + " naming), blocks [0, 1]"), r.out());
                assertTrue(r.out().contains("PASS"), r.out());
                Document d = junit(xml);
                NodeList cases = d.getElementsByTagName("testcase");
                assertEquals(Integer.parseInt(d.getDocumentElement().getAttribute("tests")), cases.getLength());
                assertEquals(0, d.getElementsByTagName("failure").getLength());
                // 20 weights + 2 blocks x (10 linears x 2 runs + 2 block checks x 2 runs)
                assertEquals(20 + 2 * (20 + 4), cases.getLength());
                JsonNode j = new ObjectMapper().readTree(json.toFile());
                assertTrue(j.at("/summary/passed").asBoolean());
                assertEquals(cases.getLength(), j.at("/checks").size());
                assertTrue(j.at("/summary/gflop").asDouble() > 0);
                assertTrue(Files.readString(md).contains("**PASS**"));
            }
        }
    }

    @Test
    void scaleOffBy2xFailsAndIsNamedEvenWithoutTheWeightCheck(@TempDir Path dir) throws Exception {
        Path src = convert(dir, WanNaming.ORIGINAL, DType.BF16);
        Path dst = dir.resolve("fp8-ORIGINAL-BF16.safetensors");
        Path f = fp8File(src, dst);
        long pos = offset(f, "blocks.1.ffn.2.weight_scale");
        float scale;
        try (SafetensorsFile sf = SafetensorsFile.open(f)) {
            scale = sf.data(sf.tensor("blocks.1.ffn.2.weight_scale").orElseThrow()).get(Elements.FLOAT, 0);
        }
        overwrite(f, pos, ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN).putFloat(2 * scale).array());
        Path xml = dir.resolve("v.xml");
        CliRun r = verify(src, dst, "--junit", xml.toString());
        assertEquals(ExitCodes.FAILED_CHECK, r.code(), r.out());
        assertTrue(r.out().contains("weight blocks.1.ffn.2.weight: SQNR"), r.out());
        assertTrue(r.out().contains("manifest blocks.1.ffn.2.weight: manifest scale"), r.out());
        Element failure = (Element) junit(xml).getElementsByTagName("failure").item(0);
        assertTrue(failure.getAttribute("message").contains("SQNR") || failure.getAttribute("message").contains("manifest"));

        CliRun blocksOnly = verify(src, dst, "--weights", "none");
        assertEquals(ExitCodes.FAILED_CHECK, blocksOnly.code(), blocksOnly.out());
        assertTrue(blocksOnly.out().contains("linear block 1 blocks.1.ffn.2 weight_only"), blocksOnly.out());
        assertTrue(blocksOnly.out().contains("linear block 1 blocks.1.ffn.2 w8a8"), blocksOnly.out());
        assertFalse(blocksOnly.out().contains("block 0 weight_only:"), "block 0 is intact: " + blocksOnly.out());
    }

    @Test
    void flippedBytesInOneWeightFailByName(@TempDir Path dir) throws Exception {
        Path src = convert(dir, WanNaming.DIFFUSERS, DType.BF16);
        Path dst = dir.resolve("fp8-DIFFUSERS-BF16.safetensors");
        Path f = fp8File(src, dst);
        String name = "blocks.0.attn1.to_k.weight";
        long pos = offset(f, name) + 777;
        byte[] b = new byte[3];
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "r")) {
            raf.seek(pos);
            raf.readFully(b);
        }
        for (int i = 0; i < 3; i++) {
            b[i] ^= 0x40;
        }
        overwrite(f, pos, b);
        CliRun r = verify(src, dst, "--blocks", "1");
        assertEquals(ExitCodes.FAILED_CHECK, r.code(), r.out());
        assertTrue(r.out().contains("weight " + name + ": SQNR") && r.out().contains("3 codes more than one step"), r.out());

        // One step off (the lowest bit): another rounding on a foreign file, damage on fp8q's own.
        overwrite(f, pos, new byte[] {(byte) (b[0] ^ 0x40), b[1], b[2]});
        byte[] low = {(byte) ((b[0] ^ 0x40) ^ 0x01)};
        overwrite(f, pos, low);
        overwrite(f, pos + 1, new byte[] {(byte) (b[1] ^ 0x40), (byte) (b[2] ^ 0x40)});
        CliRun one = verify(src, dst, "--blocks", "1");
        assertEquals(ExitCodes.FAILED_CHECK, one.code(), one.out());
        assertTrue(one.out().contains("weight " + name + ": 1 codes one step from the exact encoding > 0"), one.out());
    }

    @Test
    void aLayerQuantizedWithTheWrongScaleFails(@TempDir Path dir) throws Exception {
        Path src = convert(dir, WanNaming.ORIGINAL, DType.F32);
        Path dst = dir.resolve("fp8-ORIGINAL-F32.safetensors");
        Path f = fp8File(src, dst);
        String name = "blocks.0.self_attn.v.weight";
        byte[] codes;
        try (Checkpoint s = Checkpoint.open(src); SafetensorsFile d = SafetensorsFile.open(f)) {
            Checkpoint.Tensor t = s.tensor(name).orElseThrow();
            float scale = d.data(d.tensor(name + "_scale").orElseThrow()).get(Elements.FLOAT, 0);
            codes = new byte[(int) t.entry().numel()];
            for (int i = 0; i < codes.length; i++) {
                codes[i] = E4M3.encode(Elements.get(t.data(), DType.F32, i) / (4 * scale)); // encoded for scale x4
            }
        }
        overwrite(f, offset(f, name), codes);
        CliRun r = verify(src, dst);
        assertEquals(ExitCodes.FAILED_CHECK, r.code(), r.out());
        assertTrue(r.out().contains("weight " + name + ": SQNR"), r.out());
        assertTrue(r.out().contains("linear block 0 blocks.0.self_attn.v weight_only: SQNR"), r.out());
    }

    @Test
    void realMiniLmWeightsGetThePerLinearCheck(@TempDir Path dir) throws Exception {
        Path src = PythonReference.sharedDir().resolve("testdata/real/all-minilm-l6-v2-layers0-1-bf16.safetensors");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.exists(src), "SKIPPED: ../shared/testdata/real not present");
        Path dst = dir.resolve("mini.safetensors");
        assertEquals(0, CliRun.of("convert", "--quiet", "--preset", "generic", src.toString(), dst.toString()).code());
        CliRun r = CliRun.of("verify", "--quiet", src.toString(), dst.toString());
        assertEquals(ExitCodes.OK, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("checkpoint: per-linear"), r.out());
        assertTrue(r.out().contains("not a Wan DiT"), r.out());
        assertTrue(r.out().contains("encoder.layer.1.intermediate.dense"), r.out());
    }

    @Test
    void boundsFromFlagsAndFilesDecideTheVerdict(@TempDir Path dir) throws Exception {
        Path src = convert(dir, WanNaming.ORIGINAL, DType.BF16);
        Path dst = dir.resolve("fp8-ORIGINAL-BF16.safetensors");
        CliRun strict = verify(src, dst, "--min-sqnr-db", "block_update=90");
        assertEquals(ExitCodes.FAILED_CHECK, strict.code());
        assertTrue(strict.out().contains("block_update block 0 weight_only: SQNR"), strict.out());
        assertFalse(strict.out().contains("linear block 0 blocks.0.ffn.0 w8a8:"), strict.out());

        Path bounds = dir.resolve("bounds.json");
        Files.writeString(bounds, "{\"linear.w8a8.ffn\": {\"min_sqnr_db\": 45}}");
        CliRun file = verify(src, dst, "--bounds", bounds.toString());
        assertEquals(ExitCodes.FAILED_CHECK, file.code());
        assertTrue(file.out().contains("linear block 1 blocks.1.ffn.2 w8a8: SQNR"), file.out());
        assertFalse(file.out().contains("self_attn.q w8a8:"), "attention bounds unchanged: " + file.out());

        CliRun loose = verify(src, dst, "--max-rel-l2", "linear=0.5");
        assertEquals(ExitCodes.OK, loose.code(), loose.out());
    }

    @Test
    void badRequestsAreUsageErrors(@TempDir Path dir) throws Exception {
        Path src = convert(dir, WanNaming.ORIGINAL, DType.BF16);
        Path dst = dir.resolve("fp8-ORIGINAL-BF16.safetensors");
        CliRun block = verify(src, dst, "--blocks", "7");
        assertEquals(ExitCodes.INPUT_ERROR, block.code());
        assertTrue(block.err().contains("block 7 does not exist: the checkpoint has blocks 0..1"), block.err());
        assertEquals(ExitCodes.INPUT_ERROR, verify(src, dst, "--grid", "2,x,4").code());
        if (!dev.fp8q.verifier.cuda.Gpus.present()) {
            CliRun cuda = verify(src, dst, "--device", "cuda");
            assertEquals(ExitCodes.INPUT_ERROR, cuda.code());
            assertTrue(cuda.err().contains("--device cuda: no CUDA driver"), cuda.err());
        }
        assertEquals(ExitCodes.INPUT_ERROR, verify(src, dst, "--device", "tpu").code());
        Path bounds = dir.resolve("b.json");
        Files.writeString(bounds, "{\"blocks\": {\"min_sqnr_db\": 1}}");
        CliRun bad = verify(src, dst, "--bounds", bounds.toString());
        assertEquals(ExitCodes.INPUT_ERROR, bad.code());
        assertTrue(bad.err().contains("bad bound selector 'blocks'"), bad.err());
        Files.writeString(bounds, "{\"linear\": {\"min_sqnr\": 1}}");
        assertEquals(ExitCodes.INPUT_ERROR, verify(src, dst, "--bounds", bounds.toString()).code());
        CliRun missing = verify(src, dir.resolve("nope"));
        assertEquals(ExitCodes.INPUT_ERROR, missing.code());
        assertTrue(missing.err().contains("nope"), missing.err());
    }

    @Test
    void capturedActivationsAreUsed(@TempDir Path dir) throws Exception {
        Path src = convert(dir, WanNaming.ORIGINAL, DType.BF16);
        Path dst = dir.resolve("fp8-ORIGINAL-BF16.safetensors");
        Path acts = dir.resolve("acts.safetensors");
        int tokens = 2 * 3 * 2;
        int dim = 128;
        java.util.SplittableRandom r = new java.util.SplittableRandom(3);
        try (Arena arena = Arena.ofConfined()) {
            Map<String, MemorySegment> data = new java.util.LinkedHashMap<>();
            data.put("x", gaussian(arena, tokens * dim, r, 1));
            data.put("context", gaussian(arena, 9 * dim, r, 1));
            data.put("e", gaussian(arena, 6 * dim, r, 0.1));
            MemorySegment grid = arena.allocate(12);
            grid.setAtIndex(Elements.INT, 0, 2);
            grid.setAtIndex(Elements.INT, 1, 3);
            grid.setAtIndex(Elements.INT, 2, 2);
            data.put("grid", grid);
            List<TensorSpec> specs = List.of(new TensorSpec("x", DType.F32, new long[] {1, tokens, dim}),
                    new TensorSpec("context", DType.F32, new long[] {9, dim}),
                    new TensorSpec("e", DType.F32, new long[] {6, dim}),
                    new TensorSpec("grid", DType.I32, new long[] {3}));
            try (SafetensorsWriter w = SafetensorsWriter.create(acts, Map.of(), specs)) {
                for (var e : data.entrySet()) {
                    w.write(e.getKey(), e.getValue());
                }
                w.commit();
            }
        }
        CliRun run = verify(src, dst, "--activations", acts.toString(), "--weights", "none");
        assertEquals(ExitCodes.OK, run.code(), run.out() + run.err());
        assertTrue(run.out().contains("activations from " + acts), run.out());
    }

    static MemorySegment gaussian(Arena arena, int n, java.util.SplittableRandom r, double std) {
        MemorySegment s = arena.allocate(4L * n);
        for (int i = 0; i < n; i++) {
            s.setAtIndex(Elements.FLOAT, i, (float) (r.nextGaussian() * std));
        }
        return s;
    }
}
