package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.TensorSpec;
import dev.fp8q.formats.testing.PythonReference;
import dev.fp8q.testdata.WanNaming;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * convert --lora against an oracle computed here in double from the LoRA values the test wrote (W + strength *
 * alpha / rank * up @ down, one rounding), FP8 codes from the project's encoder on that merged float32 weight, and
 * kept tensors by a nearest-BF16 search; a numpy / ml_dtypes oracle over the same files where Python is available.
 */
class LoraConvertTest {

    /** A LoRA file being built and what it should add to each target. */
    static final class Lora {
        final Map<String, TensorSpec> specs = new LinkedHashMap<>();
        final Map<String, float[]> values = new LinkedHashMap<>();
        /** target (unprefixed model name) -> its delta, in double. */
        final Map<String, double[]> delta = new LinkedHashMap<>();
        final SplittableRandom rnd;

        Lora(long seed) {
            rnd = new SplittableRandom(seed);
        }

        float[] put(String key, DType dt, long[] shape, double sd) {
            long n = 1;
            for (long d : shape) {
                n *= d;
            }
            float[] v = new float[(int) n];
            for (int i = 0; i < v.length; i++) {
                float f = (float) (rnd.nextGaussian() * sd);
                v[i] = dt == DType.BF16 ? Elements.bf16ToFloat(Elements.floatToBf16(f)) : f;
            }
            specs.put(key, new TensorSpec(key, dt, shape));
            values.put(key, v);
            return v;
        }

        void scalar(String key, DType dt, float value) {
            specs.put(key, new TensorSpec(key, dt, new long[0]));
            values.put(key, new float[] {value});
        }

        /** A low-rank pair under the key base: scale = strength * alpha / rank. */
        void pair(String base, String downSuffix, String upSuffix, String target, long out, long in, int rank, double scale) {
            pair(base + downSuffix, base + upSuffix, target, new long[] {rank, in}, new long[] {out, rank}, scale);
        }

        /** down [rank, in...] and up [out, rank, 1...], as conv LoRAs store them. */
        void pair(String downKey, String upKey, String target, long[] downShape, long[] upShape, double scale) {
            int rank = (int) downShape[0];
            long out = upShape[0];
            float[] down = put(downKey, DType.BF16, downShape, 0.05);
            float[] up = put(upKey, DType.BF16, upShape, 0.05);
            long in = down.length / rank;
            double[] d = delta.computeIfAbsent(target, k -> new double[(int) (out * in)]);
            for (int o = 0; o < out; o++) {
                for (int i = 0; i < in; i++) {
                    double s = 0;
                    for (int k = 0; k < rank; k++) {
                        s += (double) up[o * rank + k] * down[(int) (k * in + i)];
                    }
                    d[(int) (o * in + i)] += scale * s;
                }
            }
        }

        void diff(String key, String target, long[] shape, double strength) {
            float[] v = put(key, DType.F32, shape, 0.1);
            double[] d = delta.computeIfAbsent(target, k -> new double[v.length]);
            for (int i = 0; i < v.length; i++) {
                d[i] += strength * v[i];
            }
        }

        Path write(Path file) throws Exception {
            try (SafetensorsWriter w = SafetensorsWriter.create(file, null, new ArrayList<>(specs.values()));
                    Arena arena = Arena.ofConfined()) {
                for (TensorSpec s : specs.values()) {
                    float[] v = values.get(s.name());
                    MemorySegment seg = arena.allocate((long) v.length * s.dtype().bits() / 8);
                    for (int i = 0; i < v.length; i++) {
                        if (s.dtype() == DType.BF16) {
                            seg.setAtIndex(Elements.SHORT, i, Elements.floatToBf16(v[i]));
                        } else {
                            seg.setAtIndex(Elements.FLOAT, i, v[i]);
                        }
                    }
                    w.write(s.name(), seg);
                }
                w.commit();
            }
            return file;
        }
    }

    static final String[] LINEARS = {"self_attn.q", "self_attn.k", "cross_attn.o", "ffn.0", "ffn.2"};

