package dev.fp8q.formats.lora;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.safetensors.TensorEntry;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import jdk.incubator.vector.DoubleVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The merged values of one target, W + sum of its deltas in order, in float64, rows at a time: the weight viewed
 * as [rows = shape[0], cols = the rest] (a 1-D tensor is one row). Each low-rank factor pair is widened to float64
 * once per target (down [rank, cols] packed in panels, up [rows, rank]: a few MiB), and up @ down is computed in
 * register blocks of 4 rows x 2 vectors with FMA over the rank, so no [rows, cols] product is ever held. Callers
 * round the result once (to float32 for FP8, to the output dtype for kept tensors).
 */
public final class DeltaMerger {

    private static final VectorSpecies<Double> D = DoubleVector.SPECIES_PREFERRED;
    private static final int V = D.length();
    /** Doubles of down per column tile: 128 KiB, within a core's L2. */
    private static final int TILE_DOUBLES = 1 << 14;
    private static final ThreadLocal<short[]> SHORTS = ThreadLocal.withInitial(() -> new short[0]);
    private static final ThreadLocal<float[]> FLOATS = ThreadLocal.withInitial(() -> new float[0]);

    private sealed interface Part permits Factors, Dense {}

    /** down held as panels of 2V columns and the columns after the last panel (tail, [rank, cols % 2V]). */
    private record Factors(double scale, double[] up, double[] panels, double[] tail, int rank) implements Part {}

    private record Dense(double strength, MemorySegment diff, DType dtype) implements Part {}

    private final MemorySegment weight;
    private final DType dtype;
    private final long rows;
    private final int cols;
    private final List<Part> parts = new ArrayList<>();

    public DeltaMerger(Checkpoint.Tensor target, List<LoraMerge.Delta> deltas) {
        TensorEntry e = target.entry();
        this.weight = target.data();
        this.dtype = e.dtype();
        this.rows = rows(e);
        long c = e.numel() / Math.max(1, rows);
        if (c > Integer.MAX_VALUE / 8) {
            throw new IllegalArgumentException(e.name() + ": rows of " + c + " elements are too long to merge");
        }
        this.cols = (int) c;
        for (LoraMerge.Delta d : deltas) {
            switch (d) {
                case LoraMerge.LowRank lr -> {
                    MemorySegment down = lr.down().data();
                    DType dt = lr.down().entry().dtype();
                    parts.add(new Factors(lr.scale(), widen(lr.up()), pack(down, dt, lr.rank(), cols), tail(down, dt, lr.rank(), cols),
                            lr.rank()));
                }
                case LoraMerge.Full f -> parts.add(new Dense(f.strength(), f.diff().data(), f.diff().entry().dtype()));
            }
        }
    }

    /** Rows of the matrix view: shape[0], or 1 for a scalar or 1-D tensor. */
    public static long rows(TensorEntry e) {
        return e.rank() < 2 ? 1 : e.dim(0);
    }

    public long rows() {
        return rows;
    }

    public int cols() {
        return cols;
    }

    private static double[] widen(Checkpoint.Tensor t) {
        long n = t.entry().numel();
        if (n > Integer.MAX_VALUE - 16) {
            throw new IllegalArgumentException(t.name() + ": " + n + " elements is more than one array holds");
        }
        double[] out = new double[(int) n];
        widen(t.data(), t.entry().dtype(), 0, (int) n, out, 0);
        return out;
    }

    /**
     * seg's elements [from, from + n) as doubles into out at `at`. BF16 and F32 in bulk: a copy to a reused heap
     * array of the thread, then a plain loop (element by element, the factors of one 14B FFN target took 20 ms,
     * on the lane that merges).
     */
    private static void widen(MemorySegment seg, DType dt, long from, int n, double[] out, int at) {
        switch (dt) {
            case BF16 -> {
                short[] bits = shorts(n);
                MemorySegment.copy(seg, Elements.SHORT, 2 * from, bits, 0, n);
                for (int i = 0; i < n; i++) {
                    out[at + i] = Float.intBitsToFloat(bits[i] << 16);
                }
            }
            case F32 -> {
                float[] f = FLOATS.get();
                if (f.length < n) {
                    f = new float[n];
                    FLOATS.set(f);
                }
                MemorySegment.copy(seg, Elements.FLOAT, 4 * from, f, 0, n);
                for (int i = 0; i < n; i++) {
                    out[at + i] = f[i];
                }
            }
            default -> {
                for (int i = 0; i < n; i++) {
                    out[at + i] = Elements.getDouble(seg, dt, from + i);
                }
            }
        }
    }

    private static short[] shorts(int n) {
        short[] bits = SHORTS.get();
        if (bits.length < n) {
            bits = new short[n];
            SHORTS.set(bits);
        }
        return bits;
    }

    /** Rows [from, to) merged into out (row-major, (to - from) * cols values). */
    public void merge(long from, long to, double[] out) {
        int n = (int) (to - from);
        long base = from * cols;
        widen(weight, dtype, base, n * cols, out, 0);
        for (Part p : parts) {
            switch (p) {
                case Factors f -> lowRank(f, from, n, out);
                case Dense d -> {
                    for (int i = 0; i < n * cols; i++) {
                        out[i] += d.strength() * Elements.getDouble(d.diff(), d.dtype(), base + i);
                    }
                }
            }
        }
    }

