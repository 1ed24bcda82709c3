package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.TensorSpec;
import dev.fp8q.formats.testing.PythonReference;
import dev.fp8q.testdata.WanNaming;
import dev.fp8q.testdata.WanVariant;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * DST is a drop-in replacement for SRC (issue 18): a file gives a file, a folder a folder holding every file not
 * converted byte for byte, only the transformers are quantized by default, and nothing outside DST ever changes.
 */
class DropInTest {

    // ---- helpers -------------------------------------------------------------------------------------------

    /** Every file under dir (links followed) with its bytes, by '/'-separated relative path. */
    static Map<String, byte[]> tree(Path dir) throws IOException {
        Map<String, byte[]> out = new TreeMap<>();
        try (Stream<Path> s = Files.walk(dir)) {
            for (Path p : s.filter(Files::isRegularFile).toList()) {
                out.put(dir.relativize(p).toString().replace('\\', '/'), Files.readAllBytes(p));
            }
        }
        return out;
    }

    static void assertSameTree(Map<String, byte[]> before, Map<String, byte[]> after, String what) {
        assertEquals(before.keySet(), after.keySet(), what + ": the same files");
        before.forEach((k, v) -> assertArrayEquals(v, after.get(k), what + ": " + k + " unchanged"));
    }

    /** A safetensors file of BF16 tensors with small deterministic values. */
    static Path tensors(Path file, Map<String, long[]> shapes) throws Exception {
        Files.createDirectories(file.getParent());
        List<TensorSpec> specs = new ArrayList<>();
        shapes.forEach((n, s) -> specs.add(new TensorSpec(n, DType.BF16, s)));
        SplittableRandom rnd = new SplittableRandom(file.getFileName().hashCode());
        try (SafetensorsWriter w = SafetensorsWriter.create(file, null, specs); Arena arena = Arena.ofConfined()) {
            for (var e : shapes.entrySet()) {
                long n = 1;
                for (long d : e.getValue()) {
                    n *= d;
                }
                MemorySegment seg = arena.allocate(2 * n);
                for (long i = 0; i < n; i++) {
                    float v = (float) (rnd.nextGaussian() * 0.05);
                    seg.setAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i, (short) (Float.floatToRawIntBits(v) >>> 16));
                }
                w.write(e.getKey(), seg);
            }
            w.commit();
        }
        return file;
    }

    static Path wan(Path file, WanNaming naming) throws Exception {
        return ConvertCommandTest.make(file, WanVariant.T2V_A14B, naming, DType.BF16, 0, false);
    }

    static Path resource(String name, Path to) throws IOException {
        Files.createDirectories(to.getParent());
        try (InputStream in = DropInTest.class.getResourceAsStream("/drop-in/" + name)) {
            Files.copy(in, to);
        }
        return to;
    }

    /** A Wan 2.2 A14B release folder as published: two experts, T5 and VAE .pth, tokenizer, configuration. */
    static Path release(Path dir) throws Exception {
        Path rel = dir.resolve("Wan2.2-T2V-A14B");
        for (String e : List.of("high_noise_model", "low_noise_model")) {
            wan(rel.resolve(e).resolve("diffusion_pytorch_model.safetensors"), WanNaming.ORIGINAL);
            Files.writeString(rel.resolve(e).resolve("config.json"), "{\"_class_name\": \"WanModel\", \"dim\": 128}\n");
        }
        resource("t5_wan_tiny_bf16.pth", rel.resolve("models_t5_umt5-xxl-enc-bf16.pth"));
        resource("vae_wan_tiny_bf16.pth", rel.resolve("Wan2.1_VAE.pth"));
        Files.createDirectories(rel.resolve("google/umt5-xxl"));
        Files.writeString(rel.resolve("google/umt5-xxl/tokenizer.json"), "{\"model\": \"umt5\"}\n");
        Files.writeString(rel.resolve("configuration.json"), "{\"framework\": \"Pytorch\"}\n");
        Files.writeString(rel.resolve("README.md"), "# Wan2.2\n");
        Files.writeString(rel.resolve("training_state.pt"), "not a torch zip: carried, never read as a model");
        return rel;
    }

    static CliRun ok(String... args) {
        CliRun r = CliRun.of(args);
        assertEquals(0, r.code(), () -> String.join(" ", args) + "\n" + r.out() + r.err());
        return r;
    }

    static CliRun refused(String... args) {
        CliRun r = CliRun.of(args);
        assertEquals(ExitCodes.INPUT_ERROR, r.code(), () -> String.join(" ", args) + "\n" + r.out() + r.err());
        assertEquals(1, r.err().lines().count(), "one error line: " + r.err());
        return r;
    }

    // ---- --force never touches what is not an fp8q output ---------------------------------------------------

    @Test
    void forceRefusesEveryDstThatIsNotAnEarlierOutput(@TempDir Path dir) throws Exception {
        Path sb2 = dir.resolve("sb2");
        Path a = wan(sb2.resolve("a.safetensors"), WanNaming.ORIGINAL);
        Files.createDirectories(sb2.resolve("keepme"));
        Files.writeString(sb2.resolve("keepme/notes.txt"), "mine");
        Map<String, byte[]> before = tree(dir);

        assertTrue(refused("convert", "--quiet", a.toString(), sb2.toString(), "--force").err().contains("folder"));
        assertTrue(refused("convert", "--quiet", a.toString(), a.toString(), "--force").err().contains("DST is SRC"));
        assertTrue(refused("convert", "--quiet", sb2.toString(), dir.toString(), "--force").err().contains("holds SRC"));
        assertTrue(refused("convert", "--quiet", sb2.toString(), sb2.resolve("keepme").toString(), "--force").err()
                .contains("inside SRC"));
        assertTrue(refused("convert", "--quiet", sb2.toString(), sb2.toString(), "--force").err().contains("DST is SRC"));
        Path other = Files.createDirectories(dir.resolve("other"));
        Files.writeString(other.resolve("data.bin"), "not fp8q's");
        Map<String, byte[]> withOther = tree(dir);
        assertTrue(refused("convert", "--quiet", sb2.toString(), other.toString(), "--force").err().contains("data.bin"));
        Path plain = dir.resolve("plain.safetensors");
        Files.copy(a, plain);
        assertTrue(refused("convert", "--quiet", a.toString(), plain.toString(), "--force").err().contains("not an fp8q output"));
        Files.delete(plain);
        for (String src : List.of(sb2.toString(), a.toString())) { // DST = ".", run from the folder holding SRC
            Process p = new ProcessBuilder(ProcessHandle.current().info().command().orElse("java"), "--add-modules",
                    "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"), "dev.fp8q.cli.Main", "convert",
                    "--quiet", "--force", src, ".").directory(dir.toFile()).redirectErrorStream(true)
                    .redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS));
            assertEquals(ExitCodes.INPUT_ERROR, p.exitValue(), "convert " + src + " . --force");
        }
        assertTrue(refused("testdata", "make", sb2.toString(), "--force").err().contains("notes.txt"),
                "testdata --force replaces only what testdata writes");
        assertSameTree(withOther, tree(dir), "after every refusal");
        Files.delete(other.resolve("data.bin"));
        Files.delete(other);
        assertSameTree(before, tree(dir), "SRC side");

        // dequantize sb4/fp8 sb4 --force: sb4 holds fp8 and other/: refused
        Path sb4 = dir.resolve("sb4");
        ok("convert", "--quiet", sb2.toString(), sb4.resolve("fp8").toString());
        Files.createDirectories(sb4.resolve("other"));
        Files.writeString(sb4.resolve("other/x.txt"), "x");
        Map<String, byte[]> sb4Before = tree(sb4);
        assertTrue(refused("dequantize", sb4.resolve("fp8").toString(), sb4.toString(), "--force").err().contains("holds SRC"));
        assertTrue(refused("dequantize", sb4.resolve("fp8").toString(), sb4.resolve("other").toString(), "--force").err()
                .contains("x.txt"));
        assertSameTree(sb4Before, tree(sb4), "dequantize refusals");
    }

    @Test
    void forceReplacesAnEarlierOutputButNotOneWithUserFilesInIt(@TempDir Path dir) throws Exception {
        Path src = Files.createDirectories(dir.resolve("model"));
        wan(src.resolve("model.safetensors"), WanNaming.ORIGINAL);
        Path dst = dir.resolve("fp8");
        ok("convert", "--quiet", src.toString(), dst.toString());
        assertTrue(refused("convert", "--quiet", src.toString(), dst.toString()).err().contains("--force"));
        ok("convert", "--quiet", "--force", "--scaling", "tensor", src.toString(), dst.toString());
        Files.writeString(dst.resolve("notes.txt"), "mine");
        assertTrue(refused("convert", "--quiet", "--force", src.toString(), dst.toString()).err().contains("notes.txt"));
        assertEquals("mine", Files.readString(dst.resolve("notes.txt")));
        Path empty = Files.createDirectories(dir.resolve("empty"));
        ok("convert", "--quiet", "--force", src.toString(), empty.toString());
        assertTrue(Files.isRegularFile(empty.resolve(Manifest.FILE)));
    }

    // ---- a file gives a file ----------------------------------------------------------------------------------

    @Test
    void aFileGivesAFileWithItsManifestBeside(@TempDir Path dir) throws Exception {
        Path src = wan(dir.resolve("t2v.safetensors"), WanNaming.ORIGINAL);
        Path dst = dir.resolve("wan_fp8_scaled.safetensors");
        ok("convert", "--quiet", src.toString(), dst.toString());
        assertTrue(Files.isRegularFile(dst), "a file, not a folder");
        Path manifest = dir.resolve("wan_fp8_scaled.fp8-manifest.json");
        assertTrue(Files.isRegularFile(manifest));
        Manifest m = Manifest.read(manifest);
        assertEquals(20, m.totals().quantized());
        assertEquals(List.of("wan_fp8_scaled.safetensors"), m.files());
        assertEquals("t2v.safetensors", m.sources().getFirst().file(), "relative to SRC");
        assertTrue(ok("check", dst.toString()).out().startsWith("ok"));
        ok("verify", "--quiet", "--device", "cpu", "--grid", "2,2,2", "--context-tokens", "4", src.toString(), dst.toString());
        assertTrue(ok("report", src.toString(), dst.toString()).out().contains("TOTAL"));
        ok("convert", "--quiet", "--force", src.toString(), dst.toString());
        try (var s = Files.list(dir)) {
            assertEquals(List.of("t2v.safetensors", "wan_fp8_scaled.fp8-manifest.json", "wan_fp8_scaled.safetensors"),
                    s.map(p -> p.getFileName().toString()).sorted().toList(), "nothing else left beside them");
        }
        Path noExt = dir.resolve("out");
        ok("convert", "--quiet", src.toString(), noExt.toString());
        assertTrue(Files.isRegularFile(dir.resolve("out.safetensors")) && Files.isRegularFile(dir.resolve("out.fp8-manifest.json")));
        String keys = PythonReference.run("import sys\nfrom safetensors import safe_open\n"
                + "with safe_open(sys.argv[1], 'np') as f: print(len(list(f.keys())))", dst.toString());
        try (Checkpoint cp = Checkpoint.open(dst)) {
            assertEquals(String.valueOf(cp.size()), keys.trim(), "the reference library reads every tensor");
        }
    }

    // ---- folders come back complete ----------------------------------------------------------------------------

    @Test
    void aWanReleaseComesBackCompleteWithOnlyTheExpertsQuantized(@TempDir Path dir) throws Exception {
        Path rel = release(dir);
        Map<String, byte[]> before = tree(rel);
        Path dst = dir.resolve("fp8");
        CliRun r = ok("convert", rel.toString(), dst.toString());
        assertTrue(r.out().contains("3 component(s) copied unchanged") && r.out().contains("TOTAL"), r.out());
        Map<String, byte[]> out = tree(dst);
        List<String> expected = new ArrayList<>(before.keySet());
        expected.add(Manifest.FILE);
        assertEquals(expected.stream().sorted().toList(), List.copyOf(out.keySet()), "SRC's files plus the manifest");
        for (String f : List.of("models_t5_umt5-xxl-enc-bf16.pth", "Wan2.1_VAE.pth", "google/umt5-xxl/tokenizer.json",
                "configuration.json", "README.md", "training_state.pt")) {
            assertArrayEquals(before.get(f), out.get(f), f + " byte for byte");
        }
        Manifest m = Manifest.read(dst.resolve(Manifest.FILE));
        assertEquals(40, m.totals().quantized());
        assertEquals(List.copyOf(out.keySet()), m.files());
        ok("verify", "--quiet", "--device", "cpu", "--grid", "2,2,2", "--context-tokens", "4", rel.toString(), dst.toString());
        ok("check", dst.toString());
        assertSameTree(before, tree(rel), "SRC");
    }

    @Test
    void askedForTheWanT5AndVaeGivesFullyQuantizedSafetensorsBesideThem(@TempDir Path dir) throws Exception {
        Path rel = release(dir);
        Path dst = dir.resolve("fp8");
        ok("convert", "--quiet", "--components", "text_encoder,vae", rel.toString(), dst.toString());
        assertFalse(Files.exists(dst.resolve("models_t5_umt5-xxl-enc-bf16.pth")), "converted, not carried");
        Path t5 = dst.resolve("models_t5_umt5-xxl-enc-fp8.safetensors");
        try (Checkpoint cp = Checkpoint.open(t5)) {
            for (String n : List.of("attn.q", "attn.k", "attn.v", "attn.o", "ffn.gate.0", "ffn.fc1", "ffn.fc2")) {
                assertEquals(DType.F8_E4M3, cp.tensor("blocks.1." + n + ".weight").orElseThrow().entry().dtype(), n);
            }
            assertEquals(DType.BF16, cp.tensor("token_embedding.weight").orElseThrow().entry().dtype());
            assertEquals(DType.BF16, cp.tensor("blocks.0.norm1.weight").orElseThrow().entry().dtype());
        }
        try (Checkpoint cp = Checkpoint.open(dst.resolve("Wan2.1_VAE-fp8.safetensors"))) {
            assertEquals(DType.F8_E4M3, cp.tensor("encoder.conv1.weight").orElseThrow().entry().dtype(), "Conv3d weight-only");
            assertEquals(DType.BF16, cp.tensor("encoder.conv1.bias").orElseThrow().entry().dtype());
        }
        Manifest m = Manifest.read(dst.resolve(Manifest.FILE));
        assertTrue(m.tensors().stream().anyMatch(t -> t.rule().startsWith("weight-only:storage")));
        ok("check", dst.toString());
        ok("dequantize", dst.toString(), dir.resolve("bf16").toString());
        assertTrue(Files.isRegularFile(dir.resolve("bf16/google/umt5-xxl/tokenizer.json")));
    }

    @Test
    void aConvertedPthBesideTheWeightsLeavesTheFolderConfigToThem(@TempDir Path dir) throws Exception {
        Path rel = ConvertCommandTest.make(dir.resolve("Wan2.2-TI2V-5B"), WanVariant.TI2V_5B, WanNaming.ORIGINAL, DType.BF16,
                400_000, false); // the 5B release: the DiT's shards at the top, beside the T5 .pth
        Files.writeString(rel.resolve("config.json"), "{\"_class_name\": \"WanModel\", \"dim\": 128}\n");
        resource("t5_wan_tiny_bf16.pth", rel.resolve("models_t5_umt5-xxl-enc-bf16.pth"));
        Path dst = dir.resolve("fp8");
        CliRun r = ok("convert", "--quiet", "--layout", "compressed-tensors", "--components", "t5", rel.toString(), dst.toString());
        String cfg = Files.readString(dst.resolve("config.json"));
        assertTrue(cfg.contains("\"dim\"") && cfg.contains("compressed-tensors"), "the DiT's config, with its scheme: " + cfg);
        assertTrue(r.err().contains("a single-file output has no config.json of its own"), r.err());
        assertTrue(Files.isRegularFile(dst.resolve("models_t5_umt5-xxl-enc-fp8.safetensors")));
    }

    @Test
    void aDiffusersPipelineConvertsItsTransformerAndCarriesTheRest(@TempDir Path dir) throws Exception {
        Path p = Files.createDirectories(dir.resolve("Wan2.2-T2V-A14B-Diffusers"));
        Files.writeString(p.resolve("model_index.json"), """
                {"_class_name": "WanPipeline", "_diffusers_version": "0.35.0", "boundary_ratio": 0.875,
                 "scheduler": ["diffusers", "UniPCMultistepScheduler"], "text_encoder": ["transformers", "UMT5EncoderModel"],
                 "tokenizer": ["transformers", "T5TokenizerFast"], "transformer": ["diffusers", "WanTransformer3DModel"],
                 "transformer_2": ["diffusers", "WanTransformer3DModel"], "vae": ["diffusers", "AutoencoderKLWan"]}
                """);
        for (String t : List.of("transformer", "transformer_2")) {
            wan(p.resolve(t).resolve("diffusion_pytorch_model.safetensors"), WanNaming.DIFFUSERS);
            Files.writeString(p.resolve(t).resolve("config.json"), "{\"_class_name\": \"WanTransformer3DModel\", \"_diffusers_version\": \"0.35.0\"}\n");
        }
        Map<String, long[]> t5 = new LinkedHashMap<>();
        t5.put("shared.weight", new long[] {64, 32});
        for (String n : List.of("q", "k", "v", "o")) {
            t5.put("encoder.block.0.layer.0.SelfAttention." + n + ".weight", new long[] {32, 32});
        }
        t5.put("encoder.block.0.layer.1.DenseReluDense.wi_0.weight", new long[] {64, 32});
        t5.put("encoder.block.0.layer.1.DenseReluDense.wo.weight", new long[] {32, 64});
        tensors(p.resolve("text_encoder/model.safetensors"), t5);
        Files.writeString(p.resolve("text_encoder/config.json"), "{\"architectures\": [\"UMT5EncoderModel\"]}\n");
        tensors(p.resolve("vae/diffusion_pytorch_model.safetensors"), Map.of("encoder.conv_in.weight", new long[] {16, 3, 3, 3, 3},
                "decoder.conv_out.weight", new long[] {3, 16, 3, 3, 3}));
        Files.writeString(p.resolve("vae/config.json"), "{\"_class_name\": \"AutoencoderKLWan\"}\n");
        Files.createDirectories(p.resolve("tokenizer"));
        Files.writeString(p.resolve("tokenizer/tokenizer_config.json"), "{}\n");
        Files.createDirectories(p.resolve("scheduler"));
        Files.writeString(p.resolve("scheduler/scheduler_config.json"), "{\"_class_name\": \"UniPCMultistepScheduler\"}\n");
        Map<String, byte[]> before = tree(p);
        Path dst = dir.resolve("fp8");
        ok("convert", "--quiet", p.toString(), dst.toString());
        Map<String, byte[]> out = tree(dst);
        List<String> expected = new ArrayList<>(before.keySet());
        expected.add(Manifest.FILE);
        assertEquals(expected.stream().sorted().toList(), List.copyOf(out.keySet()));
        for (String f : before.keySet()) {
            if (!f.startsWith("transformer")) {
                assertArrayEquals(before.get(f), out.get(f), f + " carried byte for byte (configs of untouched components too)");
            }
        }
        Manifest m = Manifest.read(dst.resolve(Manifest.FILE));
        assertEquals(40, m.totals().quantized(), "both transformers, nothing else");
        assertEquals(List.of("text_encoder:copied", "transformer:converted", "transformer_2:converted", "vae:copied"),
                m.components().stream().map(c -> c.name() + ":" + c.action()).toList());
        ok("verify", "--quiet", "--device", "cpu", "--grid", "2,2,2", "--context-tokens", "4", p.toString(), dst.toString());
        ok("convert", "--quiet", "--components", "text_encoder", p.toString(), dir.resolve("fp8-te").toString());
        try (Checkpoint cp = Checkpoint.open(dir.resolve("fp8-te/text_encoder"))) {
            assertEquals(DType.F8_E4M3, cp.tensor("encoder.block.0.layer.1.DenseReluDense.wi_0.weight").orElseThrow().entry().dtype());
            assertEquals(DType.BF16, cp.tensor("shared.weight").orElseThrow().entry().dtype());
        }
        assertSameTree(before, tree(p), "SRC");
    }

    @Test
    void anHfModelFolderKeepsItsTokenizerAndGenerationConfig(@TempDir Path dir) throws Exception {
        Path src = Files.createDirectories(dir.resolve("llm"));
        Map<String, long[]> s = new LinkedHashMap<>();
        s.put("model.embed_tokens.weight", new long[] {64, 32});
        for (String n : List.of("q_proj", "k_proj", "v_proj", "o_proj")) {
            s.put("model.layers.0.self_attn." + n + ".weight", new long[] {32, 32});
        }
        s.put("model.layers.0.mlp.up_proj.weight", new long[] {64, 32});
        tensors(src.resolve("model.safetensors"), s);
        for (String f : List.of("config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json")) {
            Files.writeString(src.resolve(f), "{\"file\": \"" + f + "\"}\n");
        }
        Path dst = dir.resolve("fp8");
        ok("convert", "--quiet", src.toString(), dst.toString());
        for (String f : List.of("generation_config.json", "tokenizer.json", "tokenizer_config.json")) {
            assertEquals(Files.readString(src.resolve(f)), Files.readString(dst.resolve(f)), f);
        }
        assertTrue(Files.readString(dst.resolve("config.json")).contains("quantization_config"), "the quantized model's config");
    }

    // ---- ComfyUI single files, nothing to do, quiet, threads -------------------------------------------------

    @Test
    void comfyPrefixedKeysAreMatchedWithoutThePrefixAndWrittenWithIt(@TempDir Path dir) throws Exception {
        Path plain = wan(dir.resolve("plain.safetensors"), WanNaming.ORIGINAL);
        for (String prefix : List.of("model.diffusion_model.", "diffusion_model.")) {
            Path src = dir.resolve(prefix + "safetensors");
            Map<String, long[]> shapes = new LinkedHashMap<>();
            try (Checkpoint cp = Checkpoint.open(plain)) {
                cp.tensors().forEach(t -> shapes.put(prefix + t.name(), t.entry().shape()));
            }
            shapes.put("first_stage_model.decoder.proj.weight", new long[] {32, 32});
            tensors(src, shapes);
            Path dst = dir.resolve(prefix + "fp8.safetensors");
            assertTrue(ok("inspect", "--summary", src.toString()).out().contains("wan t2v"), "detected under the prefix");
            CliRun r = ok("convert", src.toString(), dst.toString());
            assertTrue(r.out().contains("20 tensors quantized"), r.out());
            try (Checkpoint cp = Checkpoint.open(dst)) {
                assertEquals(DType.F8_E4M3, cp.tensor(prefix + "blocks.0.self_attn.q.weight").orElseThrow().entry().dtype());
                assertTrue(cp.tensor(prefix + "blocks.0.self_attn.q.weight_scale").isPresent());
                assertEquals(DType.BF16, cp.tensor("first_stage_model.decoder.proj.weight").orElseThrow().entry().dtype(),
                        "another model's key in the file is kept");
            }
        }
    }

    @Test
    void quantizingNothingIsAnErrorNamingWhy(@TempDir Path dir) throws Exception {
        Path unknown = tensors(dir.resolve("unknown.safetensors"), Map.of("foo.bar.weight", new long[] {32, 32}));
        CliRun r = refused("convert", "--quiet", unknown.toString(), dir.resolve("a.safetensors").toString());
        assertTrue(r.err().contains("nothing to quantize") && r.err().contains("--preset"), r.err());
        Path src = wan(dir.resolve("t2v.safetensors"), WanNaming.ORIGINAL);
        Path fp8 = dir.resolve("fp8.safetensors");
        ok("convert", "--quiet", src.toString(), fp8.toString());
        CliRun again = refused("convert", "--quiet", fp8.toString(), dir.resolve("b.safetensors").toString());
        assertTrue(again.err().contains("already FP8") && again.err().contains("dequantize"), again.err());
        assertFalse(Files.exists(dir.resolve("a.safetensors")) || Files.exists(dir.resolve("b.safetensors")));
    }

    @Test
    void quietPrintsNothingAndThreadsMustBePositive(@TempDir Path dir) throws Exception {
        Path src = wan(dir.resolve("t2v.safetensors"), WanNaming.ORIGINAL);
        CliRun r = ok("convert", "--quiet", src.toString(), dir.resolve("q.safetensors").toString());
        assertEquals("", r.out());
        assertEquals("", r.err());
        for (String t : List.of("0", "-3")) {
            assertTrue(refused("convert", "--threads", t, src.toString(), dir.resolve("t.safetensors").toString()).err()
                    .contains("--threads"));
        }
    }

    // ---- interrupts ---------------------------------------------------------------------------------------------

    @Test
    void sigintAndSigtermRemoveTheTemporaryOutputAndTheLock(@TempDir Path dir) throws Exception {
        Path src = dir.resolve("src");
        dev.fp8q.testdata.WanCheckpoints.make(new dev.fp8q.testdata.WanCheckpoints.Request(WanVariant.T2V_A14B,
                WanNaming.ORIGINAL, dev.fp8q.testdata.WanDims.tiny(WanVariant.T2V_A14B).withDim(1024, 4096).withLayers(4),
                DType.F32, 64L << 20, false, 0, 2), src);
        for (String signal : List.of("INT", "TERM")) {
            Path dst = dir.resolve("dst-" + signal);
            String java = ProcessHandle.current().info().command().orElse("java");
            Path log = dir.resolve("child-" + signal + ".log");
            Process p = new ProcessBuilder(java, "--add-modules", "jdk.incubator.vector", "-Dfp8q.direct=false",
                    "-cp", System.getProperty("java.class.path"), "dev.fp8q.cli.Main", "convert", "--quiet", "--threads", "1",
                    src.toString(), dst.toString()).redirectErrorStream(true).redirectOutput(log.toFile()).start();
            long deadline = System.nanoTime() + 60_000_000_000L;
            while (p.isAlive() && System.nanoTime() < deadline && !tempPresent(dir, "dst-" + signal)) {
                Thread.sleep(5);
            }
            org.junit.jupiter.api.Assumptions.assumeTrue(p.isAlive(), "the run ended before it could be interrupted");
            new ProcessBuilder("kill", "-" + signal, Long.toString(p.pid())).start().waitFor();
            assertTrue(p.waitFor(60, TimeUnit.SECONDS));
            String out = Files.readString(log).replaceAll("(?m)^WARNING: Using incubator modules.*\\R", "");
            assertEquals(130, p.exitValue(), out);
            assertEquals(1, out.lines().count(), "one line: " + out);
            assertTrue(out.contains("interrupted"), out);
            assertFalse(tempPresent(dir, "dst-" + signal), "no temporary folder left");
            assertFalse(Files.exists(dir.resolve(".dst-" + signal + ".fp8q-lock")), "no lock left");
            assertFalse(Files.exists(dst));
        }
    }

    private static boolean tempPresent(Path dir, String dst) throws IOException {
        try (var s = Files.list(dir)) {
            return s.anyMatch(f -> f.getFileName().toString().startsWith("." + dst + ".fp8q-tmp-"));
        }
    }
}
