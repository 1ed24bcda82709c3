package dev.fp8q.verifier.check;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.verifier.metrics.ErrorMetrics;
import dev.fp8q.verifier.weights.ScaleGrid;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.stream.IntStream;

/**
 * An FP8 weight against its source, element by element: the error of the dequantized values, the fraction
 * of nonzero values that became zero, and how many codes differ from the exact encoding of source / scale
 * (NUMERICS.md) by one step or by more. Streams the mapped tensors in parallel chunks, any size.
 */
public final class WeightCheck {

    public record Result(ErrorMetrics metrics, long codesOffByOne, long codesFar, double underflow, String granularity) {}

    private static final int CHUNK = 1 << 18;

    private WeightCheck() {}

    /** source against the FP8 tensor q, dequantized with grid (the scales a runtime reads for q). */
    public static Result run(Checkpoint.Tensor source, Checkpoint.Tensor q, ScaleGrid grid) {
        MemorySegment src = source.data();
        MemorySegment codes = q.data();
        DType dtype = source.entry().dtype();
        long n = q.entry().numel();
        int chunks = (int) ((n + CHUNK - 1) / CHUNK);
        boolean table = (dtype == DType.BF16 || dtype == DType.F16) && grid.granularity() == ScaleGrid.Granularity.TENSOR;
        ByTable t = table ? new ByTable(dtype, grid.scales()[0]) : null;
        Partial total = IntStream.range(0, chunks).parallel().mapToObj(c -> {
            Partial p = new Partial();
            long end = Math.min(n, (long) (c + 1) * CHUNK);
            if (t != null) {
                t.check(src, codes, (long) c * CHUNK, end, p);
                return p;
            }
            for (long i = (long) c * CHUNK; i < end; i++) {
                float s = Elements.get(src, dtype, i);
                byte code = codes.get(ValueLayout.JAVA_BYTE, i);
                float scale = grid.scaleOf(i);
                float deq = E4M3.decode(code) * scale;
                p.metrics.add(s, deq);
                if (s != 0 && deq == 0) {
                    p.underflow++;
                }
                if (s != 0) {
                    p.nonzero++;
                }
                byte want = E4M3.encode(s / scale);
                if (want != code) {
                    if (distance(want, code) <= 1) {
                        p.offByOne++;
                    } else {
                        p.far++;
                    }
                }
            }
            return p;
        }).reduce(new Partial(), Partial::merge);
        return new Result(total.metrics.result(), total.offByOne, total.far,
                total.nonzero == 0 ? 0 : (double) total.underflow / total.nonzero, grid.describe());
    }

    /**
     * 16-bit sources with one scale: every input pattern's value, expected code and dequantized value
     * computed once (65,536 entries), so the pass over the tensor is lookups and sums.
     */
    private static final class ByTable {
        final float[] value = new float[65536];
        final byte[] code = new byte[65536];

        ByTable(DType dtype, float scale) {
            for (int b = 0; b < 65536; b++) {
                value[b] = Elements.halfToFloat(dtype, b);
                code[b] = E4M3.encode(value[b] / scale);
            }
            this.scale = scale;
        }

        final float scale;

        void check(MemorySegment src, MemorySegment codes, long from, long to, Partial p) {
            double rr = 0, oo = 0, ro = 0, dd = 0, maxAbs = 0;
            long off1 = 0, far = 0, under = 0, nonzero = 0;
            boolean nonFinite = false;
            for (long i = from; i < to; i++) {
                int bits = src.getAtIndex(Elements.SHORT, i) & 0xFFFF;
                byte got = codes.get(ValueLayout.JAVA_BYTE, i);
                double s = value[bits];
                double o = E4M3.decode(got) * scale;
                double d = o - s;
                rr += s * s;
                oo += o * o;
                ro += s * o;
                dd += d * d;
                maxAbs = Math.max(maxAbs, Math.abs(d));
                if (s != 0) {
                    nonzero++;
                    if (o == 0) {
                        under++;
                    }
                }
                byte want = code[bits];
                if (want != got) {
                    if (E4M3.isNaN(got)) {
                        nonFinite = true;
                    }
                    if (distance(want, got) <= 1) {
                        off1++;
                    } else {
                        far++;
                    }
                }
            }
            p.metrics.addSums(rr, oo, ro, dd, maxAbs, to - from, nonFinite);
            p.offByOne += off1;
            p.far += far;
            p.underflow += under;
            p.nonzero += nonzero;
        }
    }

    /** Steps between two codes on the number line; a NaN code is infinitely far. */
    static int distance(byte a, byte b) {
        if (E4M3.isNaN(a) || E4M3.isNaN(b)) {
            return Integer.MAX_VALUE;
        }
        return Math.abs(ordinal(a) - ordinal(b));
    }

    private static int ordinal(byte c) {
        int mag = c & 0x7F;
        return (c & 0x80) != 0 ? -mag : mag;
    }

    private static final class Partial {
        final ErrorMetrics.Accumulator metrics = new ErrorMetrics.Accumulator();
        long offByOne;
        long far;
        long underflow;
        long nonzero;

        Partial merge(Partial o) {
            Partial p = new Partial();
            p.metrics.merge(metrics);
            p.metrics.merge(o.metrics);
            p.offByOne = offByOne + o.offByOne;
            p.far = far + o.far;
            p.underflow = underflow + o.underflow;
            p.nonzero = nonzero + o.nonzero;
            return p;
        }
    }
}