    /**
     * out[i][c] += scale * sum_k up[row0 + i][k] * down[k][c], the sum in float64 with FMA. down is packed in
     * panels of 2 vectors of columns (each panel's rank x 2V doubles contiguous: read in sequence, not a row stride
     * apart, which mapped every k onto the same few L1 sets), and the panels go in tiles of about 128 KiB that stay
     * in the core's L2 while all the rows pass over them.
     */
    private void lowRank(Factors f, long row0, int n, double[] out) {
        double[] up = f.up();
        double[] panels = f.panels();
        int r = f.rank();
        double s = f.scale();
        int w = 2 * V;
        int count = cols / w;
        int tile = Math.max(1, TILE_DOUBLES / (r * w));
        for (int p0 = 0; p0 < count; p0 += tile) {
            int p1 = Math.min(count, p0 + tile);
            int i = 0;
            for (; i + 4 <= n; i += 4) {
                int u = (int) ((row0 + i) * r);
                for (int p = p0; p < p1; p++) {
                    block4x2(up, panels, p * r * w, r, u, s, out, i * cols + p * w, cols);
                }
            }
            for (; i < n; i++) {
                int u = (int) ((row0 + i) * r);
                for (int p = p0; p < p1; p++) {
                    DoubleVector a0 = DoubleVector.zero(D);
                    DoubleVector a1 = a0;
                    for (int k = 0, q = p * r * w; k < r; k++, q += w) {
                        DoubleVector b = DoubleVector.broadcast(D, up[u + k]);
                        a0 = DoubleVector.fromArray(D, panels, q).fma(b, a0);
                        a1 = DoubleVector.fromArray(D, panels, q + V).fma(b, a1);
                    }
                    add(out, i * cols + p * w, s, a0, a1);
                }
            }
        }
        int tc = cols - count * w;
        for (int i = 0; i < n && tc > 0; i++) { // the last cols % 2V columns
            double[] tail = f.tail();
            int u = (int) ((row0 + i) * r);
            for (int c = 0; c < tc; c++) {
                double a = 0;
                for (int k = 0; k < r; k++) {
                    a = Math.fma(up[u + k], tail[k * tc + c], a);
                }
                out[i * cols + count * w + c] += a * s;
            }
        }
    }

    /** down [r, cols] as panels of 2V columns: panel p holds down[k][p*2V + j] at p*r*2V + k*2V + j. */
    private static double[] pack(MemorySegment down, DType dt, int r, int cols) {
        int w = 2 * V;
        int count = cols / w;
        double[] out = new double[count * r * w];
        double[] row = new double[cols];
        for (int k = 0; k < r; k++) {
            widen(down, dt, (long) k * cols, cols, row, 0);
            for (int p = 0; p < count; p++) {
                System.arraycopy(row, p * w, out, (p * r + k) * w, w);
            }
        }
        return out;
    }

    /** The columns of down after its last whole panel, [r, cols % 2V]. */
    private static double[] tail(MemorySegment down, DType dt, int r, int cols) {
        int from = cols / (2 * V) * (2 * V);
        int tc = cols - from;
        double[] out = new double[r * tc];
        for (int k = 0; k < r; k++) {
            widen(down, dt, (long) k * cols + from, tc, out, k * tc);
        }
        return out;
    }

    /**
     * Four rows by one panel: eight accumulators in registers over the whole rank. Six and eight rows (12 and 16
     * accumulators) ran at 2-3 GFMA/s against 11-12 on the H200 machine's AVX-512 cores (MergeBench).
     */
    private static void block4x2(double[] up, double[] panels, int q0, int r, int u, double s, double[] out, int o,
            int stride) {
        DoubleVector a00 = DoubleVector.zero(D), a01 = a00, a10 = a00, a11 = a00;
        DoubleVector a20 = a00, a21 = a00, a30 = a00, a31 = a00;
        for (int k = 0, q = q0; k < r; k++, q += 2 * V) {
            DoubleVector d0 = DoubleVector.fromArray(D, panels, q);
            DoubleVector d1 = DoubleVector.fromArray(D, panels, q + V);
            DoubleVector b0 = DoubleVector.broadcast(D, up[u + k]);
            DoubleVector b1 = DoubleVector.broadcast(D, up[u + r + k]);
            DoubleVector b2 = DoubleVector.broadcast(D, up[u + 2 * r + k]);
            DoubleVector b3 = DoubleVector.broadcast(D, up[u + 3 * r + k]);
            a00 = d0.fma(b0, a00);
            a01 = d1.fma(b0, a01);
            a10 = d0.fma(b1, a10);
            a11 = d1.fma(b1, a11);
            a20 = d0.fma(b2, a20);
            a21 = d1.fma(b2, a21);
            a30 = d0.fma(b3, a30);
            a31 = d1.fma(b3, a31);
        }
        add(out, o, s, a00, a01);
        add(out, o + stride, s, a10, a11);
        add(out, o + 2 * stride, s, a20, a21);
        add(out, o + 3 * stride, s, a30, a31);
    }

    private static void add(double[] out, int o, double s, DoubleVector lo, DoubleVector hi) {
        DoubleVector.fromArray(D, out, o).add(lo.mul(s)).intoArray(out, o);
        DoubleVector.fromArray(D, out, o + V).add(hi.mul(s)).intoArray(out, o + V);
    }
}
