package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.formats.safetensors.SafetensorsFile;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.TensorEntry;
import dev.fp8q.formats.safetensors.TensorSpec;
import dev.fp8q.formats.testing.EdgeValues;
import dev.fp8q.formats.testing.PythonReference;
import java.io.IOException;
import java.io.InputStream;
import java.io.RandomAccessFile;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every layout with every granularity it can carry, checked by an independent numpy / ml_dtypes script
 * (src/test/resources/check_layout.py): names, dtypes and shapes read with the safetensors library, scales
 * and codes recomputed from the source, config files against FORMATS.md section 2.
 */
class ConvertLayoutsTest {

    /**
     * Weights whose shapes leave partial 128-tiles on both edges, one of whole tiles, rows of very different magnitude (so channel
     * and block scales differ), an all-zero weight, BF16 and F32, preserved norm and head, and a config.json.
     */
    static Path source(Path dir) throws Exception {
        Path src = Files.createDirectories(dir.resolve("src"));
        List<TensorSpec> specs = List.of(
                new TensorSpec("layers.0.self_attn.q_proj.weight", DType.BF16, new long[] {200, 144}),
                new TensorSpec("layers.0.mlp.fc1.weight", DType.F32, new long[] {136, 272}),
                new TensorSpec("layers.0.mlp.fc2.weight", DType.BF16, new long[] {8, 16}),
                new TensorSpec("layers.0.self_attn.o_proj.weight", DType.BF16, new long[] {256, 128}),
                new TensorSpec("layers.0.norm.weight", DType.BF16, new long[] {144}),
                new TensorSpec("lm_head.weight", DType.BF16, new long[] {64, 144}));
        SplittableRandom rnd = new SplittableRandom(7);
        try (Arena arena = Arena.ofConfined();
                SafetensorsWriter w = SafetensorsWriter.create(src.resolve("model.safetensors"), Map.of(), specs)) {
            for (TensorSpec t : specs) {
                long n = 1;
                for (long d : t.shape()) {
                    n *= d;
                }
                long cols = t.shape().length > 1 ? t.shape()[1] : n;
                MemorySegment seg = arena.allocate(n * t.dtype().bits() / 8);
                boolean zero = t.name().contains("fc2");
                for (long i = 0; i < n; i++) {
                    double row = Math.pow(10, ((i / cols) % 7) - 3); // magnitudes 1e-3 .. 1e3 by row
                    float v = zero ? 0f : (float) (rnd.nextGaussian() * row);
                    if (t.dtype() == DType.F32) {
                        seg.setAtIndex(Elements.FLOAT, i, v);
                    } else {
                        seg.setAtIndex(Elements.SHORT, i, Elements.floatToBf16(v));
                    }
                }
                w.write(t.name(), seg);
            }
            w.commit();
        }
        Files.writeString(src.resolve("config.json"), "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 144}");
        return src;
    }

    /** quantized: how many of the source's 4 Linears the layout can store at that scaling. */
    record Case(String layout, String scaling, boolean pow2, String scaleDtype, int quantized) {
        Case(String layout, String scaling, boolean pow2) {
            this(layout, scaling, pow2, "f32", 4);
        }
    }

