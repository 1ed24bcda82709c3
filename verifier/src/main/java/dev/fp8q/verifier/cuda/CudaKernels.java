package dev.fp8q.verifier.cuda;

import dev.fp8q.verifier.cuda.CudaDevice.Args;

/**
 * fp8q.cu's kernels with their shapes checked. GEMMs compute C [M, N] = A [M, K] · B [N, K]ᵀ, then
 * C = acc * alpha * (*aScale) * colScale[n] + bias[n], each of aScale, colScale and bias optional (null).
 */
public final class CudaKernels {

    /** Every kernel this class launches (the PTX must define each). */
    public static final java.util.List<String> KERNELS = java.util.List.of("amax_f32", "scale_from_amax",
            "quantize_f32_e4m3", "f32_to_bf16", "e4m3_to_bf16", "e4m3_to_f32", "gemm_bf16_tc", "gemm_e4m3_tc", "gemm_f32",
            "softmax_rows", "layer_norm_rows", "rms_norm_rows", "modulate", "gated_add", "gelu_tanh", "rope3d");

    static final int THREADS = 256;
    private static final int TC_TILE = 128;
    private static final int F32_TILE = 64;

    private final CudaDevice gpu;

    public CudaKernels(CudaDevice gpu) {
        this.gpu = gpu;
    }

    public CudaDevice device() {
        return gpu;
    }

    /** Blocks of THREADS for a grid-stride loop over n elements (at most 8192). */
    static int grid(long n) {
        return (int) Math.max(1, Math.min((n + THREADS - 1) / THREADS, 8192));
    }

    /** A one-float buffer holding amax(|x|) / 448, or 1.0 when x is all zeros: W8A8's dynamic activation scale. */
    public DeviceBuffer activationScale(DeviceBuffer x, long n) {
        try (DeviceBuffer amax = gpu.alloc(4)) {
            gpu.zero(amax);
            gpu.launch("amax_f32", grid(n), 1, 1, THREADS, new Args().buf(x).l(n).buf(amax));
            DeviceBuffer scale = gpu.alloc(4);
            gpu.launch("scale_from_amax", 1, 1, 1, 1, new Args().buf(amax).buf(scale));
            return scale;
        }
    }

    /** E4M3 codes of x / *scale (float32 in, one byte out per value). */
    public void quantize(DeviceBuffer x, long n, DeviceBuffer scale, DeviceBuffer codes) {
        gpu.launch("quantize_f32_e4m3", grid(n), 1, 1, THREADS, new Args().buf(x).l(n).buf(scale).buf(codes));
    }

    public void toBf16(DeviceBuffer x, long n, DeviceBuffer out) {
        gpu.launch("f32_to_bf16", grid(n), 1, 1, THREADS, new Args().buf(x).l(n).buf(out));
    }

    /** E4M3 codes widened exactly to BF16 (unscaled). */
    public void e4m3ToBf16(DeviceBuffer codes, long n, DeviceBuffer out) {
        gpu.launch("e4m3_to_bf16", grid(n), 1, 1, THREADS, new Args().buf(codes).l(n).buf(out));
    }

    /** Dequantized float32 of [n / cols, cols] codes: one scale, or one per row when perRow. */
    public void e4m3ToF32(DeviceBuffer codes, long n, long cols, DeviceBuffer scales, boolean perRow, DeviceBuffer out) {
        gpu.launch("e4m3_to_f32", grid(n), 1, 1, THREADS,
                new Args().buf(codes).l(n).l(cols).buf(scales).i(perRow ? 1 : 0).buf(out));
    }

    /** BF16 (fp8 false) or E4M3 (fp8 true) operands on tensor cores (mma.sync), float32 accumulation. */
    public void gemmTensorCores(boolean fp8, DeviceBuffer a, DeviceBuffer b, DeviceBuffer c, int m, int n, int k,
            float alpha, DeviceBuffer aScale, DeviceBuffer colScale, DeviceBuffer bias) {
        int elem = fp8 ? 1 : 2;
        if ((k * elem) % 16 != 0) {
            throw new IllegalArgumentException("tensor-core GEMM needs rows of a multiple of 16 bytes, K = " + k);
        }
        checkSize(a, (long) m * k * elem, "A");
        checkSize(b, (long) n * k * elem, "B");
        checkSize(c, (long) m * n * 4, "C");
        gpu.launch(fp8 ? "gemm_e4m3_tc" : "gemm_bf16_tc", ceil(n, TC_TILE), ceil(m, TC_TILE), 1, THREADS,
                new Args().buf(a).buf(b).buf(c).i(m).i(n).i(k).f(alpha).buf(aScale).buf(colScale).buf(bias));
    }

    /** Float32 GEMM on CUDA cores: C = A Bᵀ (B [N, K]), the exact-arithmetic simulation of W8A8. */
    public void gemmF32(DeviceBuffer a, DeviceBuffer b, DeviceBuffer c, int m, int n, int k, float alpha,
            DeviceBuffer aScale, DeviceBuffer colScale, DeviceBuffer bias) {
        checkSize(a, (long) m * k * 4, "A");
        checkSize(b, (long) n * k * 4, "B");
        checkSize(c, (long) m * n * 4, "C");
        gpu.launch("gemm_f32", ceil(n, F32_TILE), ceil(m, F32_TILE), 1, THREADS, new Args().buf(a).i(k).l(0).buf(b)
                .i(k).l(0).i(1).buf(c).i(n).l(0).i(m).i(n).i(k).f(alpha).buf(aScale).buf(colScale).buf(bias));
    }

