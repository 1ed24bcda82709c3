package dev.fp8q.verifier.wan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.TensorSpec;
import dev.fp8q.testdata.WanCheckpoints;
import dev.fp8q.verifier.Verifier;
import dev.fp8q.verifier.VerifyReport;
import dev.fp8q.verifier.check.Bounds;
import dev.fp8q.verifier.check.Check;
import dev.fp8q.verifier.run.ReferenceWeights;
import dev.fp8q.verifier.weights.TensorValues;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** verify's block figures against the independent float64 block run on the same inputs and weights. */
public class VerifierFiguresTest {

    static final Pattern LINEAR = Pattern.compile("^blocks\\.\\d+\\.(self_attn|cross_attn)\\.[qkvo]\\.weight$|^blocks\\.\\d+\\.ffn\\.[02]\\.weight$");

    /** A per-tensor FP8 copy written by this test's own few lines (amax / 448, clamp, round to nearest even). */
    public static void quantize(Path src, Path dst) throws Exception {
        quantize(src, dst, LINEAR);
    }

    /** The same for the weights the pattern finds. */
    public static void quantize(Path src, Path dst, Pattern weights) throws Exception {
        try (Checkpoint c = Checkpoint.open(src); Arena arena = Arena.ofConfined()) {
            List<TensorSpec> specs = new ArrayList<>();
            Map<String, MemorySegment> data = new HashMap<>();
            for (Checkpoint.Tensor t : c.tensors()) {
                if (weights.matcher(t.name()).find()) {
                    float[] v = TensorValues.of(t);
                    float amax = 0;
                    for (float f : v) {
                        amax = Math.max(amax, Math.abs(f));
                    }
                    float scale = amax / 448f;
                    MemorySegment codes = arena.allocate(v.length);
                    for (int i = 0; i < v.length; i++) {
                        codes.set(ValueLayout.JAVA_BYTE, i, E4M3.encode(Math.max(-448f, Math.min(448f, v[i] / scale))));
                    }
                    MemorySegment s = arena.allocate(4);
                    s.set(Elements.FLOAT, 0, scale);
                    specs.add(new TensorSpec(t.name(), DType.F8_E4M3, t.entry().shape()));
                    specs.add(new TensorSpec(t.name() + "_scale", DType.F32, new long[0]));
                    data.put(t.name(), codes);
                    data.put(t.name() + "_scale", s);
                } else {
                    specs.add(TensorSpec.of(t.entry()));
                    data.put(t.name(), t.data());
                }
            }
            try (SafetensorsWriter w = SafetensorsWriter.create(dst, Map.of(), specs)) {
                for (var e : data.entrySet()) {
                    w.write(e.getKey(), e.getValue());
                }
                w.commit();
            }
        }
    }

    static double[][] rows(float[] v, int dim) {
        double[][] out = new double[v.length / dim][dim];
        for (int t = 0; t < out.length; t++) {
            for (int i = 0; i < dim; i++) {
                out[t][i] = v[t * dim + i];
            }
        }
        return out;
    }

    static double sqnr(double[] ref, double[] out, float[] minus) {
        double s = 0, n = 0;
        for (int i = 0; i < ref.length; i++) {
            double r = ref[i] - (minus == null ? 0 : minus[i]);
            double o = out[i] - (minus == null ? 0 : minus[i]);
            s += r * r;
            n += (o - r) * (o - r);
        }
        return 10 * Math.log10(s / n);
    }

    @Test
    void blockFiguresMatchTheFloat64BlockOnDequantizedWeights(@TempDir Path dir) throws Exception {
        Path src = WanCheckpoints.extractEmbedded(dir.resolve("src.safetensors"));
        Path dst = dir.resolve("fp8.safetensors");
        quantize(src, dst);
        int[] grid = {2, 3, 4};
        var opts = new Verifier.Options(List.of(1), grid, 16, 7, null, Verifier.WeightScope.ALL, Bounds.defaults(), 32,
                64, s -> { }, Verifier.Device.CPU);
        VerifyReport report = Verifier.verify(src, dst, opts);
        assertTrue(report.summary().passed(), () -> report.failures().toString());

        Map<String, float[]> source = new HashMap<>();
        Map<String, float[]> dequant = new HashMap<>();
        WanInputs in;
        try (Checkpoint s = Checkpoint.open(src); Checkpoint d = Checkpoint.open(dst)) {
            in = WanInputs.synthetic(WanNaming.ORIGINAL, 128, grid, 16, 7, new ReferenceWeights(s));
            for (Checkpoint.Tensor t : s.tensors()) {
                source.put(t.name(), TensorValues.of(t));
                float[] v = TensorValues.of(d.tensor(t.name()).orElseThrow());
                if (LINEAR.matcher(t.name()).matches()) {
                    float scale = d.tensor(t.name() + "_scale").orElseThrow().data().get(Elements.FLOAT, 0);
                    for (int i = 0; i < v.length; i++) {
                        v[i] *= scale;
                    }
                }
                dequant.put(t.name(), v);
            }
        }
        double[] e = new double[in.e().length];
        for (int i = 0; i < e.length; i++) {
            e[i] = in.e()[i];
        }
        double[] ref = new Reference64(source, 128, 128).forward(1, rows(in.x(), 128), grid, rows(in.context(), 128), e);
        double[] wo = new Reference64(dequant, 128, 128).forward(1, rows(in.x(), 128), grid, rows(in.context(), 128), e);
        Check output = find(report, "block_output", "weight_only");
        Check update = find(report, "block_update", "weight_only");
        assertEquals(sqnr(ref, wo, null), output.metrics().sqnrDb(), 0.05);
        assertEquals(sqnr(ref, wo, in.x()), update.metrics().sqnrDb(), 0.05);
        assertTrue(update.metrics().sqnrDb() < output.metrics().sqnrDb() - 10,
                "the residual stream hides most of the error: the update's SQNR is far lower");
    }

    static Check find(VerifyReport r, String scope, String run) {
        return r.checks().stream().filter(c -> c.scope().equals(scope) && run.equals(c.run())).findFirst().orElseThrow();
    }
}