    @Test
    void everyLayoutAndGranularityIsExactAndLoadsAsTheRuntimeExpects(@TempDir Path dir) throws Exception {
        Path src = source(dir);
        List<Case> cases = List.of(new Case("comfy", "tensor", false), new Case("comfy", "tensor", true),
                new Case("comfy-legacy", "tensor", false), new Case("compressed-tensors", "tensor", false),
                new Case("compressed-tensors", "channel", false), new Case("compressed-tensors", "channel", true),
                // compressed-tensors and FP8_PB_WO: sides multiples of 128 only
                new Case("compressed-tensors", "block", false, "f32", 1), new Case("compressed-tensors", "block", true, "f32", 1),
                new Case("compressed-tensors", "block", false, "bf16", 1),
                new Case("hf-fp8", "tensor", false), new Case("hf-fp8", "tensor", false, "bf16", 4),
                // transformers' dequantizing route reads partial edge tiles wrong: those weights stay BF16/F32
                new Case("hf-fp8", "block", false, "f32", 2), new Case("hf-fp8", "block", true, "f32", 2),
                new Case("vllm-fp8", "tensor", false), new Case("vllm-fp8", "block", false),
                new Case("vllm-fp8", "block", false, "bf16", 4),
                new Case("modelopt", "channel", false), new Case("modelopt", "channel", false, "bf16", 4),
                new Case("modelopt", "block", false, "f32", 1));
        String script = script();
        for (Case c : cases) {
            Path dst = dir.resolve(c.layout() + "-" + c.scaling() + (c.pow2() ? "-pow2" : "") + "-" + c.scaleDtype());
            List<String> args = new ArrayList<>(List.of("convert", "--quiet", "--layout", c.layout(), "--scaling",
                    c.scaling(), "--scale-dtype", c.scaleDtype(), src.toString(), dst.toString()));
            if (c.pow2()) {
                args.add("--pow2-scales");
            }
            CliRun r = CliRun.of(args.toArray(String[]::new));
            assertEquals(0, r.code(), c + ": " + r.err());
            Manifest m = Manifest.read(dst.resolve(Manifest.FILE));
            assertEquals(c.layout(), m.settings().get("layout"));
            assertEquals(c.scaling() + (c.pow2() ? "+pow2" : ""), m.settings().get("scaling"));
            assertEquals(c.scaleDtype(), m.settings().get("scale_dtype"));
            assertEquals(0, CliRun.of("check", dst.toString()).code(), c + ": check");
            String out = PythonReference.run(script, dst.resolve("../src/model.safetensors").normalize().toString(),
                    dst.toString(), c.layout(), c.scaling(), Boolean.toString(c.pow2()), c.scaleDtype());
            assertEquals("ok " + c.quantized(), out.strip(), c.toString());
            asForeignCheckpoint(src, dst, c);
        }
    }

    /**
     * MXFP8 source: sides multiples of 32 and not (kept: the input side must be, and for ComfyUI the output side
     * too), BF16, F16 and F32, and blocks of zeros, subnormals, huge values, exact powers of two and values that
     * saturate (EdgeValues).
     */
    static Path mxSource(Path dir) throws Exception {
        Path src = Files.createDirectories(dir.resolve("mxsrc"));
        List<TensorSpec> specs = List.of(
                new TensorSpec("layers.0.self_attn.q_proj.weight", DType.BF16, new long[] {256, 160}),
                new TensorSpec("layers.0.self_attn.k_proj.weight", DType.F16, new long[] {136, 96}), // comfy: 136 rows
                new TensorSpec("layers.0.mlp.fc1.weight", DType.F32, new long[] {64, 288}),
                new TensorSpec("layers.0.mlp.fc2.weight", DType.BF16, new long[] {64, 48}), // 48 inputs: kept
                new TensorSpec("layers.0.norm.weight", DType.BF16, new long[] {160}));
        try (Arena arena = Arena.ofConfined();
                SafetensorsWriter w = SafetensorsWriter.create(src.resolve("model.safetensors"), Map.of(), specs)) {
            for (TensorSpec t : specs) {
                long rows = t.shape()[0];
                long cols = t.shape().length > 1 ? t.shape()[1] : 1;
                w.write(t.name(), EdgeValues.source(arena, t.dtype(), rows, cols, rows + cols));
            }
            w.commit();
        }
        Files.writeString(src.resolve("config.json"), "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_size\": 160}");
        return src;
    }

