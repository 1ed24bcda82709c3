package dev.fp8q.converter.quant;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.E8M0;
import dev.fp8q.formats.codec.Elements;
import java.util.Locale;

/**
 * How weights get their dequantization multipliers (NUMERICS.md, Scales): one per tensor, per output row
 * (channel) or per 128 x 128 tile (block) of the weight viewed as [rows = shape[0], cols = the rest], each
 * amax / 448 in float32, or with pow2 the smallest power of two at least that. Transformer Engine rounds its
 * quantizing factor (448 / amax) down to a power of two; the multiplier stored here is its reciprocal, so it
 * rounds up, and no value saturates. With bf16Scales each scale is then rounded to BF16 (nearest even) and the
 * codes are encoded with that rounded scale, so a runtime that keeps its scales in BF16 dequantizes exactly
 * what was encoded. MX (OCP Microscaling v1.0, MXFP8) gives one E8M0 scale per 32 consecutive values of a row,
 * X = 2^(floor(log2(amax)) - 8): the block's largest value lands in [256, 512) and saturates above 448, by the spec.
 */
public record Scaling(Granularity granularity, boolean pow2, boolean bf16Scales) {

    public enum Granularity { TENSOR, CHANNEL, BLOCK, MX }

    /** The tile edge of block scaling. */
    public static final int BLOCK = 128;

    /** The block length of MX scaling, along a row (the reduction dimension of a Linear). */
    public static final int MX_BLOCK = 32;

    /** floor(log2(448)): MX's emax of E4M3 elements. */
    private static final int MX_EMAX = 8;

    public static final Scaling PER_TENSOR = new Scaling(Granularity.TENSOR, false);

    /** The smallest positive BF16 (a subnormal): a scale rounded to BF16 never becomes 0. */
    private static final float BF16_MIN = Elements.bf16ToFloat((short) 1);

    public Scaling(Granularity granularity, boolean pow2) {
        this(granularity, pow2, false);
    }

    /** The same scaling with scales stored as BF16 (true) or F32. */
    public Scaling withBf16Scales(boolean bf16) {
        return new Scaling(granularity, pow2, bf16);
    }

    /** The dtype of the scale tensors: BF16 or F32; U8 E8M0 bytes for MX (a layout may store them as F8_E8M0). */
    public DType scaleDType() {
        return granularity == Granularity.MX ? DType.U8 : bf16Scales ? DType.BF16 : DType.F32;
    }

    public boolean mx() {
        return granularity == Granularity.MX;
    }

    public static Scaling parse(String granularity, boolean pow2) {
        Granularity g;
        try {
            g = Granularity.valueOf(granularity.toUpperCase(Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("unknown scaling '" + granularity + "' (tensor, channel, block or mx)");
        }
        if (g == Granularity.MX && pow2) {
            throw new IllegalArgumentException("mx scales are powers of two by definition; drop --pow2-scales");
        }
        return new Scaling(g, pow2);
    }

    /**
     * The multiplier for a group whose largest magnitude is amax (finite); 1.0 for an all-zero group, or for MX
     * the smallest E8M0 value, 2^-127.
     */
    public float scaleOf(float amax) {
        if (granularity == Granularity.MX) {
            return Math.scalb(1f, mxExponent(amax));
        }
        float s = f32ScaleOf(amax);
        return bf16Scales ? Math.max(BF16_MIN, Elements.bf16ToFloat(Elements.floatToBf16(s))) : s;
    }

    /**
     * MX's scale exponent for a block amax: floor(log2(amax)) - 8, clamped to E8M0's [-127, 127] (only the low end
     * can bind: float32 amax < 2^128); -127 for an all-zero block. Math.getExponent of the double is exact for
     * float32 subnormals as well.
     */
    public static int mxExponent(float amax) {
        if (amax == 0f) {
            return E8M0.MIN_EXP;
        }
        return Math.max(E8M0.MIN_EXP, Math.min(E8M0.MAX_EXP, Math.getExponent((double) amax) - MX_EMAX));
    }

    private float f32ScaleOf(float amax) {
        if (amax == 0f) {
            return 1f;
        }
        if (!pow2) {
            return amax / E4M3.MAX;
        }
        int e = Math.getExponent((double) amax) - 9; // 448 < 2^9: at or below the answer (exact for subnormals too)
        while (E4M3.MAX * Math.scalb(1.0, e) < amax) {
            e++;
        }
        return Math.scalb(1f, Math.max(e, Float.MIN_EXPONENT - 23)); // at least the smallest float32
    }

    /** Rows and columns of the weight's matrix view. */
    public static long rows(long[] shape) {
        return shape.length == 0 ? 1 : shape[0];
    }

    public static long cols(long[] shape) {
        long c = 1;
        for (int i = 1; i < shape.length; i++) {
            c *= shape[i];
        }
        return c;
    }

    /** Rows of one tile (a group of rows that shares scales). */
    public long tileRows() {
        return granularity == Granularity.BLOCK ? BLOCK : 1;
    }

    /** Columns of one tile: the whole row for tensor and channel scaling. */
    public long tileCols(long cols) {
        return switch (granularity) {
            case BLOCK -> BLOCK;
            case MX -> MX_BLOCK;
            default -> Math.max(cols, 1);
        };
    }

    /** The scale grid [grid rows, grid cols] of a weight. */
    public long[] grid(long[] shape) {
        long rows = rows(shape);
        long cols = cols(shape);
        return switch (granularity) {
            case TENSOR -> new long[] {1, 1};
            case CHANNEL -> new long[] {rows, 1};
            case BLOCK -> new long[] {ceil(rows, BLOCK), ceil(cols, BLOCK)};
            case MX -> new long[] {rows, ceil(cols, MX_BLOCK)};
        };
    }

    /** The index in {@link #grid}'s row-major scales of element (r, c) of a weight with cols columns. */
    public long scaleIndex(long r, long c, long cols) {
        return switch (granularity) {
            case TENSOR -> 0;
            case CHANNEL -> r;
            case BLOCK -> (r / BLOCK) * ceil(cols, BLOCK) + c / BLOCK;
            case MX -> r * ceil(cols, MX_BLOCK) + c / MX_BLOCK;
        };
    }

    /** Bytes of one stored scale: an E8M0 byte for MX, else F32 or BF16. */
    public int scaleBytes() {
        return scaleDType().bits() / 8;
    }

    static long ceil(long a, long b) {
        return (a + b - 1) / b;
    }

    /** As the manifest records it: "tensor", "channel", "block" or "mx", with "+pow2" (scale dtype recorded apart). */
    public String describe() {
        return granularity.name().toLowerCase(Locale.ROOT) + (pow2 ? "+pow2" : "");
    }
}