    /** Every FP8 code and scale, and every kept tensor, against the double oracle of the sum of the deltas. */
    static void assertMerged(Path src, Path dst, String prefix, List<Map<String, double[]>> deltas) throws Exception {
        Manifest m = Manifest.read(Manifest.locate(dst));
        int merged = 0;
        try (Checkpoint s = Checkpoint.open(src); Checkpoint d = Checkpoint.open(dst)) {
            for (Manifest.TensorRecord r : m.tensors()) {
                if (r.action().equals("scale")) {
                    continue;
                }
                Checkpoint.Tensor in = s.tensor(r.name()).orElseThrow();
                Checkpoint.Tensor out = d.tensor(r.name()).orElseThrow();
                int n = (int) in.entry().numel();
                double[] w = new double[n];
                for (int i = 0; i < n; i++) {
                    w[i] = Elements.get(in.data(), in.entry().dtype(), i);
                }
                boolean touched = false;
                for (Map<String, double[]> delta : deltas) {
                    double[] dd = delta.get(r.name().substring(prefix.length()));
                    if (r.name().startsWith(prefix) && dd != null) {
                        touched = true;
                        for (int i = 0; i < n; i++) {
                            w[i] += dd[i];
                        }
                    }
                }
                merged += touched ? 1 : 0;
                if (r.action().equals("preserve")) {
                    for (int i = 0; i < n; i++) {
                        short expect = touched ? nearestBf16(w[i]) : in.data().getAtIndex(Elements.SHORT, i);
                        assertEquals(expect, out.data().getAtIndex(Elements.SHORT, i), r.name() + "[" + i + "]");
                    }
                    continue;
                }
                float amax = 0;
                float[] f = new float[n];
                for (int i = 0; i < n; i++) {
                    f[i] = (float) w[i];
                    amax = Math.max(amax, Math.abs(f[i]));
                }
                float scale = amax / 448f;
                assertEquals(scale, d.tensor(r.scaleTensor()).orElseThrow().data().get(Elements.FLOAT, 0), "scale of " + r.name());
                for (int i = 0; i < n; i++) {
                    byte expect = E4M3.encode(Math.max(-448f, Math.min(448f, f[i] / scale)));
                    byte got = out.data().get(ValueLayout.JAVA_BYTE, i);
                    if (expect != got) {
                        throw new AssertionError(r.name() + "[" + i + "]: expected " + expect + " got " + got);
                    }
                }
            }
        }
        long expected = deltas.stream().flatMap(x -> x.keySet().stream()).distinct().count();
        assertEquals(expected, merged, "every target merged");
    }

    /** The BF16 nearest to d (ties to even), by search: independent of the converter's round-to-odd. */
    static short nearestBf16(double d) {
        short mid = (short) (Float.floatToRawIntBits((float) d) >>> 16);
        short best = mid;
        double bestErr = Double.MAX_VALUE;
        for (int k = -1; k <= 1; k++) {
            short c = (short) (mid + k);
            double err = Math.abs(Elements.bf16ToFloat(c) - d);
            if (err < bestErr || err == bestErr && (c & 1) == 0) {
                best = c;
                bestErr = err;
            }
        }
        return best;
    }

    static Path wan(Path dir, WanNaming naming) throws Exception {
        return DropInTest.wan(dir.resolve("wan-" + naming + ".safetensors"), naming);
    }

    /** ComfyUI style: diffusion_model. prefix, lora_down/lora_up, alpha (BF16), a .diff on a norm and a .diff_b on a bias. */
    static Lora comfy(Path src, double strength, long seed) throws Exception {
        Lora l = new Lora(seed);
        int rank = 8;
        float alpha = 16f;
        try (Checkpoint cp = Checkpoint.open(src)) {
            for (String lin : LINEARS) {
                String m = "blocks.0." + lin;
                long[] shape = cp.tensor(m + ".weight").orElseThrow().entry().shape();
                l.pair("diffusion_model." + m, ".lora_down.weight", ".lora_up.weight", m + ".weight", shape[0], shape[1], rank,
                        strength * alpha / rank);
                l.scalar("diffusion_model." + m + ".alpha", DType.BF16, alpha);
            }
            l.diff("diffusion_model.blocks.1.norm3.diff", "blocks.1.norm3.weight", new long[] {128}, strength);
            l.diff("diffusion_model.blocks.1.self_attn.q.diff_b", "blocks.1.self_attn.q.bias", new long[] {128}, strength);
        }
        return l;
    }