    @Test
    void mxfp8IsExactInTheLayoutsThatReadItAndRefusedElsewhere(@TempDir Path dir) throws Exception {
        Path src = mxSource(dir);
        Path plain = source(dir); // ordinary magnitudes (the edge source's Linears overflow float32 on N(0,1) inputs)
        String script = script();
        for (Case c : List.of(new Case("comfy", "mx", false, "f32", 2), new Case("compressed-tensors", "mx", false, "f32", 3),
                new Case("modelopt", "mx", false, "f32", 3))) {
            Path dst = dir.resolve(c.layout() + "-mx");
            CliRun r = CliRun.of("convert", "--quiet", "--layout", c.layout(), "--scaling", "mx", src.toString(), dst.toString());
            assertEquals(0, r.code(), c + ": " + r.err());
            assertEquals(c.layout().equals("comfy"), r.err().contains("gets no quantization_config"), c + ": " + r.err());
            assertEquals(!c.layout().equals("comfy"), Files.readString(dst.resolve("config.json")).contains("quantization_config"),
                    c + ": comfy's swizzled MX scales get no compressed-tensors config, which transformers refused on them");
            Manifest m = Manifest.read(dst.resolve(Manifest.FILE));
            assertEquals("mx", m.settings().get("scaling"));
            assertEquals("e8m0", m.settings().get("scale_dtype"));
            assertTrue(m.tensors().stream().anyMatch(t -> "layout:mx-needs-in-multiple-of-32".equals(t.rule())),
                    c + ": " + m.tensors().stream().map(t -> t.name() + "=" + t.rule()).toList());
            assertEquals(0, CliRun.of("check", dst.toString()).code(), c + ": check");
            String out = PythonReference.run(script, src.resolve("model.safetensors").toString(), dst.toString(), c.layout(),
                    "mx", "false", "f32");
            assertEquals("ok " + c.quantized(), out.strip(), c.toString());
            Path plainDst = dir.resolve(c.layout() + "-mx-plain");
            assertEquals(0, CliRun.of("convert", "--quiet", "--layout", c.layout(), "--scaling", "mx", plain.toString(),
                    plainDst.toString()).code(), c.toString());
            assertEquals("ok 1", PythonReference.run(script, plain.resolve("model.safetensors").toString(), plainDst.toString(),
                    c.layout(), "mx", "false", "f32").strip(), c + ": o_proj, the one Linear with 32-multiple sides");
            asForeignCheckpoint(plain, plainDst, c);
        }
        for (String layout : List.of("comfy-legacy", "hf-fp8", "vllm-fp8")) {
            Path dst = dir.resolve(layout + "-mx");
            CliRun r = CliRun.of("convert", "--layout", layout, "--scaling", "mx", src.toString(), dst.toString());
            assertEquals(2, r.code(), layout);
            assertTrue(r.err().contains("cannot express mx scaling") && r.err().strip().lines().count() == 1, r.err());
            assertFalse(Files.exists(dst), layout + ": nothing written");
        }
        CliRun bf16 = CliRun.of("convert", "--layout", "modelopt", "--scaling", "mx", "--scale-dtype", "bf16", src.toString(),
                dir.resolve("bf16-mx").toString());
        assertEquals(2, bf16.code());
        assertTrue(bf16.err().contains("E8M0"), bf16.err());
    }

    /** Without fp8q's manifest, as if another tool wrote it: verify passes, dequantize drops every scale. */
    private static void asForeignCheckpoint(Path src, Path dst, Case c) throws Exception {
        Files.delete(dst.resolve(Manifest.FILE));
        CliRun v = CliRun.of("verify", src.toString(), dst.toString());
        assertEquals(0, v.code(), c + ": " + v.out() + v.err());
        assertTrue(v.out().contains("PASS"), v.out());
        Path deq = dst.resolveSibling(dst.getFileName() + "-bf16");
        assertEquals(0, CliRun.of("dequantize", dst.toString(), deq.toString()).code(), c + ": dequantize");
        try (Checkpoint s = Checkpoint.open(src); Checkpoint d = Checkpoint.open(deq)) {
            assertEquals(s.tensors().stream().map(Checkpoint.Tensor::name).sorted().toList(),
                    d.tensors().stream().map(Checkpoint.Tensor::name).sorted().toList(), c + ": the source's names only");
        }
    }

    /** An MX scale byte changed: verify names the weight (exit 1); a NaN byte (0xFF) is bad input (exit 2, one line). */
    @Test
    void aDamagedMxScaleFailsVerifyAndANanScaleIsRefused(@TempDir Path dir) throws Exception {
        Path src = source(dir);
        Path dst = dir.resolve("o");
        assertEquals(0, CliRun.of("convert", "--quiet", "--layout", "modelopt", "--scaling", "mx", src.toString(),
                dst.toString()).code());
        Files.delete(dst.resolve(Manifest.FILE));
        long pos;
        try (SafetensorsFile f = SafetensorsFile.open(dst.resolve("model.safetensors"))) {
            TensorEntry e = f.tensor("layers.0.self_attn.o_proj.weight_scale").orElseThrow();
            assertEquals(DType.U8, e.dtype());
            assertEquals(List.of(256L, 4L), Arrays.stream(e.shape()).boxed().toList());
            pos = f.header().dataStart() + e.begin() + 4 * 100 + 2; // row 100, values 64..95
        }
        try (RandomAccessFile raf = new RandomAccessFile(dst.resolve("model.safetensors").toFile(), "rw")) {
            raf.seek(pos);
            int b = raf.read();
            raf.seek(pos);
            raf.write(b + 1); // twice the scale
        }
        CliRun r = CliRun.of("verify", src.toString(), dst.toString());
        assertEquals(1, r.code(), r.out());
        assertTrue(r.out().contains("layers.0.self_attn.o_proj.weight"), r.out());
        try (RandomAccessFile raf = new RandomAccessFile(dst.resolve("model.safetensors").toFile(), "rw")) {
            raf.seek(pos);
            raf.write(0xFF);
        }
        CliRun nan = CliRun.of("dequantize", dst.toString(), dir.resolve("d").toString());
        assertEquals(2, nan.code(), nan.out() + nan.err());
        assertTrue(nan.err().contains("layers.0.self_attn.o_proj.weight_scale") && nan.err().contains("NaN")
                && nan.err().contains("model.safetensors") && nan.err().strip().lines().count() == 1, nan.err());
        assertFalse(Files.exists(dir.resolve("d")), "no partial output");
    }