    /**
     * Multi-head attention without masks, float32, as the CPU's Attention: for each head h,
     * out_h = softmax(q_h k_hᵀ / sqrt(d)) v_h with q [lq, dim], k and v [lk, dim], out [lq, dim].
     */
    public void attention(DeviceBuffer q, int lq, DeviceBuffer k, DeviceBuffer v, int lk, int dim, int heads,
            DeviceBuffer out) {
        attention(q, lq, k, v, lk, dim, heads, out, SCORES);
    }

    void attention(DeviceBuffer q, int lq, DeviceBuffer k, DeviceBuffer v, int lk, int dim, int heads,
            DeviceBuffer out, long scoresBytes) {
        int d = dim / heads;
        if (dim % heads != 0) {
            throw new IllegalArgumentException("dim " + dim + " is not a multiple of " + heads + " heads");
        }
        checkSize(q, (long) lq * dim * 4, "q");
        checkSize(k, (long) lk * dim * 4, "k");
        checkSize(v, (long) lk * dim * 4, "v");
        checkSize(out, (long) lq * dim * 4, "out");
        // Query rows in chunks so the scores [heads, rows, lk] stay within scoresBytes, however long the video.
        int chunk = (int) Math.max(1, Math.min(lq, scoresBytes / (4L * heads * lk)));
        try (DeviceBuffer s = gpu.alloc((long) heads * chunk * lk * 4)) {
            for (int r0 = 0; r0 < lq; r0 += chunk) {
                int rows = Math.min(chunk, lq - r0);
                long plane = (long) rows * lk;
                long at = (long) r0 * dim * 4;
                gpu.launch("gemm_f32", ceil(lk, F32_TILE), ceil(rows, F32_TILE), heads, THREADS, new Args().buf(q, at)
                        .i(dim).l(d).buf(k).i(dim).l(d).i(1).buf(s).i(lk).l(plane).i(rows).i(lk).i(d).f(1f).buf(null)
                        .buf(null).buf(null));
                gpu.launch("softmax_rows", heads * rows, 1, 1, THREADS,
                        new Args().buf(s).i(lk).f((float) (1 / Math.sqrt(d))));
                gpu.launch("gemm_f32", ceil(d, F32_TILE), ceil(rows, F32_TILE), heads, THREADS, new Args().buf(s).i(lk)
                        .l(plane).buf(v).i(dim).l(d).i(0).buf(out, at).i(dim).l(d).i(rows).i(d).i(lk).f(1f).buf(null)
                        .buf(null).buf(null));
            }
        }
    }

    /** Most bytes of attention scores held at once. */
    static final long SCORES = 1L << 30;

    /** out = LayerNorm of each row of x [rows, dim]; weight and bias null for none. */
    public void layerNorm(DeviceBuffer x, DeviceBuffer out, int rows, int dim, float eps, DeviceBuffer weight,
            DeviceBuffer bias) {
        gpu.launch("layer_norm_rows", rows, 1, 1, THREADS, new Args().buf(x).buf(out).i(dim).f(eps).buf(weight).buf(bias));
    }

    /** In place. */
    public void rmsNorm(DeviceBuffer x, int rows, int dim, float eps, DeviceBuffer weight) {
        gpu.launch("rms_norm_rows", rows, 1, 1, THREADS, new Args().buf(x).i(dim).f(eps).buf(weight));
    }

    /** In place: h * (1 + scale) + shift, scale and shift [dim] or [rows, dim] (perToken). */
    public void modulate(DeviceBuffer h, long n, int dim, DeviceBuffer scale, DeviceBuffer shift, boolean perToken) {
        gpu.launch("modulate", grid(n), 1, 1, THREADS, new Args().buf(h).l(n).i(dim).buf(scale).buf(shift)
                .i(perToken ? 1 : 0));
    }

    /** In place: x += y * gate (gate null: x += y). */
    public void gatedAdd(DeviceBuffer x, DeviceBuffer y, long n, int dim, DeviceBuffer gate, boolean perToken) {
        gpu.launch("gated_add", grid(n), 1, 1, THREADS, new Args().buf(x).buf(y).l(n).i(dim).buf(gate)
                .i(perToken ? 1 : 0));
    }

    public void geluTanh(DeviceBuffer x, long n) {
        gpu.launch("gelu_tanh", grid(n), 1, 1, THREADS, new Args().buf(x).l(n));
    }

    /** In place: Wan's 3D RoPE on [tokens, dim] with part widths w (head_dim = their sum). */
    public void rope(DeviceBuffer x, int tokens, int height, int width, int dim, int[] w) {
        int headDim = w[0] + w[1] + w[2];
        gpu.launch("rope3d", grid((long) tokens * dim / 2), 1, 1, THREADS, new Args().buf(x).i(tokens).i(height)
                .i(width).i(dim).i(headDim).i(w[0]).i(w[1]).i(w[2]));
    }

    private static int ceil(int v, int tile) {
        return (v + tile - 1) / tile;
    }

    private static void checkSize(DeviceBuffer b, long need, String what) {
        if (b.bytes() < need) {
            throw new IllegalArgumentException(what + " holds " + b.bytes() + " bytes, the GEMM reads " + need);
        }
    }
}