    @Test
    void comfyStyleWithNormAndBiasDiffsMergesExactly(@TempDir Path dir) throws Exception {
        Path src = wan(dir, WanNaming.ORIGINAL);
        Lora l = comfy(src, 0.8, 1);
        Path lora = l.write(dir.resolve("comfy.safetensors"));
        Path dst = dir.resolve("out.safetensors");
        DropInTest.ok("convert", "--quiet", src.toString(), dst.toString(), "--lora", lora + ":0.8");
        assertMerged(src, dst, "", List.of(l.delta));
        Manifest m = Manifest.read(Manifest.locate(dst));
        Manifest.LoraRecord r = m.loras().getFirst();
        assertEquals("comfy", r.style());
        assertEquals(0.8, r.strength());
        assertEquals(5 * 3 + 2, r.keysApplied());
        assertTrue(r.targets().contains("blocks.1.norm3.weight") && r.targets().contains("blocks.1.self_attn.q.bias"), r.targets().toString());
        assertTrue(String.valueOf(m.settings().get("lora_merge")).contains("float64"), "the manifest says how it merged");
        assertEquals(dev.fp8q.formats.Crc32c.hex(dev.fp8q.formats.Crc32c.of(MemorySegment.ofArray(Files.readAllBytes(lora)))),
                r.crc32c());
        pythonOracle(src, dst, lora + ":0.8");
    }

    /**
     * --device: cpu and the default (auto: the GPU where there is one) write the same bytes; cuda without a GPU and
     * an unknown device are refused before anything is written.
     */
    @Test
    void whereTheMergeRunsChangesNoByte(@TempDir Path dir) throws Exception {
        Path src = wan(dir, WanNaming.ORIGINAL);
        Path lora = comfy(src, 0.8, 11).write(dir.resolve("comfy.safetensors"));
        Path cpu = dir.resolve("cpu.safetensors");
        Path auto = dir.resolve("auto.safetensors");
        DropInTest.ok("convert", "--quiet", src.toString(), cpu.toString(), "--lora", lora.toString(), "--device", "cpu");
        DropInTest.ok("convert", "--quiet", src.toString(), auto.toString(), "--lora", lora.toString());
        assertEquals(-1L, Files.mismatch(cpu, auto));
        Path none = dir.resolve("none.safetensors");
        CliRun bad = DropInTest.refused("convert", src.toString(), none.toString(), "--lora", lora.toString(), "--device", "tpu");
        assertTrue(bad.err().contains("--device must be auto, cpu or cuda"), bad.err());
        if (!dev.fp8q.verifier.cuda.Gpus.present()) {
            CliRun r = DropInTest.refused("convert", src.toString(), none.toString(), "--lora", lora.toString(), "--device", "cuda");
            assertTrue(r.err().contains("--device cuda:"), r.err());
        }
        assertFalse(Files.exists(none));
    }

    /**
     * The offload path without a GPU: a stand-in device that merges on the CPU gives the CPU conversion's bytes;
     * one that gets a single value wrong is caught by the spot check, by tensor name, and nothing is written.
     */
    @Test
    void anOffloadedMergeIsSpotCheckedAgainstTheCpu(@TempDir Path dir) throws Exception {
        Path src = wan(dir, WanNaming.ORIGINAL);
        Path lora = comfy(src, 1.0, 12).write(dir.resolve("comfy.safetensors"));
        Path cpu = dir.resolve("cpu.safetensors");
        DropInTest.ok("convert", "--quiet", src.toString(), cpu.toString(), "--lora", lora.toString(), "--device", "cpu");
        java.util.Set<String> offloaded = java.util.concurrent.ConcurrentHashMap.newKeySet();
        Path good = dir.resolve("good.safetensors");
        converter(lora).mergeOn(() -> new StandIn(offloaded, -1)).convert(src, good);
        assertEquals(-1L, Files.mismatch(cpu, good));
        assertEquals(LINEARS.length, offloaded.size(), offloaded.toString());

        Path bad = dir.resolve("bad.safetensors");
        long last = 128L * 128 - 1; // in the last four rows of every 2-D target
        var e = org.junit.jupiter.api.Assertions.assertThrows(dev.fp8q.converter.ConvertException.class,
                () -> converter(lora).mergeOn(() -> new StandIn(java.util.concurrent.ConcurrentHashMap.newKeySet(), last)).convert(src, bad));
        assertTrue(e.getMessage().contains("blocks.0.") && e.getMessage().contains("where the CPU gives")
                && e.getMessage().contains("--device cpu"), e.getMessage());
        assertFalse(Files.exists(bad));
    }

