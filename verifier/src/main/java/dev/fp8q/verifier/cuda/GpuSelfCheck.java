package dev.fp8q.verifier.cuda;

import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.verifier.math.Attention;
import dev.fp8q.verifier.math.Mat;
import dev.fp8q.verifier.wan.CpuBlockMath;
import dev.fp8q.verifier.weights.ActivationQuantizer;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.function.Consumer;

/**
 * Every kernel against its CPU definition: quantization, scales and widening bit for bit, the GEMMs within
 * float32 accumulation error of a float64 product of the same operands. Run by bench/gpu-check.sh and, where a
 * GPU is present, by the unit tests.
 */
public final class GpuSelfCheck {

    /** Largest |GPU - float64| / rms(float64 result) a GEMM may show: float32 sums of K products. */
    public static final double GEMM_TOLERANCE = 1e-5;
    /**
     * The same for FP8 tensor cores, whose accumulator keeps fewer bits than float32 (DeepSeek-V3 measured about
     * 14 on Hopper), so long sums drift more.
     */
    public static final double FP8_GEMM_TOLERANCE = 2e-3;
    /** Elementwise ops do the CPU's float operations in its order; row sums and tanh/cos/pow may differ in an ulp. */
    public static final double ELEMENTWISE_TOLERANCE = 1e-6;

    private final CudaKernels k;
    private final CudaDevice gpu;
    private final List<String> failures = new ArrayList<>();
    private final Consumer<String> log;

    private GpuSelfCheck(CudaKernels k, Consumer<String> log) {
        this.k = k;
        this.gpu = k.device();
        this.log = log;
    }

    /** The failures, empty when every kernel agrees with the CPU. */
    public static List<String> run(CudaKernels kernels, Consumer<String> log) {
        GpuSelfCheck c = new GpuSelfCheck(kernels, log);
        c.quantization();
        c.widening();
        for (int[] s : new int[][] {{77, 200, 144}, {128, 128, 64}, {300, 136, 1040}, {1, 8, 16}}) {
            c.gemms(s[0], s[1], s[2]);
        }
        c.attention(100, 77, 256, 2, CudaKernels.SCORES);
        c.attention(64, 512, 384, 3, CudaKernels.SCORES);
        c.attention(1000, 40, 256, 2, 64 * 40 * 2 * 4 + 4); // scores of 64 queries at a time: 16 chunks, the last short
        c.elementwise(2, 3, 5, 256, 128);
        return List.copyOf(c.failures);
    }

    private void fail(String what) {
        failures.add(what);
        log.accept("FAIL " + what);
    }

