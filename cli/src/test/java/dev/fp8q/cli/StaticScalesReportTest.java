package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.testdata.WanCheckpoints;
import dev.fp8q.verifier.run.LinearsOver;
import dev.fp8q.verifier.run.ReferenceWeights;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.wan.CpuBlockMath;
import dev.fp8q.verifier.wan.WanModel;
import dev.fp8q.verifier.wan.WanNaming;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * verify --whole's static scales section against figures this test computes itself: each FP8 Linear's input
 * recorded on the chained reference forward, its amax per timestep, and dynamic per-tensor W8A8 and w8a8_static
 * simulated in float64 from the file's codes and scales, SQNR against the reference Linear's output.
 */
class StaticScalesReportTest {

    static final List<Double> TIMESTEPS = List.of(300.0, 700.0);

    /** Per Linear and timestep: the input's amax and the SQNR of both simulations. */
    record Figures(double amax, double dynamicDb, double staticDb) {}

    @Test
    void staticScalesSectionMatchesAnIndependentFloat64Simulation(@TempDir Path dir) throws Exception {
        Path srcDir = Files.createDirectories(dir.resolve("src"));
        Path src = WanCheckpoints.extractEmbedded(srcDir.resolve("diffusion_pytorch_model.safetensors"));
        Files.writeString(srcDir.resolve("config.json"), "{\"dim\": 128}");
        Path dst = dir.resolve("dst");
        CliRun c = CliRun.of("convert", srcDir.toString(), dst.toString(), "--layout", "compressed-tensors", "--quiet",
                "--calibrate", "--grid", "2,4,4", "--context-tokens", "16", "--timesteps", "300,700", "--samples", "1");
        assertEquals(0, c.code(), c.err());
        Path json = dir.resolve("r.json");
        Path md = dir.resolve("r.md");
        CliRun v = CliRun.of("verify", srcDir.toString(), dst.toString(), "--whole", "--timesteps", "300,700", "--samples",
                "1", "--grid", "2,4,4", "--context-tokens", "16", "--weights", "none", "--device", "cpu", "--blocks", "0",
                "--json", json.toString(), "--markdown", md.toString());
        assertEquals(0, v.code(), v.err() + v.out());
        assertTrue(v.out().contains("static scales: 20 FP8 Linears"), v.out());
        String markdown = Files.readString(md);
        assertTrue(markdown.contains("## Static scales") && markdown.contains("| blocks.1.ffn.2 |"), markdown);

        Map<String, Map<Double, Figures>> want = simulate(src, dst.resolve("diffusion_pytorch_model.safetensors"));
        JsonNode rows = new ObjectMapper().readTree(json.toFile()).path("static_scales");
        assertEquals(want.size(), rows.size());
        assertEquals(20, rows.size(), "2 blocks of 10 FP8 Linears");
        int named = 0;
        for (JsonNode row : rows) {
            String layer = row.path("layer").asText();
            Map<Double, Figures> f = want.get(layer);
            assertNotNull(f, layer);
            assertEquals("calibration", row.path("spread_from").asText(), layer);
            double lo = Double.MAX_VALUE;
            double hi = 0;
            for (double t : TIMESTEPS) {
                double a = row.path("amax_per_timestep").path("t=" + Math.round(t)).asDouble();
                assertEquals(f.get(t).amax(), a, 1e-6 * a, layer + " amax at t=" + t);
                lo = Math.min(lo, a);
                hi = Math.max(hi, a);
            }
            assertEquals(hi / lo, row.path("amax_spread").asDouble(), 1e-6, layer);
            if (layer.matches(".*cross_attn\\.[kv]")) { // the text features: the same at every timestep
                assertEquals(1.0, row.path("amax_spread").asDouble(), 0.0, layer);
            } else {
                assertTrue(row.path("amax_spread").asDouble() > 1.0, layer + ": the residual stream changes with t");
            }
            double worstLoss = Double.NEGATIVE_INFINITY;
            double worstT = 0;
            for (double t : TIMESTEPS) {
                double loss = f.get(t).dynamicDb() - f.get(t).staticDb();
                if (loss > worstLoss) {
                    worstLoss = loss;
                    worstT = t;
                }
            }
            assertEquals(worstLoss, row.path("db_lost").asDouble(), 0.05, layer);
            assertEquals(f.get(worstT).dynamicDb(), row.path("dynamic_sqnr_db").asDouble(), 0.05, layer);
            assertEquals(f.get(worstT).staticDb(), row.path("static_sqnr_db").asDouble(), 0.05, layer);
            double other = TIMESTEPS.stream().mapToDouble(t -> f.get(t).dynamicDb() - f.get(t).staticDb())
                    .min().orElseThrow();
            if (worstLoss - other > 0.1) { // the worst timestep is clear: the report must name it
                assertTrue(row.path("worst_input").asText().startsWith("t=" + Math.round(worstT) + " "), layer + ": "
                        + row.path("worst_input").asText() + " vs t=" + worstT);
                named++;
            }
        }
        assertTrue(named > 0, "some Linear has a clearly worse timestep");
    }

