package dev.fp8q.bench;

import dev.fp8q.verifier.cuda.CudaDevice;
import dev.fp8q.verifier.cuda.CudaKernels;
import dev.fp8q.verifier.cuda.DeviceBuffer;
import dev.fp8q.verifier.cuda.GpuSelfCheck;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * On a GPU machine: every kernel against the CPU ({@link GpuSelfCheck}), then GEMM throughput. Exit 1 when a
 * kernel disagrees. Usage: GpuCheck [M N K [RUNS]] (default 4096 5120 5120, 20 runs; median reported).
 */
public final class GpuCheck {

    private GpuCheck() {}

    public static void main(String[] args) throws Exception {
        int m = args.length > 2 ? Integer.parseInt(args[0]) : 4096;
        int n = args.length > 2 ? Integer.parseInt(args[1]) : 5120;
        int k = args.length > 2 ? Integer.parseInt(args[2]) : 5120;
        int runs = args.length > 3 ? Integer.parseInt(args[3]) : 20;
        try (CudaDevice gpu = CudaDevice.open()) {
            System.out.println("device: " + gpu.describe());
            CudaKernels kernels = new CudaKernels(gpu);
            List<String> failures = GpuSelfCheck.run(kernels, s -> System.out.println("  " + s));
            System.out.println(failures.isEmpty() ? "kernels: all agree with the CPU" : "kernels: " + failures.size() + " FAILED");
            throughput(kernels, m, n, k, runs);
            if (!failures.isEmpty()) {
                System.exit(1);
            }
        }
    }

    private static void throughput(CudaKernels kernels, int m, int n, int k, int runs) {
        CudaDevice gpu = kernels.device();
        SplittableRandom r = new SplittableRandom(5);
        float[] a = new float[m * k];
        float[] b = new float[n * k];
        for (int i = 0; i < a.length; i++) {
            a[i] = (float) r.nextGaussian();
        }
        for (int i = 0; i < b.length; i++) {
            b[i] = (float) r.nextGaussian();
        }
        double flop = 2.0 * m * n * k;
        try (DeviceBuffer ad = gpu.upload(a); DeviceBuffer bd = gpu.upload(b); DeviceBuffer c = gpu.alloc((long) m * n * 4);
                DeviceBuffer a16 = gpu.alloc(a.length * 2L); DeviceBuffer b16 = gpu.alloc(b.length * 2L);
                DeviceBuffer sa = kernels.activationScale(ad, a.length); DeviceBuffer sb = kernels.activationScale(bd, b.length);
                DeviceBuffer qa = gpu.alloc(a.length); DeviceBuffer qb = gpu.alloc(b.length)) {
            kernels.toBf16(ad, a.length, a16);
            kernels.toBf16(bd, b.length, b16);
            kernels.quantize(ad, a.length, sa, qa);
            kernels.quantize(bd, b.length, sb, qb);
            double bf16 = median(runs, () -> kernels.gemmTensorCores(false, a16, b16, c, m, n, k, 1f, null, null, null));
            double fp8 = median(runs, () -> kernels.gemmTensorCores(true, qa, qb, c, m, n, k, 1f, sa, null, null));
            double f32 = median(Math.max(3, runs / 4), () -> kernels.gemmF32(ad, bd, c, m, n, k, 1f, null, null, null));
            System.out.printf("GEMM %dx%dx%d, median of %d runs (launch + synchronize):%n", m, n, k, runs);
            System.out.printf("  bf16 tensor cores (mma.sync m16n8k16): %8.3f ms  %7.1f TFLOP/s%n", bf16 * 1e3, flop / bf16 / 1e12);
            System.out.printf("  e4m3 tensor cores (mma.sync m16n8k32): %8.3f ms  %7.1f TFLOP/s  (%.2fx bf16)%n", fp8 * 1e3,
                    flop / fp8 / 1e12, bf16 / fp8);
            System.out.printf("  float32 CUDA cores:                    %8.3f ms  %7.1f TFLOP/s%n", f32 * 1e3, flop / f32 / 1e12);
        }
    }

    private static double median(int runs, Runnable op) {
        op.run(); // warm-up: JIT of the PTX for this GPU happened at load; this one pays first-touch costs
        double[] t = new double[runs];
        for (int i = 0; i < runs; i++) {
            long t0 = System.nanoTime();
            op.run();
            t[i] = (System.nanoTime() - t0) / 1e9;
        }
        Arrays.sort(t);
        return t[runs / 2];
    }
}