    /** Random bit patterns (every exponent, subnormals, infinities), values around every E4M3 midpoint, zeros. */
    static float[] hardFloats(int n, long seed) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        int i = 0;
        for (int c = 0; c < 256 && i + 3 <= n; c++) {
            float v = E4M3.decode((byte) c);
            float next = c == 0x7e ? 480f : E4M3.decode((byte) (c + 1));
            if (Float.isNaN(v) || Float.isNaN(next) || (c & 0x7f) == 0x7f) {
                continue;
            }
            float mid = (v + next) / 2;
            x[i++] = mid;
            x[i++] = Math.nextUp(mid);
            x[i++] = Math.nextDown(mid);
        }
        while (i < n) {
            float v = Float.intBitsToFloat(r.nextInt());
            x[i++] = Float.isNaN(v) ? 0f : v;
        }
        return x;
    }

    private void quantization() {
        int n = 1 << 22;
        float[] x = hardFloats(n, 1);
        // Scale 1: the encoder on raw values, every exponent; then a real activation scale.
        checkCodes("quantize, scale 1", x, 1f);
        float[] act = new float[n];
        SplittableRandom r = new SplittableRandom(2);
        for (int i = 0; i < n; i++) {
            act[i] = (float) (r.nextGaussian() * Math.exp(r.nextGaussian() * 3));
        }
        try (DeviceBuffer xd = gpu.upload(act); DeviceBuffer s = k.activationScale(xd, n)) {
            float gpuScale = gpu.download(s, 1)[0];
            float amax = 0;
            for (float v : act) {
                amax = Math.max(amax, Math.abs(v));
            }
            float cpuScale = amax / E4M3.MAX;
            if (Float.floatToIntBits(gpuScale) != Float.floatToIntBits(cpuScale)) {
                fail("activation scale " + gpuScale + " != CPU " + cpuScale);
            }
            checkCodes("quantize, activation scale", act, cpuScale);
            float[] sim = ActivationQuantizer.quantizeDequantize(act);
            try (DeviceBuffer q = gpu.alloc(n); DeviceBuffer f = gpu.alloc(n * 4L)) {
                k.quantize(xd, n, s, q);
                k.e4m3ToF32(q, n, n, s, false, f);
                compareBits("quantize-dequantize vs ActivationQuantizer", gpu.download(f, n), sim);
            }
        }
        try (DeviceBuffer z = gpu.upload(new float[1000]); DeviceBuffer s = k.activationScale(z, 1000)) {
            if (gpu.download(s, 1)[0] != 1f) {
                fail("scale of all zeros is not 1.0");
            }
        }
        log.accept("quantization: " + n + " values x 2 scales compared bit for bit");
    }

    private void checkCodes(String what, float[] x, float scale) {
        try (DeviceBuffer xd = gpu.upload(x); DeviceBuffer s = gpu.upload(new float[] {scale});
                DeviceBuffer q = gpu.alloc(x.length)) {
            k.quantize(xd, x.length, s, q);
            byte[] codes = gpu.downloadBytes(q, x.length);
            int bad = 0;
            String first = null;
            for (int i = 0; i < x.length; i++) {
                byte want = E4M3.encode(x[i] / scale);
                if (codes[i] != want) {
                    bad++;
                    if (first == null) {
                        first = String.format("x=%s (0x%08x): GPU 0x%02x, CPU 0x%02x", x[i],
                                Float.floatToRawIntBits(x[i]), codes[i], want);
                    }
                }
            }
            if (bad > 0) {
                fail(what + ": " + bad + " codes differ, first " + first);
            }
        }
    }

    private void widening() {
        byte[] all = new byte[256];
        for (int c = 0; c < 256; c++) {
            all[c] = (byte) c;
        }
        float[] rowScales = {0.5f, 3.0e-3f, 7.25f, 1f};
        try (DeviceBuffer codes = gpu.upload(MemorySegment.ofArray(all)); DeviceBuffer bf = gpu.alloc(512);
                DeviceBuffer f = gpu.alloc(1024); DeviceBuffer s = gpu.upload(rowScales)) {
            k.e4m3ToBf16(codes, 256, bf);
            byte[] raw = gpu.downloadBytes(bf, 512);
            k.e4m3ToF32(codes, 256, 64, s, true, f);
            float[] deq = gpu.download(f, 256);
            for (int c = 0; c < 256; c++) {
                float v = E4M3.decode((byte) c);
                short bits = (short) ((raw[2 * c] & 0xff) | (raw[2 * c + 1] << 8));
                float widened = Elements.bf16ToFloat(bits);
                if (Float.floatToIntBits(widened) != Float.floatToIntBits(v)) {
                    fail(String.format("e4m3_to_bf16 of 0x%02x: %s, want %s", c, widened, v));
                }
                float want = v * rowScales[c / 64];
                if (Float.floatToIntBits(deq[c]) != Float.floatToIntBits(want)) {
                    fail(String.format("e4m3_to_f32 of 0x%02x: %s, want %s", c, deq[c], want));
                }
            }
        }
        float[] x = hardFloats(1 << 20, 3);
        try (DeviceBuffer xd = gpu.upload(x); DeviceBuffer bf = gpu.alloc(x.length * 2L)) {
            k.toBf16(xd, x.length, bf);
            byte[] raw = gpu.downloadBytes(bf, x.length * 2);
            int bad = 0;
            for (int i = 0; i < x.length; i++) {
                short bits = (short) ((raw[2 * i] & 0xff) | (raw[2 * i + 1] << 8));
                bad += bits == Elements.floatToBf16(x[i]) ? 0 : 1;
            }
            if (bad > 0) {
                fail("f32_to_bf16: " + bad + " of " + x.length + " values differ from the CPU's RNE");
            }
        }
        log.accept("widening: 256 codes to BF16 and float32, " + x.length + " floats to BF16, bit for bit");
    }

    private void compareBits(String what, float[] got, float[] want) {
        int bad = 0;
        for (int i = 0; i < got.length; i++) {
            bad += Float.floatToIntBits(got[i]) == Float.floatToIntBits(want[i]) ? 0 : 1;
        }
        if (bad > 0) {
            fail(what + ": " + bad + " of " + got.length + " values differ");
        }
    }

    private void gemms(int m, int n, int kk) {
        SplittableRandom r = new SplittableRandom(m * 31L + n);
        float[] a = new float[m * kk];
        float[] b = new float[n * kk];
        float[] bias = new float[n];
        float[] cols = new float[n];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = (float) r.nextGaussian() * 0.05f;
        }
        for (int i = 0; i < n; i++) {
            bias[i] = (float) r.nextGaussian();
            cols[i] = 0.5f + (float) r.nextDouble();
        }
        // BF16 operands: the GPU rounds, the CPU product takes the same rounded values.
        float[] ab = roundBf16(a);
        float[] bb = roundBf16(b);
        try (DeviceBuffer ad = gpu.upload(a); DeviceBuffer bd = gpu.upload(b); DeviceBuffer a16 = gpu.alloc(a.length * 2L);
                DeviceBuffer b16 = gpu.alloc(b.length * 2L); DeviceBuffer c = gpu.alloc((long) m * n * 4);
                DeviceBuffer biasD = gpu.upload(bias); DeviceBuffer colD = gpu.upload(cols)) {
            k.toBf16(ad, a.length, a16);
            k.toBf16(bd, b.length, b16);
            k.gemmTensorCores(false, a16, b16, c, m, n, kk, 0.75f, null, colD, biasD);
            compareGemm("bf16 tensor cores " + m + "x" + n + "x" + kk, gpu.download(c, m * n),
                    product(ab, bb, m, n, kk, 0.75f, 1f, cols, bias));
            k.gemmF32(ad, bd, c, m, n, kk, 1f, null, null, biasD);
            compareGemm("float32 CUDA cores " + m + "x" + n + "x" + kk, gpu.download(c, m * n),
                    product(a, b, m, n, kk, 1f, 1f, null, bias));
            // E4M3 operands: codes of a / sa and b / sb; the CPU multiplies the decoded codes, then the scales.
            try (DeviceBuffer sa = k.activationScale(ad, a.length); DeviceBuffer sb = k.activationScale(bd, b.length);
                    DeviceBuffer qa = gpu.alloc(a.length); DeviceBuffer qb = gpu.alloc(b.length)) {
                k.quantize(ad, a.length, sa, qa);
                k.quantize(bd, b.length, sb, qb);
                float scaleA = gpu.download(sa, 1)[0];
                float scaleB = gpu.download(sb, 1)[0];
                k.gemmTensorCores(true, qa, qb, c, m, n, kk, scaleB, sa, null, biasD);
                compareGemm("e4m3 tensor cores " + m + "x" + n + "x" + kk, gpu.download(c, m * n),
                        product(decoded(a, scaleA), decoded(b, scaleB), m, n, kk, scaleB, scaleA, null, bias),
                        FP8_GEMM_TOLERANCE);
            }
        }
    }

    private void attention(int lq, int lk, int dim, int heads, long scoresBytes) {
        SplittableRandom r = new SplittableRandom(lq * 7L + lk);
        float[] q = new float[lq * dim];
        float[] kk = new float[lk * dim];
        float[] v = new float[lk * dim];
        for (float[] t : new float[][] {q, kk, v}) {
            for (int i = 0; i < t.length; i++) {
                t[i] = (float) r.nextGaussian() * 2;
            }
        }
        float[] want = Attention.forward(Mat.of(q, lq, dim), Mat.of(kk, lk, dim), Mat.of(v, lk, dim), heads).data();
        try (DeviceBuffer qd = gpu.upload(q); DeviceBuffer kd = gpu.upload(kk); DeviceBuffer vd = gpu.upload(v);
                DeviceBuffer out = gpu.alloc((long) lq * dim * 4)) {
            k.attention(qd, lq, kd, vd, lk, dim, heads, out, scoresBytes);
            compareWithCpu("attention " + lq + "x" + lk + ", dim " + dim + ", " + heads + " heads, scores of "
                    + Math.min(lq, scoresBytes / (4L * heads * lk)) + " queries at a time",
                    gpu.download(out, lq * dim), want, GEMM_TOLERANCE);
        }
    }

    /** The block's elementwise ops against {@link CpuBlockMath} on a frames x height x width token grid. */
    private void elementwise(int frames, int height, int width, int dim, int headDim) {
        int rows = frames * height * width;
        SplittableRandom r = new SplittableRandom(11);
        float[] x = new float[rows * dim];
        float[] y = new float[rows * dim];
        float[] perToken = new float[rows * dim];
        float[] vec = new float[dim];
        float[] vec2 = new float[dim];
        for (float[] t : new float[][] {x, y, perToken, vec, vec2}) {
            for (int i = 0; i < t.length; i++) {
                t[i] = (float) (r.nextGaussian() * 1.5 + 0.3);
            }
        }
        CpuBlockMath cpu = new CpuBlockMath(headDim);
        try (CudaBlockMath g = new CudaBlockMath(k, headDim)) {
            compareOp("layer_norm", g.output(g.layerNorm(g.input(x), rows, dim, 1e-6f, null, null)),
                    cpu.layerNorm(x, rows, dim, 1e-6f, null, null));
            compareOp("layer_norm affine", g.output(g.layerNorm(g.input(x), rows, dim, 1e-6f, vec, vec2)),
                    cpu.layerNorm(x, rows, dim, 1e-6f, vec, vec2));
            for (boolean pt : new boolean[] {false, true}) {
                DeviceBuffer h = g.input(x);
                float[] hc = x.clone();
                g.modulate(h, rows, dim, pt ? perToken : vec, pt ? y : vec2, pt);
                cpu.modulate(hc, rows, dim, pt ? perToken : vec, pt ? y : vec2, pt);
                compareOp("modulate" + (pt ? " per token" : ""), g.output(h), hc);
                g.gatedAdd(h, g.input(y), rows, dim, pt ? perToken : vec, pt);
                cpu.gatedAdd(hc, y, rows, dim, pt ? perToken : vec, pt);
                compareOp("gated add" + (pt ? " per token" : ""), g.output(h), hc);
            }
            DeviceBuffer h = g.input(x);
            float[] hc = x.clone();
            g.gatedAdd(h, g.input(y), rows, dim, null, false);
            cpu.gatedAdd(hc, y, rows, dim, null, false);
            g.rmsNorm(h, rows, dim, 1e-6f, vec);
            cpu.rmsNorm(hc, rows, dim, 1e-6f, vec);
            compareOp("add, rms_norm", g.output(h), hc);
            g.rope(h, frames, height, width, dim);
            cpu.rope(hc, frames, height, width, dim);
            compareOp("rope", g.output(h), hc);
            g.geluTanh(h);
            cpu.geluTanh(hc);
            compareOp("gelu_tanh", g.output(h), hc);
        }
    }

    private void compareOp(String what, float[] got, float[] want) {
        compareWithCpu(what, got, want, ELEMENTWISE_TOLERANCE);
    }

    /** A GPU result against the CPU's float32 one, measured as the GEMMs are. */
    private void compareWithCpu(String what, float[] got, float[] want, double tolerance) {
        double[] w = new double[want.length];
        for (int i = 0; i < w.length; i++) {
            w[i] = want[i];
        }
        compareGemm(what + " vs the CPU's", got, w, tolerance);
    }

    private static float[] roundBf16(float[] x) {
        float[] o = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            o[i] = Elements.bf16ToFloat(Elements.floatToBf16(x[i]));
        }
        return o;
    }

    private static float[] decoded(float[] x, float scale) {
        float[] o = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            o[i] = E4M3.decode(E4M3.encode(x[i] / scale));
        }
        return o;
    }

    /** float64 (a · bᵀ) * alpha * aScale * cols[n] + bias[n]. */
    private static double[] product(float[] a, float[] b, int m, int n, int k, float alpha, float aScale, float[] cols,
            float[] bias) {
        double[] c = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    s += (double) a[i * k + p] * b[j * k + p];
                }
                c[i * n + j] = s * alpha * aScale * (cols == null ? 1 : cols[j]) + (bias == null ? 0 : bias[j]);
            }
        }
        return c;
    }

    private void compareGemm(String what, float[] got, double[] want) {
        compareGemm(what, got, want, GEMM_TOLERANCE);
    }

    private void compareGemm(String what, float[] got, double[] want, double tolerance) {
        double sq = 0;
        double worst = 0;
        for (int i = 0; i < want.length; i++) {
            sq += want[i] * want[i];
            worst = Math.max(worst, Math.abs(got[i] - want[i]));
        }
        double rel = worst / Math.sqrt(sq / want.length);
        if (!(rel <= tolerance)) {
            fail(String.format("%s: max |error| / rms = %.3g > %.0g", what, rel, tolerance));
        } else {
            log.accept(String.format("%s: max |error| / rms = %.3g", what, rel));
        }
    }
}
