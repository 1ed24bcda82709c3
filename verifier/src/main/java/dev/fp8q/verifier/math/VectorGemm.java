package dev.fp8q.verifier.math;

import java.util.stream.IntStream;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * Register-blocked float32 GEMM: B is packed per (panel of NR columns, KC-deep block) into a small buffer
 * that stays in L1, and a 6 x 2-vector micro-kernel accumulates in registers with FMAs. Work is split
 * into (panel, row block) tasks across cores. The vector width comes from {@code -Dfp8q.vector.bits}
 * (128, 256, 512; default: the CPU's preferred) so tests can run every width.
 */
public final class VectorGemm implements Gemm {

    static final VectorSpecies<Float> S = species();
    static final int L = S.length();
    static final int NR = 2 * L;
    static final int MR = 6;
    static final int KC = 256;
    static final int MC = 384;

    private static final VectorGemm PARALLEL = new VectorGemm(true);
    private static final VectorGemm SERIAL = new VectorGemm(false);

    private final boolean parallel;

    private VectorGemm(boolean parallel) {
        this.parallel = parallel;
    }

    /** Splits each product across the common pool. */
    public static VectorGemm parallel() {
        return PARALLEL;
    }

    /** One thread per product: for callers that already run many products in parallel (attention heads). */
    public static VectorGemm serial() {
        return SERIAL;
    }

    public static int vectorBits() {
        return S.vectorBitSize();
    }

    private static VectorSpecies<Float> species() {
        String bits = System.getProperty("fp8q.vector.bits");
        if (bits == null || bits.isBlank()) {
            return FloatVector.SPECIES_PREFERRED;
        }
        return switch (bits.trim()) {
            case "128" -> FloatVector.SPECIES_128;
            case "256" -> FloatVector.SPECIES_256;
            case "512" -> FloatVector.SPECIES_512;
            default -> throw new IllegalArgumentException("fp8q.vector.bits must be 128, 256 or 512, not " + bits);
        };
    }

    @Override
    public void mulT(Mat a, Mat b, Mat c) {
        Gemm.checkShapes(a, b, c, true);
        run(a, b, c, true);
    }

    @Override
    public void mul(Mat a, Mat b, Mat c) {
        Gemm.checkShapes(a, b, c, false);
        run(a, b, c, false);
    }

    private void run(Mat a, Mat b, Mat c, boolean transposed) {
        int m = a.rows();
        int n = c.cols();
        int k = a.cols();
        if (m == 0 || n == 0) {
            return;
        }
        if (k == 0) {
            for (int i = 0; i < m; i++) {
                java.util.Arrays.fill(c.data(), c.index(i, 0), c.index(i, 0) + n, 0f);
            }
            return;
        }
        int panels = (n + NR - 1) / NR;
        int rowBlocks = (m + MC - 1) / MC;
        IntStream tasks = IntStream.range(0, panels * rowBlocks);
        (parallel ? tasks.parallel() : tasks).forEach(t -> {
            float[] packed = new float[KC * NR];
            int j0 = (t % panels) * NR;
            int i0 = (t / panels) * MC;
            int nValid = Math.min(NR, n - j0);
            int rows = Math.min(MC, m - i0);
            for (int k0 = 0; k0 < k; k0 += KC) {
                int kc = Math.min(KC, k - k0);
                pack(b, transposed, j0, nValid, k0, kc, packed);
                block(a, i0, rows, k0, kc, packed, c, j0, nValid, k0 > 0);
            }
        });
    }

    /** packed[p * NR + jj] = B(k0 + p, j0 + jj), zero beyond the last column. */
    private static void pack(Mat b, boolean transposed, int j0, int nValid, int k0, int kc, float[] packed) {
        float[] d = b.data();
        if (transposed) {
            for (int jj = 0; jj < NR; jj++) {
                if (jj < nValid) {
                    int src = b.index(j0 + jj, k0);
                    for (int p = 0; p < kc; p++) {
                        packed[p * NR + jj] = d[src + p];
                    }
                } else {
                    for (int p = 0; p < kc; p++) {
                        packed[p * NR + jj] = 0f;
                    }
                }
            }
        } else {
            for (int p = 0; p < kc; p++) {
                int src = b.index(k0 + p, j0);
                System.arraycopy(d, src, packed, p * NR, nValid);
                java.util.Arrays.fill(packed, p * NR + nValid, p * NR + NR, 0f);
            }
        }
    }

    private static void block(Mat a, int i0, int rows, int k0, int kc, float[] packed, Mat c, int j0, int nValid,
            boolean accumulate) {
        int i = i0;
        for (; i + MR <= i0 + rows; i += MR) {
            kernelMR(a.data(), a.index(i, k0), a.ld(), packed, kc, c.data(), c.index(i, j0), c.ld(), accumulate, nValid);
        }
        for (; i < i0 + rows; i++) {
            kernel1(a.data(), a.index(i, k0), packed, kc, c.data(), c.index(i, j0), accumulate, nValid);
        }
    }

    private static void kernelMR(float[] a, int aOff, int lda, float[] bp, int kc, float[] c, int cOff, int ldc,
            boolean accumulate, int nValid) {
        FloatVector c00 = FloatVector.zero(S), c01 = FloatVector.zero(S);
        FloatVector c10 = FloatVector.zero(S), c11 = FloatVector.zero(S);
        FloatVector c20 = FloatVector.zero(S), c21 = FloatVector.zero(S);
        FloatVector c30 = FloatVector.zero(S), c31 = FloatVector.zero(S);
        FloatVector c40 = FloatVector.zero(S), c41 = FloatVector.zero(S);
        FloatVector c50 = FloatVector.zero(S), c51 = FloatVector.zero(S);
        int a0 = aOff, a1 = a0 + lda, a2 = a1 + lda, a3 = a2 + lda, a4 = a3 + lda, a5 = a4 + lda;
        for (int p = 0; p < kc; p++) {
            int q = p * NR;
            FloatVector b0 = FloatVector.fromArray(S, bp, q);
            FloatVector b1 = FloatVector.fromArray(S, bp, q + L);
            FloatVector x = FloatVector.broadcast(S, a[a0 + p]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, a[a1 + p]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(S, a[a2 + p]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(S, a[a3 + p]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(S, a[a4 + p]);
            c40 = x.fma(b0, c40);
            c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(S, a[a5 + p]);
            c50 = x.fma(b0, c50);
            c51 = x.fma(b1, c51);
        }
        store(c00, c, cOff, accumulate, nValid);
        store(c01, c, cOff + L, accumulate, nValid - L);
        store(c10, c, cOff + ldc, accumulate, nValid);
        store(c11, c, cOff + ldc + L, accumulate, nValid - L);
        store(c20, c, cOff + 2 * ldc, accumulate, nValid);
        store(c21, c, cOff + 2 * ldc + L, accumulate, nValid - L);
        store(c30, c, cOff + 3 * ldc, accumulate, nValid);
        store(c31, c, cOff + 3 * ldc + L, accumulate, nValid - L);
        store(c40, c, cOff + 4 * ldc, accumulate, nValid);
        store(c41, c, cOff + 4 * ldc + L, accumulate, nValid - L);
        store(c50, c, cOff + 5 * ldc, accumulate, nValid);
        store(c51, c, cOff + 5 * ldc + L, accumulate, nValid - L);
    }

    private static void kernel1(float[] a, int aOff, float[] bp, int kc, float[] c, int cOff, boolean accumulate,
            int nValid) {
        FloatVector c0 = FloatVector.zero(S), c1 = FloatVector.zero(S);
        for (int p = 0; p < kc; p++) {
            FloatVector x = FloatVector.broadcast(S, a[aOff + p]);
            c0 = x.fma(FloatVector.fromArray(S, bp, p * NR), c0);
            c1 = x.fma(FloatVector.fromArray(S, bp, p * NR + L), c1);
        }
        store(c0, c, cOff, accumulate, nValid);
        store(c1, c, cOff + L, accumulate, nValid - L);
    }

    /** Stores one vector of a C row; valid = columns of this vector that exist (may be <= 0 or > L). */
    private static void store(FloatVector v, float[] c, int off, boolean accumulate, int valid) {
        if (valid >= L) {
            if (accumulate) {
                v = v.add(FloatVector.fromArray(S, c, off));
            }
            v.intoArray(c, off);
        } else if (valid > 0) {
            VectorMask<Float> m = S.indexInRange(0, valid);
            if (accumulate) {
                v = v.add(FloatVector.fromArray(S, c, off, m));
            }
            v.intoArray(c, off, m);
        }
    }
}