    private static dev.fp8q.converter.Converter converter(Path lora) {
        return new dev.fp8q.converter.Converter(new dev.fp8q.converter.Converter.Options("auto",
                dev.fp8q.converter.plan.UserRules.NONE, false, false, 2, false, List.of("fp8q"),
                dev.fp8q.converter.quant.Scaling.PER_TENSOR, dev.fp8q.converter.layout.Layout.COMFY, null, List.of(),
                List.of(new dev.fp8q.formats.lora.LoraSpec(lora, 1.0)), false, false), dev.fp8q.converter.Progress.NONE);
    }

    /** Merges on the CPU with DeltaMerger, as a device would; flips the low bit of element `wrong` (-1: none). */
    private record StandIn(java.util.Set<String> seen, long wrong) implements dev.fp8q.formats.lora.MergeDevice {
        @Override
        public boolean takes(Checkpoint.Tensor target, List<dev.fp8q.formats.lora.LoraMerge.Delta> deltas) {
            return target.entry().rank() == 2;
        }

        @Override
        public MemorySegment allocate(long bytes) {
            return Arena.ofAuto().allocate(bytes, 64);
        }

        @Override
        public void float32(Checkpoint.Tensor target, List<dev.fp8q.formats.lora.LoraMerge.Delta> deltas, MemorySegment out) {
            var m = new dev.fp8q.formats.lora.DeltaMerger(target, deltas);
            double[] v = new double[(int) target.entry().numel()];
            m.merge(0, m.rows(), v);
            for (int i = 0; i < v.length; i++) {
                float f = (float) v[i];
                out.setAtIndex(Elements.FLOAT, i, i == wrong ? Float.intBitsToFloat(Float.floatToRawIntBits(f) ^ 1) : f);
            }
            seen.add(target.name());
        }

        @Override
        public String describe() {
            return "a stand-in";
        }

        @Override
        public void close() {}
    }

    @Test
    void kohyaAndPeftStylesAlphaPresentAbsentAndFromAdapterConfig(@TempDir Path dir) throws Exception {
        Path src = wan(dir, WanNaming.ORIGINAL);
        // kohya: flattened names, F32 alpha
        Lora k = new Lora(2);
        // PEFT without adapter_config.json: alpha = rank (scale 1)
        Lora p = new Lora(3);
        // PEFT with adapter_config.json: lora_alpha 32 over rank 4
        Lora c = new Lora(4);
        try (Checkpoint cp = Checkpoint.open(src)) {
            for (String lin : LINEARS) {
                String m = "blocks.1." + lin;
                long[] s = cp.tensor(m + ".weight").orElseThrow().entry().shape();
                k.pair("lora_unet_" + m.replace('.', '_'), ".lora_down.weight", ".lora_up.weight", m + ".weight", s[0], s[1], 4, -1.5 * 2 / 4);
                k.scalar("lora_unet_" + m.replace('.', '_') + ".alpha", DType.F32, 2f);
                p.pair("transformer." + m, ".lora_A.weight", ".lora_B.weight", m + ".weight", s[0], s[1], 8, 1.0);
                c.pair("base_model.model." + m, ".lora_A.weight", ".lora_B.weight", m + ".weight", s[0], s[1], 4, 1.0 * 32 / 4);
            }
        }
        Path kf = k.write(dir.resolve("kohya.safetensors"));
        Path pf = p.write(dir.resolve("peft.safetensors"));
        Files.createDirectories(dir.resolve("adapter"));
        Path cf = c.write(dir.resolve("adapter/adapter_model.safetensors"));
        Files.writeString(dir.resolve("adapter/adapter_config.json"), "{\"r\": 4, \"lora_alpha\": 32, \"peft_type\": \"LORA\"}");
        Path dk = dir.resolve("k.safetensors");
        DropInTest.ok("convert", "--quiet", src.toString(), dk.toString(), "--lora", kf + ":-1.5");
        assertMerged(src, dk, "", List.of(k.delta));
        assertEquals("kohya", Manifest.read(Manifest.locate(dk)).loras().getFirst().style());
        // two LoRAs on the same targets add up in order; the second from a rules file
        Path rules = Files.writeString(dir.resolve("rules.json"), "{\"loras\": [{\"file\": \"adapter/adapter_model.safetensors\"}]}");
        Path dp = dir.resolve("p.safetensors");
        DropInTest.ok("convert", "--quiet", src.toString(), dp.toString(), "--rules", rules.toString(), "--lora", pf.toString());
        assertMerged(src, dp, "", List.of(c.delta, p.delta));
        List<Manifest.LoraRecord> recs = Manifest.read(Manifest.locate(dp)).loras();
        assertEquals(List.of("peft", "peft"), recs.stream().map(Manifest.LoraRecord::style).toList());
        assertTrue(recs.getFirst().file().endsWith("adapter_model.safetensors"), "rules file LoRAs come first");
    }

