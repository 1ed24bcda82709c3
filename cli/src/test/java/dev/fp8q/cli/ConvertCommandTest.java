package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.formats.safetensors.SafetensorsFile;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.TensorSpec;
import dev.fp8q.formats.testing.PythonReference;
import dev.fp8q.testdata.WanCheckpoints;
import dev.fp8q.testdata.WanDims;
import dev.fp8q.testdata.WanNaming;
import dev.fp8q.testdata.WanVariant;
import java.io.RandomAccessFile;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ConvertCommandTest {

    static Path make(Path out, WanVariant v, WanNaming n, DType dt, long shard, boolean both) throws Exception {
        WanCheckpoints.make(new WanCheckpoints.Request(v, n, WanDims.tiny(v), dt, shard, both, 1, 2), out);
        return out;
    }

    /** Every FP8 byte and scale recomputed here from the source, independently of the converter's loops. */
    static void assertExact(Path src, Path dst) throws Exception {
        Manifest m = Manifest.read(Manifest.locate(dst));
        try (Checkpoint s = Checkpoint.open(src); Checkpoint d = Checkpoint.open(dst)) {
            for (Manifest.TensorRecord r : m.tensors()) {
                Checkpoint.Tensor out = d.tensor(r.name()).orElseThrow();
                if (r.action().equals("scale")) {
                    continue;
                }
                Checkpoint.Tensor in = s.tensor(r.name()).orElseThrow();
                if (r.action().equals("preserve")) {
                    assertEquals(-1, in.data().mismatch(out.data()), "preserved byte-identical: " + r.name());
                    continue;
                }
                long n = in.entry().numel();
                float amax = 0;
                for (long i = 0; i < n; i++) {
                    amax = Math.max(amax, Math.abs(Elements.get(in.data(), in.entry().dtype(), i)));
                }
                float scale = amax / 448f;
                float stored = d.tensor(r.scaleTensor()).orElseThrow().data().get(Elements.FLOAT, 0);
                assertEquals(Float.floatToIntBits(scale), Float.floatToIntBits(stored), "scale of " + r.name());
                assertEquals(0, d.tensor(r.scaleTensor()).orElseThrow().entry().rank(), "0-dim scale");
                for (long i = 0; i < n; i++) {
                    float q = Math.max(-448f, Math.min(448f, Elements.get(in.data(), in.entry().dtype(), i) / scale));
                    byte expect = E4M3.encode(q);
                    byte got = out.data().get(java.lang.foreign.ValueLayout.JAVA_BYTE, i);
                    if (expect != got) {
                        throw new AssertionError(r.name() + "[" + i + "]: expected " + expect + " got " + got);
                    }
                }
            }
        }
    }

    @Test
    void bf16AndF32BothNamingsConvertExactly(@TempDir Path dir) throws Exception {
        for (DType dt : List.of(DType.BF16, DType.F32, DType.F16)) {
            for (WanNaming n : WanNaming.values()) {
                Path src = make(dir.resolve("src-" + dt + n + ".safetensors"), WanVariant.T2V_A14B, n, dt, 0, false);
                Path dst = dir.resolve("dst-" + dt + n + ".safetensors");
                CliRun r = CliRun.of("convert", src.toString(), dst.toString());
                assertEquals(0, r.code(), r.err());
                assertTrue(r.out().contains("20 tensors quantized"), r.out());
                assertExact(src, dst);
                assertEquals(0, CliRun.of("check", dst.toString()).code());
            }
        }
    }

    @Test
    void aSourceFileWithoutTheExtensionGivesAReadableOutput(@TempDir Path dir) throws Exception {
        Path src = make(dir.resolve("model"), WanVariant.T2V_A14B, WanNaming.ORIGINAL, DType.BF16, 0, false);
        assertEquals(0, CliRun.of("convert", "--quiet", src.toString(), dir.resolve("out").toString()).code());
        Path dst = dir.resolve("out.safetensors");
        assertTrue(Files.isRegularFile(dst), "a file SRC gives a file, with the extension added");
        assertExact(src, dst);
        assertEquals(0, CliRun.of("check", dst.toString()).code());
        CliRun verify = CliRun.of("verify", "--quiet", "--device", "cpu", "--grid", "2,2,2", "--context-tokens", "4",
                src.toString(), dst.toString());
        assertEquals(0, verify.code(), verify.err());
    }

    @Test
    void manifestSaysWhatWasDone(@TempDir Path dir) throws Exception {
        Path src = make(dir.resolve("s.safetensors"), WanVariant.T2V_A14B, WanNaming.ORIGINAL, DType.BF16, 0, false);
        Path dst = dir.resolve("d.safetensors");
        assertEquals(0, CliRun.of("convert", "--quiet", src.toString(), dst.toString()).code());
        JsonNode m = new ObjectMapper().readTree(Manifest.locate(dst).toFile());
        assertEquals("fp8q", m.get("tool").asText());
        assertEquals("convert", m.get("command_line").get(1).asText());
        assertEquals(Files.size(src), m.get("sources").get(0).get("bytes").asLong());
        assertEquals("tensor", m.get("settings").get("scaling").asText());
        int q = 0;
        for (JsonNode t : m.get("tensors")) {
            assertNotNull(t.get("crc32c"), t.toString());
            assertNotNull(t.get("rule"), t.toString());
            if (t.get("action").asText().equals("quantize")) {
                q++;
                double sqnr = t.get("sqnr_db").asDouble();
                assertTrue(sqnr > 28 && sqnr < 35, "weight SQNR near 31.5 dB: " + t);
                assertEquals(t.get("amax").floatValue() / 448f, t.get("scale").floatValue());
                assertTrue(t.get("underflow").asDouble() < 0.05);
                assertEquals("F8_E4M3", t.get("dtype").asText());
                assertEquals(t.get("name").asText() + "_scale", t.get("scale_tensor").asText());
            }
        }
        assertEquals(20, q);
        assertEquals(20, m.get("totals").get("quantized").asInt());
        assertEquals(Files.size(dst) - 8 - headerLen(dst),
                m.get("totals").get("output_bytes").asLong());
        try (SafetensorsFile f = SafetensorsFile.open(dst)) {
            String meta = f.metadata().get("_quantization_metadata");
            JsonNode qm = new ObjectMapper().readTree(meta);
            assertEquals("1.0", qm.get("format_version").asText());
            assertEquals("float8_e4m3fn", qm.get("layers").get("blocks.0.self_attn.q").get("format").asText());
            assertEquals(20, qm.get("layers").size());
            assertEquals("pt", f.metadata().get("format"));
        }
    }

    static long headerLen(Path p) throws Exception {
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            return f.header().headerLength();
        }
    }

    @Test
    void shardedTwoExpertReleaseMirrorsTheSourceAndTheReferenceReadsIt(@TempDir Path dir) throws Exception {
        Path src = make(dir.resolve("Wan2.2-T2V-A14B"), WanVariant.T2V_A14B, WanNaming.ORIGINAL, DType.F32, 400_000, true);
        Files.writeString(src.resolve("low_noise_model/config.json"), "{\"_class_name\": \"WanModel\", \"dim\": 128}");
        Path dst = dir.resolve("fp8");
        CliRun r = CliRun.of("convert", "--preserve-dtype", "bf16", src.toString(), dst.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.out().contains("high_noise_model") && r.out().contains("low_noise_model"), r.out());
        for (String e : List.of("high_noise_model", "low_noise_model")) {
            List<String> srcFiles = names(src.resolve(e));
            List<String> dstFiles = names(dst.resolve(e));
            assertTrue(dstFiles.containsAll(srcFiles), dstFiles + " mirrors " + srcFiles);
            try (Checkpoint cp = Checkpoint.open(dst.resolve(e))) {
                assertEquals(69 + 20, cp.size());
                assertTrue(cp.tensors().stream().noneMatch(t -> t.entry().dtype() == DType.F32 && t.entry().rank() > 0),
                        "preserved F32 cast to BF16");
            }
        }
        JsonNode cfg = new ObjectMapper().readTree(dst.resolve("low_noise_model/config.json").toFile());
        // a diffusers-style config (Wan's WanModel is a diffusers ModelMixin): diffusers refuses a compressed-tensors one
        assertFalse(cfg.has("quantization_config"), cfg.toString());
        assertEquals(128, cfg.get("dim").asInt());
        assertEquals("WanModel", cfg.get("_class_name").asText());
        assertEquals(0, CliRun.of("check", dst.toString()).code());
        PythonReference.require();
        String out = PythonReference.run("""
                import sys, json, os, numpy as np, ml_dtypes
                from safetensors import safe_open
                d = sys.argv[1]
                idx = json.load(open(os.path.join(d, 'diffusion_pytorch_model.safetensors.index.json')))
                n = 0
                for shard in sorted(set(idx['weight_map'].values())):
                    with safe_open(os.path.join(d, shard), 'np') as f:
                        for k in f.keys():
                            if f.get_slice(k).get_dtype() != 'F8_E4M3':
                                f.get_tensor(k)
                            n += 1
                print(n)
                """, dst.resolve("low_noise_model").toString());
        assertEquals("89", out.strip());
    }

    static List<String> names(Path d) throws Exception {
        try (Stream<Path> s = Files.list(d)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".safetensors") || n.endsWith(".json")).sorted().toList();
        }
    }

    @Test
    void corruptionIsFoundByCheck(@TempDir Path dir) throws Exception {
        Path src = make(dir.resolve("s.safetensors"), WanVariant.T2V_A14B, WanNaming.ORIGINAL, DType.BF16, 0, false);
        Path dst = dir.resolve("d.safetensors");
        assertEquals(0, CliRun.of("convert", "--quiet", src.toString(), dst.toString()).code());
        Path f = dst;
        long pos;
        try (SafetensorsFile sf = SafetensorsFile.open(f)) {
            var t = sf.tensor("blocks.1.ffn.2.weight").orElseThrow();
            pos = sf.header().dataStart() + t.begin() + 100;
        }
        try (RandomAccessFile raf = new RandomAccessFile(f.toFile(), "rw")) {
            raf.seek(pos);
            int b = raf.read();
            raf.seek(pos);
            raf.write(b ^ 0x10);
        }
        CliRun r = CliRun.of("check", dst.toString());
        assertEquals(ExitCodes.FAILED_CHECK, r.code());
        assertTrue(r.err().contains("blocks.1.ffn.2.weight") && r.err().contains("bytes changed"), r.err());
        assertEquals(1, r.err().strip().lines().count(), r.err());
    }

    static Path withTensor(Path dir, String name, float[] values) throws Exception {
        Path p = dir.resolve("x.safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.create(p, null, List.of(
                new TensorSpec("blocks.0.self_attn.q.weight", DType.F32, new long[] {16, 16}),
                new TensorSpec(name, DType.F32, new long[] {16, 16}),
                new TensorSpec("head.modulation", DType.F32, new long[] {1, 2, 16})))) {
            ByteBuffer a = ByteBuffer.allocate(16 * 16 * 4).order(ByteOrder.LITTLE_ENDIAN);
            ByteBuffer b = ByteBuffer.allocate(16 * 16 * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < 256; i++) {
                a.putFloat(i * 4, (i % 7) * 0.01f);
                b.putFloat(i * 4, values[i % values.length]);
            }
            w.write("blocks.0.self_attn.q.weight", MemorySegment.ofBuffer(a));
            w.write(name, MemorySegment.ofBuffer(b));
            w.write("head.modulation", MemorySegment.ofArray(new byte[128]));
            w.commit();
        }
        return p;
    }

    @Test
    void nonFiniteIsRefusedByNameOrPreservedOnRequest(@TempDir Path dir) throws Exception {
        Path src = withTensor(dir, "blocks.0.ffn.0.weight", new float[] {1f, Float.NaN, 2f, Float.POSITIVE_INFINITY});
        Path dst = dir.resolve("d.safetensors");
        CliRun r = CliRun.of("convert", "--quiet", src.toString(), dst.toString());
        assertEquals(ExitCodes.INPUT_ERROR, r.code());
        assertTrue(r.err().contains("blocks.0.ffn.0.weight") && r.err().contains("128 NaN/Inf"), r.err());
        assertFalse(Files.exists(dst), "nothing half-written");
        assertEquals(List.of("x.safetensors"), names(dir), "no temporary folder left");
        CliRun p = CliRun.of("convert", "--quiet", "--nonfinite", "preserve", src.toString(), dst.toString());
        assertEquals(0, p.code(), p.err());
        assertTrue(p.err().contains("warning") && p.err().contains("blocks.0.ffn.0.weight"), p.err());
        Manifest m = Manifest.read(Manifest.locate(dst));
        var rec = m.tensors().stream().filter(t -> t.name().equals("blocks.0.ffn.0.weight")).findFirst().orElseThrow();
        assertEquals("preserve", rec.action());
        assertTrue(rec.rule().startsWith("nonfinite"), rec.rule());
    }

    @Test
    void allZeroTensorGetsScaleOneAndAWarning(@TempDir Path dir) throws Exception {
        Path src = withTensor(dir, "blocks.0.ffn.0.weight", new float[] {0f});
        Path dst = dir.resolve("d.safetensors");
        CliRun r = CliRun.of("convert", "--quiet", src.toString(), dst.toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("all zeros"), r.err());
        try (Checkpoint cp = Checkpoint.open(dst)) {
            assertEquals(1f, cp.tensor("blocks.0.ffn.0.weight_scale").orElseThrow().data().get(Elements.FLOAT, 0));
        }
    }

    @Test
    void existingDstIsRefusedWithoutForceAndReplacedWithIt(@TempDir Path dir) throws Exception {
        Path src = make(dir.resolve("s.safetensors"), WanVariant.T2V_A14B, WanNaming.ORIGINAL, DType.BF16, 0, false);
        Path dst = dir.resolve("d.safetensors");
        Files.writeString(dst, "mine");
        CliRun r = CliRun.of("convert", "--quiet", src.toString(), dst.toString());
        assertEquals(ExitCodes.INPUT_ERROR, r.code());
        assertTrue(r.err().contains("exists"), r.err());
        CliRun f = CliRun.of("convert", "--quiet", "--force", src.toString(), dst.toString());
        assertEquals(ExitCodes.INPUT_ERROR, f.code(), "not an fp8q output: --force does not replace it");
        assertEquals("mine", Files.readString(dst));
        Files.delete(dst);
        assertEquals(0, CliRun.of("convert", "--quiet", src.toString(), dst.toString()).code());
        assertEquals(ExitCodes.INPUT_ERROR, CliRun.of("convert", "--quiet", src.toString(), dst.toString()).code());
        assertEquals(0, CliRun.of("convert", "--quiet", "--force", src.toString(), dst.toString()).code());
        assertEquals(0, CliRun.of("check", dst.toString()).code());
    }

    @Test
    void malformedSourceOrHostileIndexLeavesNothing(@TempDir Path dir) throws Exception {
        Path src = make(dir.resolve("ck"), WanVariant.T2V_A14B, WanNaming.ORIGINAL, DType.BF16, 300_000, false);
        Path idx = src.resolve("diffusion_pytorch_model.safetensors.index.json");
        Files.writeString(idx, Files.readString(idx).replaceFirst(": \"diffusion", ": \"/etc/diffusion"));
        CliRun r = CliRun.of("convert", "--quiet", src.toString(), dir.resolve("out").toString());
        assertEquals(ExitCodes.INPUT_ERROR, r.code());
        assertTrue(r.err().contains("leaves the folder"), r.err());
        Path trunc = make(dir.resolve("t.safetensors"), WanVariant.T2V_A14B, WanNaming.ORIGINAL, DType.BF16, 0, false);
        try (RandomAccessFile raf = new RandomAccessFile(trunc.toFile(), "rw")) {
            raf.setLength(raf.length() - 10);
        }
        CliRun t = CliRun.of("convert", "--quiet", trunc.toString(), dir.resolve("out").toString());
        assertEquals(ExitCodes.INPUT_ERROR, t.code());
        assertTrue(t.err().contains("t.safetensors") && t.err().contains("data section"), t.err());
        assertFalse(Files.exists(dir.resolve("out")) || Files.exists(dir.resolve("out.safetensors")));
        try (Stream<Path> s = Files.list(dir)) {
            assertTrue(s.noneMatch(p -> p.getFileName().toString().contains("fp8q-tmp")), "no temporary folder left");
        }
    }

    @Test
    void userRulesAndConflicts(@TempDir Path dir) throws Exception {
        Path src = make(dir.resolve("s.safetensors"), WanVariant.T2V_A14B, WanNaming.ORIGINAL, DType.BF16, 0, false);
        CliRun p = CliRun.of("plan", "--json", "--ignore", "cross_attn", "--quantize", "^text_embedding\\.2\\.weight$", src.toString());
        assertEquals(0, p.code(), p.err());
        JsonNode ts = new ObjectMapper().readTree(p.out()).get("components").get(0).get("tensors");
        Map<String, JsonNode> byName = new java.util.HashMap<>();
        ts.forEach(t -> byName.put(t.get("name").asText(), t));
        assertEquals("preserve", byName.get("blocks.0.cross_attn.q.weight").get("action").asText());
        assertTrue(byName.get("blocks.0.cross_attn.q.weight").get("rule").asText().startsWith("user:ignore"));
        assertEquals("quantize", byName.get("text_embedding.2.weight").get("action").asText());
        assertEquals("quantize", byName.get("blocks.0.self_attn.q.weight").get("action").asText());
        assertEquals("shape:1d", byName.get("blocks.0.self_attn.q.bias").get("rule").asText());
        CliRun c = CliRun.of("plan", "--ignore", "ffn", "--quantize", "ffn\\.0", src.toString());
        assertEquals(ExitCodes.INPUT_ERROR, c.code());
        assertTrue(c.err().contains("matches both"), c.err());
        Path rules = dir.resolve("rules.json");
        Files.writeString(rules, "{\"ignore\": [\"self_attn\\\\.o\"]}");
        CliRun f = CliRun.of("plan", "--json", "--rules", rules.toString(), src.toString());
        assertEquals(0, f.code(), f.err());
        assertTrue(f.out().contains("user:ignore=self_attn\\\\.o"), f.out());
    }

    @Test
    void realMiniLmConvertsWithTheGenericPreset(@TempDir Path dir) throws Exception {
        Path real = PythonReference.sharedDir().resolve("testdata/real/all-minilm-l6-v2-layers0-1-bf16.safetensors");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.exists(real), "SKIPPED: " + real + " not present");
        Path dst = dir.resolve("d.safetensors");
        CliRun r = CliRun.of("convert", "--quiet", real.toString(), dst.toString());
        assertEquals(0, r.code(), r.err());
        assertExact(real, dst);
        Manifest m = Manifest.read(Manifest.locate(dst));
        assertEquals(12, m.totals().quantized(), "q, k, v, attention out, intermediate, output of 2 layers");
        for (var t : m.tensors()) {
            if (t.action().equals("quantize")) {
                assertTrue(t.sqnrDb() > 30 && t.sqnrDb() < 33, "real weights give ~31.5 dB: " + t.name() + " " + t.sqnrDb());
            }
            if (t.name().contains("embeddings") || t.name().contains("LayerNorm")) {
                assertEquals("preserve", t.action(), t.name());
            }
        }
    }

    @Test
    void reportFormats(@TempDir Path dir) throws Exception {
        Path src = make(dir.resolve("s.safetensors"), WanVariant.T2V_A14B, WanNaming.ORIGINAL, DType.F32, 0, false);
        Path dst = dir.resolve("d.safetensors");
        assertEquals(0, CliRun.of("convert", "--quiet", src.toString(), dst.toString()).code());
        CliRun j = CliRun.of("report", "--format", "json", src.toString(), dst.toString());
        JsonNode rows = new ObjectMapper().readTree(j.out()).get("rows");
        JsonNode total = rows.get(rows.size() - 1);
        assertEquals(Files.size(src) - 8 - headerLen(src), total.get("before_bytes").asLong());
        assertEquals(Manifest.read(Manifest.locate(dst)).totals().outputBytes(), total.get("after_bytes").asLong());
        assertTrue(CliRun.of("report", "--format", "markdown", src.toString(), dst.toString()).out().contains("| attention |"));
        assertTrue(CliRun.of("report", src.toString()).out().contains("ffn"));
    }
}
