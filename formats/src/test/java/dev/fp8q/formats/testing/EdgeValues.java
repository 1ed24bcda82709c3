package dev.fp8q.formats.testing;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.Elements;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;

/** Test weights for block-scaled quantization (MX): every 32-value block of a row drawn from one kind of edge. */
public final class EdgeValues {

    private EdgeValues() {}

    /** Gaussian rows of magnitudes 1e-30 .. 1e30, and edge blocks: zeros, subnormals, huge values, exact powers of two. */
    private static float value(SplittableRandom rnd, long i, long cols) {
        long block = (i % cols) / 32;
        long row = i / cols;
        return switch ((int) ((row + block) % 9)) {
            case 0 -> 0f; // an all-zero block
            case 1 -> Math.scalb(1f, (int) (row % 20) - 8) * (rnd.nextBoolean() ? 1 : -1); // powers of two: amax exactly 2^k
            case 2 -> (float) (rnd.nextGaussian() * 1e-40); // F32 subnormals (zero or subnormal in 16 bits)
            case 3 -> (float) (rnd.nextGaussian() * 3e37); // near the float32 top (Inf-free after rounding)
            case 4 -> (float) (448.0 * (1 + rnd.nextInt(3) / 8.0) * (rnd.nextBoolean() ? 1 : -1)); // 448 .. 560: saturation
            case 5 -> Math.scalb(511f / 256f, (int) (row % 7)) * (float) rnd.nextDouble(); // just under a power of two
            default -> (float) (rnd.nextGaussian() * Math.pow(10, (row * 7 + block) % 61 - 30));
        };
    }

    public static MemorySegment source(Arena arena, DType dtype, long rows, long cols, long seed) {
        SplittableRandom rnd = new SplittableRandom(seed);
        MemorySegment seg = arena.allocate(rows * cols * dtype.bits() / 8);
        for (long i = 0; i < rows * cols; i++) {
            float v = value(rnd, i, cols);
            switch (dtype) {
                case F32 -> seg.setAtIndex(Elements.FLOAT, i, v);
                case BF16 -> seg.setAtIndex(Elements.SHORT, i, Elements.floatToBf16(v));
                default -> seg.setAtIndex(Elements.SHORT, i, Float.floatToFloat16(Math.max(-65504f, Math.min(65504f, v))));
            }
        }
        return seg;
    }

}
