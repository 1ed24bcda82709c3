package dev.fp8q.verifier.qwen;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.TensorSpec;
import dev.fp8q.verifier.Verifier;
import dev.fp8q.verifier.VerifyReport;
import dev.fp8q.verifier.check.Bounds;
import dev.fp8q.verifier.check.Check;
import dev.fp8q.verifier.run.LinearsOver;
import dev.fp8q.verifier.run.ReferenceWeights;
import dev.fp8q.verifier.run.RunWeights;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * w8a8_static's block figures against the independent float64 Qwen-Image block with the same static input scales:
 * some scales below the input's amax (values saturate), some above it, on both streams.
 */
class QwenStaticBlockTest {

    @Test
    void staticBlockFiguresMatchTheFloat64BlockWithinFiveHundredthsOfADb(@TempDir Path dir) throws Exception {
        Path src = TinyQwen.write(dir.resolve("src.safetensors"), 2, 11);
        Path fp8 = TinyQwen.quantize(src, dir.resolve("fp8.safetensors"));
        QwenInputs in;
        Map<String, Float> amax = new LinkedHashMap<>();
        try (Checkpoint s = Checkpoint.open(src)) {
            ReferenceWeights ref = new ReferenceWeights(s);
            in = QwenInputs.synthetic(QwenBlockTest.NAMES, QwenBlockTest.DIM, QwenBlockTest.GRID, QwenBlockTest.TEXT, 7, ref);
            RunWeights rec = new LinearsOver() {
                public RunWeights reference() {
                    return ref;
                }

                public float[] linear(String base, float[] x, int rows) throws FormatException {
                    float m = 0;
                    for (float v : x) {
                        m = Math.max(m, Math.abs(v));
                    }
                    amax.put(base, m);
                    return ref.linear(base, x, rows);
                }
            };
            new QwenBlock(QwenBlockTest.NAMES, QwenBlockTest.DIM).forward(1, in, rec);
        }
        // every other FP8 Linear clips (scale for half its amax), the rest get twice the room they need
        Map<String, Float> scales = new LinkedHashMap<>();
        int i = 0;
        for (Map.Entry<String, Float> e : amax.entrySet()) {
            if (TinyQwen.FP8.matcher(e.getKey() + ".weight").find()) {
                scales.put(e.getKey(), e.getValue() * (i++ % 2 == 0 ? 0.5f : 2f) / 448f);
            }
        }
        assertEquals(12, scales.size());
        Path dst = withInputScales(fp8, dir.resolve("static.safetensors"), scales);

        var opts = new Verifier.Options(List.of(1), QwenBlockTest.GRID, QwenBlockTest.TEXT, 7, null,
                Verifier.WeightScope.NONE, Bounds.defaults(), 32, 64, s -> { }, Verifier.Device.CPU);
        VerifyReport report = Verifier.verify(src, dst, opts);
        Map<String, float[]> dequant = TinyQwen.values(fp8);
        double[][] ref = QwenBlockTest.reference64(TinyQwen.values(src), false, 1, in);
        double[][] out = new QwenReference64(dequant, QwenBlockTest.DIM, b -> false, scales).forward(1,
                QwenBlockTest.rows(in.img()), QwenBlockTest.rows(in.txt()), QwenBlockTest.doubles(in.temb()), in.grid());
        double[][] dynamic = QwenBlockTest.reference64(dequant, true, 1, in);
        for (int s = 0; s < 2; s++) {
            String stream = s == 0 ? "image" : "text";
            float[] x = s == 0 ? in.img() : in.txt();
            Check o = QwenBlockTest.find(report, "block_output", "w8a8_static", stream);
            Check u = QwenBlockTest.find(report, "block_update", "w8a8_static", stream);
            double update = QwenBlockTest.sqnr(ref[s], out[s], x);
            System.out.printf(Locale.ROOT, "w8a8_static %s: update %.2f dB (float64 %.2f; dynamic float64 %.2f)%n", stream,
                    u.metrics().sqnrDb(), update, QwenBlockTest.sqnr(ref[s], dynamic[s], x));
            assertEquals(QwenBlockTest.sqnr(ref[s], out[s], null), o.metrics().sqnrDb(), 0.05, stream + " output");
            assertEquals(update, u.metrics().sqnrDb(), 0.05, stream + " update");
            assertTrue(update < QwenBlockTest.sqnr(ref[s], dynamic[s], x) - 1,
                    stream + ": clipping scales cost more than a dB against dynamic W8A8");
        }
        long clipping = report.checks().stream().filter(c -> "w8a8_static".equals(c.run()) && c.clipped() != null
                && c.clipped() > 0).count();
        assertEquals(6, clipping, "the Linears scaled for half their amax, and only those, clip");
    }

    /** A copy of the FP8 file with one 0-dim F32 "<layer>.input_scale" per Linear (ComfyUI's and vLLM's name). */
    static Path withInputScales(Path fp8, Path dst, Map<String, Float> scales) throws Exception {
        try (Checkpoint c = Checkpoint.open(fp8); Arena arena = Arena.ofConfined()) {
            List<TensorSpec> specs = new ArrayList<>();
            Map<String, MemorySegment> data = new LinkedHashMap<>();
            for (Checkpoint.Tensor t : c.tensors()) {
                specs.add(TensorSpec.of(t.entry()));
                data.put(t.name(), t.data());
            }
            for (Map.Entry<String, Float> e : scales.entrySet()) {
                MemorySegment s = arena.allocate(4);
                s.set(Elements.FLOAT, 0, e.getValue());
                specs.add(new TensorSpec(e.getKey() + ".input_scale", DType.F32, new long[0]));
                data.put(e.getKey() + ".input_scale", s);
            }
            try (SafetensorsWriter w = SafetensorsWriter.create(dst, Map.of(), specs)) {
                for (var e : data.entrySet()) {
                    w.write(e.getKey(), e.getValue());
                }
                w.commit();
            }
        }
        return dst;
    }
}
