package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.testdata.WanCheckpoints;
import dev.fp8q.verifier.model.CapturedInputs;
import dev.fp8q.verifier.run.LinearsOver;
import dev.fp8q.verifier.run.ReferenceWeights;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.wan.CpuBlockMath;
import dev.fp8q.verifier.wan.WanModel;
import dev.fp8q.verifier.wan.WanNaming;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The percentile and mse methods against an independent recomputation: every FP8 Linear's input recorded by this
 * test's own wrapper over the same chained forwards, the exact nearest-rank percentile of |x| by sorting, and
 * ModelOpt's amax sweep (x 0.25 .. 4.0) with the saturating E4M3 squared error summed in double.
 */
class CalibrateMethodsTest {

    private static final String[] INPUTS = {"--grid", "2,4,4", "--context-tokens", "16", "--timesteps", "300,700",
            "--samples", "1", "--quiet"};
    /** Linears vLLM fuses: their input scale is the max of their amax. */
    private static final List<List<String>> GROUPS = List.of(List.of("self_attn.q", "self_attn.k", "self_attn.v"),
            List.of("cross_attn.k", "cross_attn.v"), List.of("self_attn.o"), List.of("cross_attn.q"),
            List.of("cross_attn.o"), List.of("ffn.0"), List.of("ffn.2"));

    @Test
    void percentileAndMseScalesEqualAnIndependentRecomputation(@TempDir Path dir) throws Exception {
        Path srcDir = Files.createDirectories(dir.resolve("src"));
        Path src = WanCheckpoints.extractEmbedded(srcDir.resolve("diffusion_pytorch_model.safetensors"));
        Path dst = dir.resolve("dst");
        assertEquals(0, CliRun.of("convert", srcDir.toString(), dst.toString(), "--layout", "comfy", "--quiet").code());
        Map<String, float[]> inputs = record(src);
        Path file = dst.resolve("diffusion_pytorch_model.safetensors");

        CliRun p = CliRun.of(concat(new String[] {"calibrate", srcDir.toString(), dst.toString(), "--method", "percentile",
                "--percentile", "99.5"}, INPUTS));
        assertEquals(0, p.code(), p.err());
        Map<String, Float> percentile = new HashMap<>();
        inputs.forEach((l, x) -> percentile.put(l, nearestRank(x, 99.5)));
        Map<String, Float> gotP = assertScales(file, percentile);
        assertMethodAmax(dst, percentile);

        CliRun m = CliRun.of(concat(new String[] {"calibrate", srcDir.toString(), dst.toString(), "--method", "mse"}, INPUTS));
        assertEquals(0, m.code(), m.err());
        Map<String, Float> mse = new HashMap<>();
        inputs.forEach((l, x) -> mse.put(l, mseAmax(x)));
        Map<String, Float> gotM = assertScales(file, mse);
        assertMethodAmax(dst, mse);
        assertNotEquals(gotP, gotM, "the two methods pick different amax");
        Map<String, Float> max = new HashMap<>();
        inputs.forEach((l, x) -> max.put(l, nearestRank(x, 100)));
        assertTrue(percentile.entrySet().stream().anyMatch(e -> e.getValue() < max.get(e.getKey())),
                "the 99.5th percentile lies below the max somewhere");
    }

    /** Each Linear's input_scale is its group's max method amax / 448 in float32. */
    private static Map<String, Float> assertScales(Path file, Map<String, Float> amax) throws Exception {
        Map<String, Float> got = new HashMap<>();
        try (Checkpoint c = Checkpoint.open(file)) {
            for (int b = 0; b < 2; b++) {
                for (List<String> g : GROUPS) {
                    float a = 0;
                    for (String l : g) {
                        a = Math.max(a, amax.get("blocks." + b + "." + l));
                    }
                    for (String l : g) {
                        String layer = "blocks." + b + "." + l;
                        float s = c.tensor(layer + ".input_scale").orElseThrow().data().get(Elements.FLOAT, 0);
                        assertEquals(a / 448f, s, 0f, layer);
                        got.put(layer, s);
                    }
                }
            }
        }
        return got;
    }

    /** The manifest keeps each Linear's own method amax. */
    private static void assertMethodAmax(Path dst, Map<String, Float> amax) throws Exception {
        Manifest m = Manifest.read(dst.resolve(Manifest.FILE));
        Map<?, ?> components = (Map<?, ?>) ((Map<?, ?>) m.settings().get("calibration")).get("layers");
        assertEquals(1, components.size());
        Map<?, ?> layers = (Map<?, ?>) components.values().iterator().next();
        for (Map.Entry<String, Float> e : amax.entrySet()) {
            Map<?, ?> rec = (Map<?, ?>) layers.get(e.getKey());
            assertEquals(e.getValue(), ((Number) rec.get("method_amax")).floatValue(), 0f, e.getKey());
        }
    }

    /** The ceil(P/100 N)-th smallest |x|. */
    static float nearestRank(float[] x, double p) {
        float[] a = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            a[i] = Math.abs(x[i]);
        }
        Arrays.sort(a);
        int k = (int) Math.max(1, Math.ceil(p / 100.0 * a.length));
        return a[k - 1];
    }

    /** amax x m (m = 0.25, 0.5, ..., 4) with the least sum of squared errors of clamp-and-round to E4M3. */
    static float mseAmax(float[] x) {
        float amax = nearestRank(x, 100);
        float best = 0;
        double bestErr = Double.POSITIVE_INFINITY;
        for (int i = 1; i <= 16; i++) {
            float cand = (float) (amax * (0.25 * i));
            float scale = cand / 448f;
            double err = 0;
            for (float v : x) {
                float q = Math.max(-448f, Math.min(448f, v / scale));
                double d = (double) v - (double) (E4M3.decode(E4M3.encode(q)) * scale);
                err += d * d;
            }
            if (err < bestErr) {
                bestErr = err;
                best = cand;
            }
        }
        return best;
    }

    /** Every FP8 Linear's inputs over the chained forwards calibrate runs (timesteps 300, 700; seed 0), concatenated. */
    static Map<String, float[]> record(Path src) throws Exception {
        Map<String, List<float[]>> seen = new HashMap<>();
        try (Checkpoint c = Checkpoint.open(src)) {
            WanNaming n = WanNaming.detect(c).orElseThrow();
            ReferenceWeights ref = new ReferenceWeights(c);
            RunWeights rec = new LinearsOver() {
                public RunWeights reference() {
                    return ref;
                }

                public float[] linear(String base, float[] x, int rows) throws FormatException {
                    if (base.startsWith("blocks.")) {
                        seen.computeIfAbsent(base, k -> new ArrayList<>()).add(x.clone());
                    }
                    return ref.linear(base, x, rows);
                }
            };
            int dim = ref.tensor(n.weight(WanNaming.Param.MODULATION, 0)).length / 6;
            WanModel model = new WanModel(n, dim, 2, 128, new int[] {2, 4, 4}, 16, CapturedInputs.NONE, ref);
            for (double t : List.of(300.0, 700.0)) {
                WanModel.Step step = model.inputs(t, 0, rec);
                model.output(step, 0, step.streams(), rec, new CpuBlockMath(128));
            }
        }
        Map<String, float[]> out = new HashMap<>();
        seen.forEach((l, xs) -> {
            float[] all = new float[xs.stream().mapToInt(a -> a.length).sum()];
            int o = 0;
            for (float[] a : xs) {
                System.arraycopy(a, 0, all, o, a.length);
                o += a.length;
            }
            out.put(l, all);
        });
        return out;
    }

    private static String[] concat(String[] a, String[] b) {
        String[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