    @Test
    void comfyPrefixedLoraOnDiffusersNamedAndPrefixedModels(@TempDir Path dir) throws Exception {
        // a diffusers-named model: the LoRA names its modules in that naming
        Path diff = wan(dir, WanNaming.DIFFUSERS);
        Lora l = new Lora(5);
        try (Checkpoint cp = Checkpoint.open(diff)) {
            for (String m : List.of("blocks.0.attn1.to_q", "blocks.1.ffn.net.0.proj")) {
                long[] s = cp.tensor(m + ".weight").orElseThrow().entry().shape();
                l.pair("diffusion_model." + m, ".lora_A.weight", ".lora_B.weight", m + ".weight", s[0], s[1], 4, 1.0);
            }
        }
        Path lf = l.write(dir.resolve("d.safetensors"));
        Path dd = dir.resolve("dd.safetensors");
        DropInTest.ok("convert", "--quiet", diff.toString(), dd.toString(), "--lora", lf.toString());
        assertMerged(diff, dd, "", List.of(l.delta));
        // a ComfyUI single file whose keys carry model.diffusion_model.: the same LoRA matches under the prefix
        Path plain = wan(dir, WanNaming.ORIGINAL);
        Path prefixed = prefixed(plain, dir.resolve("comfy-file.safetensors"), "model.diffusion_model.");
        Lora c = comfy(plain, 1.0, 6);
        Path cf = c.write(dir.resolve("c.safetensors"));
        Path dc = dir.resolve("dc.safetensors");
        DropInTest.ok("convert", "--quiet", prefixed.toString(), dc.toString(), "--lora", cf.toString());
        assertMerged(prefixed, dc, "model.diffusion_model.", List.of(c.delta));
    }

    @Test
    void convFactorsAndAParameterDiff(@TempDir Path dir) throws Exception {
        Path src = wan(dir, WanNaming.ORIGINAL);
        Lora l = new Lora(12);
        try (Checkpoint cp = Checkpoint.open(src)) {
            long[] w = cp.tensor("patch_embedding.weight").orElseThrow().entry().shape(); // Conv3d [dim, 16, 1, 2, 2]
            l.pair("diffusion_model.patch_embedding.lora_down.weight", "diffusion_model.patch_embedding.lora_up.weight",
                    "patch_embedding.weight", new long[] {4, w[1], w[2], w[3], w[4]}, new long[] {w[0], 4, 1, 1, 1}, 0.6);
            l.diff("diffusion_model.blocks.0.modulation.diff", "blocks.0.modulation",
                    cp.tensor("blocks.0.modulation").orElseThrow().entry().shape(), 0.6);
        }
        Path lf = l.write(dir.resolve("conv.safetensors"));
        for (String[] extra : List.of(new String[] {}, new String[] {"--quantize", "patch_embedding"})) {
            Path dst = dir.resolve("out" + extra.length + ".safetensors");
            List<String> cmd = new ArrayList<>(List.of("convert", "--quiet", src.toString(), dst.toString(), "--lora", lf + ":0.6"));
            cmd.addAll(List.of(extra));
            DropInTest.ok(cmd.toArray(String[]::new));
            assertMerged(src, dst, "", List.of(l.delta)); // kept, then stored FP8 (weight-only)
        }
    }

