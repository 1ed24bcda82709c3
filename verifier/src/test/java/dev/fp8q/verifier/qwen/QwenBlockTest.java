package dev.fp8q.verifier.qwen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.TensorSpec;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import dev.fp8q.verifier.Verifier;
import dev.fp8q.verifier.VerifyReport;
import dev.fp8q.verifier.check.Bounds;
import dev.fp8q.verifier.check.Check;
import dev.fp8q.verifier.cuda.Gpus;
import dev.fp8q.verifier.report.VerifyReports;
import dev.fp8q.verifier.run.ReferenceWeights;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The float32 Qwen-Image block and verify's figures against the independent float64 block of diffusers' math. */
class QwenBlockTest {

    static final int DIM = TinyQwen.DIM;
    static final int[] GRID = {2, 3, 4};
    static final int TEXT = 5;
    static final QwenNaming NAMES = new QwenNaming("");

    static double[][] rows(float[] v) {
        double[][] out = new double[v.length / DIM][DIM];
        for (int t = 0; t < out.length; t++) {
            for (int i = 0; i < DIM; i++) {
                out[t][i] = v[t * DIM + i];
            }
        }
        return out;
    }

    static double[] doubles(float[] v) {
        double[] out = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = v[i];
        }
        return out;
    }

    /** ||got - want|| / ||want - x||: the error relative to the block's update. */
    static double relToUpdate(float[] got, double[] want, float[] x) {
        double e = 0;
        double u = 0;
        for (int i = 0; i < got.length; i++) {
            e += (got[i] - want[i]) * (got[i] - want[i]);
            u += (want[i] - x[i]) * (want[i] - x[i]);
        }
        return Math.sqrt(e / u);
    }

    static double sqnr(double[] ref, double[] out, float[] minus) {
        double s = 0;
        double n = 0;
        for (int i = 0; i < ref.length; i++) {
            double r = ref[i] - (minus == null ? 0 : minus[i]);
            double o = out[i] - (minus == null ? 0 : minus[i]);
            s += r * r;
            n += (o - r) * (o - r);
        }
        return 10 * Math.log10(s / n);
    }

    static double[][] reference64(Map<String, float[]> w, boolean w8a8, int block, QwenInputs in) {
        return new QwenReference64(w, DIM, base -> w8a8 && TinyQwen.FP8.matcher(base + ".weight").find())
                .forward(block, rows(in.img()), rows(in.txt()), doubles(in.temb()), in.grid());
    }

    @Test
    void float32BlockMatchesIndependentFloat64Block(@TempDir Path dir) throws Exception {
        Path src = TinyQwen.write(dir.resolve("src.safetensors"), 1, 3);
        QwenInputs in;
        QwenBlock.Streams got;
        try (Checkpoint c = Checkpoint.open(src)) {
            ReferenceWeights w = new ReferenceWeights(c);
            in = QwenInputs.synthetic(NAMES, DIM, GRID, TEXT, 5, w);
            got = new QwenBlock(NAMES, DIM).forward(0, in, w);
        }
        double[][] want = reference64(TinyQwen.values(src), false, 0, in);
        double img = relToUpdate(got.img(), want[0], in.img());
        double txt = relToUpdate(got.txt(), want[1], in.txt());
        assertTrue(img < 2e-5 && txt < 2e-5, "relative error image " + img + ", text " + txt);
        // the updates are a real part of the output, so the comparison sees the block's math
        assertTrue(sqnr(want[0], doubles(in.img()), null) < 30 && sqnr(want[1], doubles(in.txt()), null) < 30);
    }

    @Test
    void ropeTurnsTokensWhereQwenEmbedRopePutsThem() {
        int[] grid = {3, 7, 10};
        int text = 9;
        SplittableRandom r = new SplittableRandom(1);
        int tokens = grid[0] * grid[1] * grid[2];
        float[] img = new float[tokens * DIM];
        float[] txt = new float[text * DIM];
        for (int i = 0; i < img.length; i++) {
            img[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < txt.length; i++) {
            txt[i] = (float) r.nextGaussian();
        }
        double[][] wantImg = rows(img);
        double[][] wantTxt = rows(txt);
        double[][][] freqs = QwenReference64.ropeFreqs(grid, text);
        QwenReference64 ref = new QwenReference64(Map.of(), DIM, b -> false);
        ref.rotate(wantImg, freqs[0]);
        ref.rotate(wantTxt, freqs[1]);
        QwenRope.apply(img, QwenRope.imagePositions(grid), DIM);
        QwenRope.apply(txt, QwenRope.textPositions(grid, text), DIM);
        for (int t = 0; t < tokens; t++) {
            for (int i = 0; i < DIM; i++) {
                assertEquals(wantImg[t][i], img[t * DIM + i], 2e-5, "image token " + t + " value " + i);
            }
        }
        for (int t = 0; t < text; t++) {
            for (int i = 0; i < DIM; i++) {
                assertEquals(wantTxt[t][i], txt[t * DIM + i], 2e-5, "text token " + t + " value " + i);
            }
        }
    }

    @Test
    void timestepProjectionIsDiffusersTimesteps() {
        for (double t : new double[] {0, 0.437, 0.999}) {
            double[] want = QwenReference64.timestepProjection(t);
            float[] got = QwenInputs.timestepProjection(t);
            for (int i = 0; i < want.length; i++) {
                assertEquals(want[i], got[i], 1e-6, "t " + t + " channel " + i);
            }
        }
    }

    @Test
    void verifyFiguresMatchTheFloat64BlockForBothStreams(@TempDir Path dir) throws Exception {
        Path src = TinyQwen.write(dir.resolve("src.safetensors"), 2, 11);
        Path dst = TinyQwen.quantize(src, dir.resolve("fp8.safetensors"));
        var opts = new Verifier.Options(List.of(1), GRID, TEXT, 7, null, Verifier.WeightScope.ALL, Bounds.defaults(),
                32, 64, s -> { }, Verifier.Device.CPU);
        VerifyReport report = Verifier.verify(src, dst, opts);
        assertTrue(report.summary().passed(), () -> report.failures().toString());
        assertEquals("qwen-image", report.components().get(0).architecture());
        assertEquals(List.of(1), report.components().get(0).blocks());
        assertEquals(12 * 2, report.checks().stream().filter(c -> c.scope().equals("linear")).count(),
                "every FP8 Linear of block 1 probed, both runs");
        assertTrue(VerifyReports.json(report).contains("\"stream\" : \"text\"")
                || VerifyReports.json(report).contains("\"stream\":\"text\""));

        QwenInputs in;
        try (Checkpoint s = Checkpoint.open(src)) {
            in = QwenInputs.synthetic(NAMES, DIM, GRID, TEXT, 7, new ReferenceWeights(s));
        }
        Map<String, float[]> source = TinyQwen.values(src);
        Map<String, float[]> dequant = TinyQwen.values(dst);
        double[][] ref = reference64(source, false, 1, in);
        for (String run : List.of("weight_only", "w8a8")) {
            double[][] out = reference64(dequant, run.equals("w8a8"), 1, in);
            for (int s = 0; s < 2; s++) {
                String stream = s == 0 ? "image" : "text";
                float[] x = s == 0 ? in.img() : in.txt();
                double output = sqnr(ref[s], out[s], null);
                double update = sqnr(ref[s], out[s], x);
                Check o = find(report, "block_output", run, stream);
                Check u = find(report, "block_update", run, stream);
                System.out.printf(Locale.ROOT, "%s %s: output %.2f dB (float64 %.2f), update %.2f dB (float64 %.2f)%n",
                        run, stream, o.metrics().sqnrDb(), output, u.metrics().sqnrDb(), update);
                assertEquals(output, o.metrics().sqnrDb(), 0.05, run + " " + stream + " output");
                assertEquals(update, u.metrics().sqnrDb(), 0.05, run + " " + stream + " update");
            }
        }
    }

    @Test
    void capturedActivationsGiveTheFiguresOfTheSameSeededInputs(@TempDir Path dir) throws Exception {
        Path src = TinyQwen.write(dir.resolve("src.safetensors"), 1, 13);
        Path dst = TinyQwen.quantize(src, dir.resolve("fp8.safetensors"));
        QwenInputs in;
        try (Checkpoint s = Checkpoint.open(src)) {
            in = QwenInputs.synthetic(NAMES, DIM, GRID, TEXT, 9, new ReferenceWeights(s));
        }
        Path act = dir.resolve("act.safetensors");
        List<TensorSpec> specs = List.of(new TensorSpec("img", DType.F32, new long[] {in.imageTokens(), DIM}),
                new TensorSpec("txt", DType.F32, new long[] {TEXT, DIM}), new TensorSpec("temb", DType.F32, new long[] {DIM}),
                new TensorSpec("grid", DType.I64, new long[] {3}));
        try (Arena arena = Arena.ofConfined(); SafetensorsWriter w = SafetensorsWriter.create(act, Map.of(), specs)) {
            w.write("img", arena.allocateFrom(ValueLayout.JAVA_FLOAT_UNALIGNED, in.img()));
            w.write("txt", arena.allocateFrom(ValueLayout.JAVA_FLOAT_UNALIGNED, in.txt()));
            w.write("temb", arena.allocateFrom(ValueLayout.JAVA_FLOAT_UNALIGNED, in.temb()));
            MemorySegment g = arena.allocate(24);
            for (int i = 0; i < 3; i++) {
                g.setAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i, GRID[i]);
            }
            w.write("grid", g);
            w.commit();
        }
        VerifyReport seeded = Verifier.verify(src, dst, new Verifier.Options(null, GRID, TEXT, 9, null,
                Verifier.WeightScope.NONE, Bounds.defaults(), 32, 64, s -> { }, Verifier.Device.CPU));
        VerifyReport captured = Verifier.verify(src, dst, new Verifier.Options(null, new int[] {1, 1, 1}, 1, 0, act,
                Verifier.WeightScope.NONE, Bounds.defaults(), 32, 64, s -> { }, Verifier.Device.CPU));
        assertTrue(captured.components().get(0).notes().contains("activations from " + act));
        assertEquals(seeded.checks().size(), captured.checks().size());
        for (int i = 0; i < seeded.checks().size(); i++) {
            assertEquals(seeded.checks().get(i).name(), captured.checks().get(i).name());
            assertEquals(seeded.checks().get(i).metrics().sqnrDb(), captured.checks().get(i).metrics().sqnrDb(), 1e-9,
                    seeded.checks().get(i).name());
        }
    }

    @Test
    void onAGpuTheBlocksRunThereAndAgreeWithTheCpu(@TempDir Path dir) throws Exception {
        assumeTrue(Gpus.present(), "no GPU here (CI)");
        Path src = TinyQwen.write(dir.resolve("src.safetensors"), 1, 17);
        Path dst = TinyQwen.quantize(src, dir.resolve("fp8.safetensors"));
        VerifyReport gpu = Verifier.verify(src, dst, new Verifier.Options(null, GRID, TEXT, 1, null,
                Verifier.WeightScope.NONE, Bounds.defaults(), 32, 64, s -> { }, Verifier.Device.CUDA));
        VerifyReport cpu = Verifier.verify(src, dst, new Verifier.Options(null, GRID, TEXT, 1, null,
                Verifier.WeightScope.NONE, Bounds.defaults(), 32, 64, s -> { }, Verifier.Device.CPU));
        assertTrue(gpu.summary().passed(), () -> gpu.failures().toString());
        for (String stream : List.of("image", "text")) {
            // the GPU's w8a8_simulated is the CPU's W8A8 up to the BF16 reference's rounding
            assertEquals(find(cpu, "block_update", "w8a8", stream).metrics().sqnrDb(),
                    find(gpu, "block_update", "w8a8_simulated", stream).metrics().sqnrDb(), 3.0, stream);
        }
    }

    static Check find(VerifyReport r, String scope, String run, String stream) {
        return r.checks().stream().filter(c -> c.scope().equals(scope) && run.equals(c.run())
                && stream.equals(c.stream())).findFirst().orElseThrow();
    }
}
