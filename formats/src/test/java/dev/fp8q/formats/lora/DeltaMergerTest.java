package dev.fp8q.formats.lora;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.TensorSpec;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.math.BigDecimal;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DeltaMergerTest {

    /** Shapes whose rows are not a multiple of 4 and whose columns leave a tail after the vector panels. */
    @Test
    void anyShapeMatchesThePlainDoubleSum(@TempDir Path dir) throws Exception {
        int[][] shapes = {{7, 13, 3}, {9, 37, 5}, {4, 64, 8}, {1, 5, 2}, {33, 129, 16}};
        for (int[] sh : shapes) {
            int out = sh[0];
            int in = sh[1];
            int r = sh[2];
            Path f = dir.resolve(out + "x" + in + ".safetensors");
            SplittableRandom rnd = new SplittableRandom(out * 31L + in);
            float[] w = random(rnd, out * in);
            float[] up = random(rnd, out * r);
            float[] down = random(rnd, r * in);
            float[] diff = random(rnd, out * in);
            write(f, List.of(new TensorSpec("w", DType.F32, new long[] {out, in}), new TensorSpec("up", DType.F32, new long[] {out, r}),
                    new TensorSpec("down", DType.F32, new long[] {r, in}), new TensorSpec("diff", DType.F32, new long[] {out, in})),
                    List.of(w, up, down, diff));
            try (Checkpoint cp = Checkpoint.open(f)) {
                DeltaMerger m = new DeltaMerger(cp.tensor("w").orElseThrow(), List.of(
                        new LoraMerge.LowRank("k", 0.75, cp.tensor("up").orElseThrow(), cp.tensor("down").orElseThrow(), r),
                        new LoraMerge.Full("d", -0.5, cp.tensor("diff").orElseThrow())));
                double[] got = new double[out * in];
                m.merge(0, out, got);
                double[] part = new double[(out - 1) * in];
                if (out > 1) {
                    m.merge(1, out, part); // a range that starts mid-matrix gives the same rows
                }
                for (int o = 0; o < out; o++) {
                    for (int i = 0; i < in; i++) {
                        double s = 0;
                        for (int k = 0; k < r; k++) {
                            s += (double) up[o * r + k] * down[k * in + i];
                        }
                        double expect = w[o * in + i] + 0.75 * s + -0.5 * diff[o * in + i];
                        assertEquals(expect, got[o * in + i], 1e-12, out + "x" + in + " [" + o + "," + i + "]");
                        if (o > 0) {
                            assertEquals(got[o * in + i], part[(o - 1) * in + i], out + "x" + in + " rows from 1");
                        }
                    }
                }
            }
        }
    }

    /** One rounding from float64: the exact nearest (ties to even), checked with BigDecimal, never float32 first. */
    @Test
    void float64RoundsOnceToBf16AndF16() {
        SplittableRandom rnd = new SplittableRandom(5);
        for (int n = 0; n < 200_000; n++) {
            double d;
            if (n % 3 == 0) { // just above a BF16 tie: rounding to float32 first would land on the tie and go to even
                short b = (short) rnd.nextInt(0x7F00);
                double lo = Elements.bf16ToFloat(b);
                double hi = Elements.bf16ToFloat((short) (b + 1));
                d = (lo + hi) / 2 + (hi - lo) * 1e-9 * (rnd.nextBoolean() ? 1 : -1);
            } else {
                d = rnd.nextGaussian() * Math.pow(2, rnd.nextInt(-30, 30));
            }
            assertEquals(nearest(d, true), Elements.doubleToBf16(d), "bf16 of " + d);
            if (Math.abs(d) < 60000) {
                assertEquals(nearest(d, false), Elements.doubleToF16(d), "f16 of " + d);
            }
        }
    }

    private static short nearest(double d, boolean bf16) {
        short mid = bf16 ? (short) (Float.floatToRawIntBits((float) d) >>> 16) : Float.floatToFloat16((float) d);
        BigDecimal x = new BigDecimal(d);
        short best = mid;
        BigDecimal bestErr = null;
        for (int k = -2; k <= 2; k++) {
            short c = (short) (mid + k);
            float v = bf16 ? Elements.bf16ToFloat(c) : Float.float16ToFloat(c);
            if (!Float.isFinite(v) || Math.signum(v) != Math.signum(d) && v != 0) {
                continue;
            }
            BigDecimal err = new BigDecimal(v).subtract(x).abs();
            int cmp = bestErr == null ? -1 : err.compareTo(bestErr);
            if (cmp < 0 || cmp == 0 && (c & 1) == 0) {
                best = c;
                bestErr = err;
            }
        }
        return best;
    }

    private static float[] random(SplittableRandom rnd, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        return v;
    }

    private static void write(Path f, List<TensorSpec> specs, List<float[]> values) throws Exception {
        try (SafetensorsWriter w = SafetensorsWriter.create(f, null, specs); Arena a = Arena.ofConfined()) {
            for (int t = 0; t < specs.size(); t++) {
                float[] v = values.get(t);
                MemorySegment seg = a.allocate(4L * v.length);
                for (int i = 0; i < v.length; i++) {
                    seg.setAtIndex(Elements.FLOAT, i, v[i]);
                }
                w.write(specs.get(t).name(), seg);
            }
            w.commit();
        }
    }
}
