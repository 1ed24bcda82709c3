package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.TensorSpec;
import dev.fp8q.testdata.QwenImageLayout;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** convert and verify on a tiny Qwen-Image transformer: the dual-stream block path runs and finds damage. */
class QwenImageVerifyTest {

    static final int DIM = 256;
    static final int TEXT_DIM = 64;
    static final String QUANTIZE = "transformer_blocks\\.\\d+\\.(attn\\.(to_[qkv]|to_out\\.0|add_[qkv]_proj|to_add_out)"
            + "|(img|txt)_mlp\\.net\\.(0\\.proj|2))\\.weight$";
    static final String[] SMALL = {"--device", "cpu", "--grid", "1,2,2", "--context-tokens", "3"};

    /** A BF16 checkpoint with Qwen-Image's names and biases (FORMATS.md section 5), dim 256 = 2 heads of 128. */
    static Path tinyQwenImage(Path file, int blocks) throws Exception {
        Map<String, long[]> s = new LinkedHashMap<>(); // testdata's names, shapes and order: the same draws
        QwenImageLayout.transformer(new QwenImageLayout.Dims(DIM, blocks, TEXT_DIM)).forEach(spec -> s.put(spec.name(), spec.shape()));
        List<TensorSpec> specs = new ArrayList<>();
        s.forEach((n, sh) -> specs.add(new TensorSpec(n, DType.BF16, sh)));
        SplittableRandom r = new SplittableRandom(42);
        try (Arena arena = Arena.ofConfined(); SafetensorsWriter w = SafetensorsWriter.create(file, Map.of(), specs)) {
            for (var e : s.entrySet()) {
                long[] sh = e.getValue();
                int numel = (int) (sh.length == 2 ? sh[0] * sh[1] : sh[0]);
                boolean norm = e.getKey().contains("norm") && sh.length == 1;
                double std = sh.length == 2 ? 0.5 / Math.sqrt(sh[1]) : 0.1;
                MemorySegment seg = arena.allocate(2L * numel);
                for (int i = 0; i < numel; i++) {
                    seg.setAtIndex(Elements.SHORT, i, Elements.floatToBf16((float) ((norm ? 1 : 0) + r.nextGaussian() * std)));
                }
                w.write(e.getKey(), seg);
            }
            w.commit();
        }
        return file;
    }

    static CliRun verify(Path src, Path dst, String... extra) {
        List<String> args = new ArrayList<>(List.of("verify", src.toString(), dst.toString()));
        args.addAll(List.of(SMALL));
        args.addAll(List.of(extra));
        return CliRun.of(args.toArray(String[]::new));
    }

    @Test
    void qwenImageBlocksRerunAndADamagedWeightIsNamed(@TempDir Path dir) throws Exception {
        Path src = tinyQwenImage(dir.resolve("qwen.safetensors"), 3);
        Path dst = dir.resolve("fp8.safetensors");
        CliRun c = CliRun.of("convert", "--quiet", "--quantize", QUANTIZE, src.toString(), dst.toString());
        assertEquals(ExitCodes.OK, c.code(), c.out() + c.err());
        assertTrue(Files.isRegularFile(dst), "a file SRC gives a file DST");

        Path json = dir.resolve("v.json");
        CliRun r = verify(src, dst, "--json", json.toString());
        assertEquals(ExitCodes.OK, r.code(), r.out() + r.err());
        assertTrue(r.out().contains("qwen-image (diffusers naming), blocks [0, 1, 2]"), r.out());
        assertFalse(r.out().contains("per-linear"), r.out());
        JsonNode j = new ObjectMapper().readTree(json.toFile());
        assertEquals("qwen-image", j.at("/components/0/architecture").asText());
        int image = 0;
        int text = 0;
        int linears = 0;
        for (JsonNode check : j.at("/checks")) {
            String scope = check.get("scope").asText();
            if (scope.startsWith("block_")) {
                image += check.path("stream").asText().equals("image") ? 1 : 0;
                text += check.path("stream").asText().equals("text") ? 1 : 0;
            }
            linears += scope.equals("linear") ? 1 : 0;
        }
        // 3 blocks x (output, update) x (weight_only, w8a8), for each stream; 12 FP8 Linears per block, 2 runs
        assertEquals(12, image);
        assertEquals(12, text);
        assertEquals(3 * 12 * 2, linears);

        String name = "transformer_blocks.1.img_mlp.net.2.weight";
        long pos = VerifyCommandTest.offset(dst, name) + 1234;
        byte[] b = new byte[1];
        try (RandomAccessFile raf = new RandomAccessFile(dst.toFile(), "r")) {
            raf.seek(pos);
            raf.readFully(b);
        }
        b[0] ^= 0x40;
        VerifyCommandTest.overwrite(dst, pos, b);
        CliRun bad = verify(src, dst);
        assertEquals(ExitCodes.FAILED_CHECK, bad.code(), bad.out());
        assertTrue(bad.out().contains("weight " + name + ":"), bad.out());
        assertTrue(bad.out().contains("1 codes more than one step"), bad.out());
        assertFalse(bad.out().contains("weight transformer_blocks.0."), "only the damaged weight fails: " + bad.out());
    }
}