    @Test
    void unmatchedKeysAndShapeMismatchesAreRefusedByNameUnlessLenient(@TempDir Path dir) throws Exception {
        Path src = wan(dir, WanNaming.ORIGINAL);
        Lora l = comfy(src, 1.0, 7);
        l.put("diffusion_model.blocks.9.self_attn.q.lora_down.weight", DType.BF16, new long[] {8, 128}, 0.05);
        l.put("diffusion_model.blocks.9.self_attn.q.lora_up.weight", DType.BF16, new long[] {128, 8}, 0.05);
        Path bad = l.write(dir.resolve("unmatched.safetensors"));
        Path dst = dir.resolve("out.safetensors");
        CliRun r = DropInTest.refused("convert", src.toString(), dst.toString(), "--lora", bad.toString());
        assertTrue(r.err().contains("unmatched.safetensors") && r.err().contains("diffusion_model.blocks.9.self_attn.q.lora_down.weight")
                && r.err().contains("matches no weight"), r.err());
        assertFalse(Files.exists(dst), "nothing written");
        assertEquals(1, r.err().lines().count(), r.err());

        Lora s = new Lora(8);
        s.put("lora_unet_blocks_0_ffn_0.lora_down.weight", DType.BF16, new long[] {4, 100}, 0.05);
        s.put("lora_unet_blocks_0_ffn_0.lora_up.weight", DType.BF16, new long[] {256, 4}, 0.05);
        s.pair("lora_unet_blocks_0_ffn_2", ".lora_down.weight", ".lora_up.weight", "blocks.0.ffn.2.weight", 128, 256, 4, 1.0);
        Path shape = s.write(dir.resolve("shape.safetensors"));
        CliRun sr = DropInTest.refused("convert", src.toString(), dst.toString(), "--lora", shape.toString());
        assertTrue(sr.err().contains("lora_unet_blocks_0_ffn_0.lora_down.weight") && sr.err().contains("does not fit"), sr.err());
        assertFalse(Files.exists(dst));

        CliRun lenient = DropInTest.ok("convert", src.toString(), dst.toString(), "--lora", bad.toString(), "--lora",
                shape.toString(), "--lora-lenient");
        assertTrue(lenient.err().contains("skipped (--lora-lenient): diffusion_model.blocks.9.self_attn.q.lora_up.weight")
                && lenient.err().contains("lora_unet_blocks_0_ffn_0.lora_down.weight"), lenient.err());
        assertMerged(src, dst, "", List.of(l.delta, s.delta)); // the unmatched extras add nothing
        List<Manifest.LoraRecord> recs = Manifest.read(Manifest.locate(dst)).loras();
        assertEquals(2, recs.getFirst().skipped().size());
        assertEquals(1, recs.get(1).skipped().size(), "the mismatched pair, named by its lora_down");
    }

    @Test
    void planListsTheTensorsALoraChangesAndDequantizeGivesTheMergedModel(@TempDir Path dir) throws Exception {
        Path src = wan(dir, WanNaming.ORIGINAL);
        Lora l = comfy(src, 1.0, 9);
        Path lf = l.write(dir.resolve("l.safetensors"));
        CliRun plan = DropInTest.ok("plan", src.toString(), "--lora", lf.toString());
        assertTrue(plan.out().contains("7 tensors (5 quantized, 2 kept)") && plan.out().contains("quantize  blocks.0.ffn.2.weight")
                && plan.out().contains("preserve  blocks.1.norm3.weight"), plan.out());
        CliRun compare = DropInTest.refused("plan", src.toString(), "--compare", "--lora", lf.toString());
        assertTrue(compare.err().contains("--compare and --budget-db"), compare.err());
        Path dst = dir.resolve("out.safetensors");
        DropInTest.ok("convert", "--quiet", src.toString(), dst.toString(), "--lora", lf.toString());
        Path back = dir.resolve("back.safetensors");
        DropInTest.ok("dequantize", dst.toString(), back.toString(), "--dtype", "f32");
        try (Checkpoint s = Checkpoint.open(src); Checkpoint b = Checkpoint.open(back)) {
            for (String lin : LINEARS) {
                String n = "blocks.0." + lin + ".weight";
                double[] d = l.delta.get(n);
                double toMerged = 0;
                double toSource = 0;
                for (int i = 0; i < d.length; i++) {
                    double w = Elements.get(s.tensor(n).orElseThrow().data(), DType.BF16, i);
                    double got = Elements.get(b.tensor(n).orElseThrow().data(), DType.F32, i);
                    toMerged += (got - w - d[i]) * (got - w - d[i]);
                    toSource += (got - w) * (got - w);
                }
                assertTrue(toMerged * 20 < toSource, n + ": dequantized is the merged weight (" + toMerged + " vs " + toSource + ")");
            }
        }
    }

