package dev.fp8q.bench;

import dev.fp8q.verifier.run.SimulatedFp8Weights;
import java.util.SplittableRandom;

/**
 * How long plan's simulated per-tensor FP8 of one BF16-valued weight takes (SimulatedFp8Weights, which plan's
 * end-to-end figures call for every Linear on every run). Usage: SimulatedWeightBench [ROWS COLS] (default 5120 5120).
 */
public final class SimulatedWeightBench {

    private SimulatedWeightBench() {}

    public static void main(String[] args) {
        int rows = args.length > 1 ? Integer.parseInt(args[0]) : 5120;
        int cols = args.length > 1 ? Integer.parseInt(args[1]) : 5120;
        float[] w = new float[rows * cols];
        SplittableRandom r = new SplittableRandom(1);
        for (int i = 0; i < w.length; i++) { // BF16 values, as a BF16 source widens to
            w[i] = Float.intBitsToFloat(Float.floatToRawIntBits((float) (r.nextGaussian() * 0.02)) & 0xFFFF0000);
        }
        float check = 0;
        for (int round = 0; round < 6; round++) {
            long t0 = System.nanoTime();
            check += SimulatedFp8Weights.quantizeDequantize(w)[round];
            System.out.printf("round %d: %.1f ms%n", round, (System.nanoTime() - t0) / 1e6);
        }
        System.out.println("(checksum " + check + ")");
    }
}