    @Test
    void aDamagedBlockScaleFailsVerify(@TempDir Path dir) throws Exception {
        Path src = source(dir);
        Path dst = dir.resolve("o");
        assertEquals(0, CliRun.of("convert", "--quiet", "--layout", "vllm-fp8", "--scaling", "block", src.toString(),
                dst.toString()).code());
        Files.delete(dst.resolve(Manifest.FILE));
        long pos;
        try (SafetensorsFile f = SafetensorsFile.open(dst.resolve("model.safetensors"))) {
            TensorEntry e = f.tensor("layers.0.self_attn.q_proj.weight_scale_inv").orElseThrow();
            assertEquals(List.of(2L, 2L), Arrays.stream(e.shape()).boxed().toList());
            pos = f.header().dataStart() + e.begin() + 4 * 3; // the last tile: 72 x 16 values
        }
        try (RandomAccessFile raf = new RandomAccessFile(dst.resolve("model.safetensors").toFile(), "rw")) {
            raf.seek(pos);
            float v = Float.intBitsToFloat(Integer.reverseBytes(raf.readInt()));
            raf.seek(pos);
            raf.writeInt(Integer.reverseBytes(Float.floatToIntBits(v * 2)));
        }
        CliRun r = CliRun.of("verify", src.toString(), dst.toString());
        assertEquals(1, r.code(), r.out());
        assertTrue(r.out().contains("layers.0.self_attn.q_proj.weight"), r.out());
    }

    @Test
    void aLayoutThatCannotCarryTheGranularityIsRefusedWithTheReason(@TempDir Path dir) throws Exception {
        Path src = source(dir);
        String[][] refused = {{"comfy", "channel", "ComfyUI reads only per-tensor"}, {"comfy", "block", "ComfyUI"},
                {"comfy-legacy", "block", "ComfyUI"}, {"hf-fp8", "channel", "per-tensor and 128x128 block"},
                {"vllm-fp8", "channel", "per-tensor and 128x128 block"}, {"modelopt", "tensor", "input_scale"}};
        for (String[] c : refused) {
            Path dst = dir.resolve("out");
            CliRun r = CliRun.of("convert", "--quiet", "--layout", c[0], "--scaling", c[1], src.toString(), dst.toString());
            assertEquals(2, r.code(), String.join(" ", c));
            assertTrue(r.err().contains("--layout " + c[0] + " cannot express " + c[1] + " scaling") && r.err().contains(c[2]),
                    r.err());
            assertFalse(Files.exists(dst), "nothing written");
        }
        CliRun bf16 = CliRun.of("convert", "--quiet", "--scale-dtype", "bf16", src.toString(), dir.resolve("o").toString());
        assertEquals(2, bf16.code());
        assertTrue(bf16.err().contains("with BF16 scales") && bf16.err().contains("torch._scaled_mm"), bf16.err());
        assertEquals(2, CliRun.of("convert", "--scale-dtype", "f16", src.toString(), dir.resolve("o").toString()).code());
        assertEquals(2, CliRun.of("convert", "--layout", "onnx", src.toString(), dir.resolve("o").toString()).code());
        assertEquals(2, CliRun.of("convert", "--scaling", "row", src.toString(), dir.resolve("o").toString()).code());
        assertFalse(Files.exists(dir.resolve("o")));
    }

    @Test
    void legacyLayoutWarnsThatComfyCastsEveryLinear(@TempDir Path dir) throws Exception {
        CliRun r = CliRun.of("convert", "--quiet", "--layout", "comfy-legacy", source(dir).toString(), dir.resolve("o").toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("casts EVERY Linear"), r.err());
    }

    /** The independent checker (src/test/resources/check_layout.py), run with python -c. */
    static String script() throws IOException {
        try (InputStream in = ConvertLayoutsTest.class.getResourceAsStream("/check_layout.py")) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