    /** The chained reference forward at each timestep (seed 0, verify's inputs), each FP8 Linear simulated in float64. */
    static Map<String, Map<Double, Figures>> simulate(Path src, Path fp8) throws Exception {
        Map<String, Map<Double, Figures>> out = new HashMap<>();
        try (Checkpoint c = Checkpoint.open(src); Checkpoint q = Checkpoint.open(fp8)) {
            WanNaming n = WanNaming.detect(c).orElseThrow();
            ReferenceWeights ref = new ReferenceWeights(c);
            double[] t0 = {0};
            RunWeights rec = new LinearsOver() {
                public RunWeights reference() {
                    return ref;
                }

                public float[] linear(String base, float[] x, int rows) throws FormatException {
                    float[] y = ref.linear(base, x, rows);
                    if (q.tensor(base + ".input_scale").isPresent()) {
                        out.computeIfAbsent(base, k -> new HashMap<>()).put(t0[0], figures(q, base, x, rows, y,
                                ref.has(base + ".bias") ? ref.tensor(base + ".bias") : null));
                    }
                    return y;
                }
            };
            int dim = ref.tensor(n.weight(WanNaming.Param.MODULATION, 0)).length / 6;
            WanModel model = new WanModel(n, dim, 2, 128, new int[] {2, 4, 4}, 16,
                    dev.fp8q.verifier.model.CapturedInputs.NONE, ref);
            for (double t : TIMESTEPS) {
                t0[0] = t;
                WanModel.Step step = model.inputs(t, 0, ref);
                model.output(step, 0, step.streams(), rec, new CpuBlockMath(128));
            }
        }
        return out;
    }

    private static Figures figures(Checkpoint q, String base, float[] x, int rows, float[] ref, float[] bias) {
        byte[] codes = q.tensor(base + ".weight").orElseThrow().data().toArray(ValueLayout.JAVA_BYTE);
        float wScale = q.tensor(base + ".weight_scale").orElseThrow().data().get(Elements.FLOAT, 0);
        float inScale = q.tensor(base + ".input_scale").orElseThrow().data().get(Elements.FLOAT, 0);
        float amax = 0;
        for (float v : x) {
            amax = Math.max(amax, Math.abs(v));
        }
        double[] dyn = new double[x.length];
        double[] stat = new double[x.length];
        float dScale = amax / 448f;
        for (int i = 0; i < x.length; i++) {
            dyn[i] = (double) E4M3.decode(E4M3.encode(x[i] / dScale)) * dScale;
            float s = Math.max(-448f, Math.min(448f, x[i] / inScale));
            stat[i] = (double) E4M3.decode(E4M3.encode(s)) * inScale;
        }
        int in = x.length / rows;
        int outs = codes.length / in;
        double[] w = new double[codes.length];
        for (int i = 0; i < w.length; i++) {
            w[i] = (double) E4M3.decode(codes[i]) * wScale;
        }
        return new Figures(amax, sqnr(ref, gemm(dyn, w, bias, rows, in, outs)), sqnr(ref, gemm(stat, w, bias, rows, in, outs)));
    }

    static double[] gemm(double[] x, double[] w, float[] bias, int rows, int in, int outs) {
        double[] y = new double[rows * outs];
        for (int r = 0; r < rows; r++) {
            for (int o = 0; o < outs; o++) {
                double s = bias == null ? 0 : bias[o];
                for (int i = 0; i < in; i++) {
                    s += x[r * in + i] * w[o * in + i];
                }
                y[r * outs + o] = s;
            }
        }
        return y;
    }

    static double sqnr(float[] ref, double[] out) {
        double s = 0;
        double e = 0;
        for (int i = 0; i < ref.length; i++) {
            s += (double) ref[i] * ref[i];
            e += (out[i] - ref[i]) * (out[i] - ref[i]);
        }
        return 10 * Math.log10(s / e);
    }
}