    @Test
    void verifyComparesWithTheMergedReference(@TempDir Path dir) throws Exception {
        Path src = wan(dir, WanNaming.ORIGINAL);
        Lora l = new Lora(11);
        try (Checkpoint cp = Checkpoint.open(src)) {
            for (String lin : LINEARS) {
                String m = "blocks.1." + lin;
                long[] s = cp.tensor(m + ".weight").orElseThrow().entry().shape();
                l.pair("lora_unet_" + m.replace('.', '_'), ".lora_down.weight", ".lora_up.weight", m + ".weight", s[0], s[1], 8, 1.0);
            }
        }
        Path lf = l.write(dir.resolve("k.safetensors"));
        Path dst = dir.resolve("out.safetensors");
        DropInTest.ok("convert", "--quiet", src.toString(), dst.toString(), "--lora", lf + ":2");
        CliRun merged = CliRun.of("verify", src.toString(), dst.toString(), "--device", "cpu", "--lora", lf + ":2");
        assertEquals(0, merged.code(), merged.out() + merged.err());
        assertTrue(merged.out().contains("0 failed"), merged.out());
        // the unmerged source, or another strength, is not what DST holds: its FP8 codes are named as changed
        for (String[] args : List.of(new String[] {}, new String[] {"--lora", lf + ":1"})) {
            List<String> cmd = new ArrayList<>(List.of("verify", src.toString(), dst.toString(), "--device", "cpu", "--blocks", "1"));
            cmd.addAll(List.of(args));
            CliRun r = CliRun.of(cmd.toArray(String[]::new));
            assertEquals(1, r.code(), r.out() + r.err());
            assertTrue(r.out().contains("blocks.1.ffn.2.weight"), r.out());
            if (args.length == 0) {
                assertTrue(r.err().contains("pass the same --lora"), r.err());
            }
        }
    }

    /** A copy of a checkpoint with every key under a ComfyUI prefix. */
    static Path prefixed(Path src, Path out, String prefix) throws Exception {
        try (Checkpoint cp = Checkpoint.open(src)) {
            List<TensorSpec> specs = new ArrayList<>();
            cp.tensors().forEach(t -> specs.add(new TensorSpec(prefix + t.name(), t.entry().dtype(), t.entry().shape())));
            try (SafetensorsWriter w = SafetensorsWriter.create(out, null, specs)) {
                for (Checkpoint.Tensor t : cp.tensors()) {
                    w.write(prefix + t.name(), t.data());
                }
                w.commit();
            }
        }
        return out;
    }

    /** numpy / ml_dtypes merge the same files in float64 (matmul) and quantize: every FP8 byte and scale equal. */
    static void pythonOracle(Path src, Path dst, String... loras) throws Exception {
        String script = new String(LoraConvertTest.class.getResourceAsStream("/lora_oracle.py").readAllBytes(),
                java.nio.charset.StandardCharsets.UTF_8);
        List<String> args = new ArrayList<>(List.of(src.toString(), dst.toString(), Manifest.locate(dst).toString()));
        args.addAll(List.of(loras));
        String out = PythonReference.run(script, args.toArray(String[]::new));
        assertTrue(out.contains("bad 0") && !out.contains("touched 0 "), out);
    }
}
