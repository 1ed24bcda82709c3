package dev.fp8q.verifier.weights;

/**
 * The dequantization multipliers of an FP8 weight viewed as [rows, cols] (cols = product of the trailing
 * dimensions): one per tensor, one per row (per-channel, [rows, 1] or [rows]), or one per block x block tile
 * ([ceil(rows / block), ceil(cols / block)], edge tiles by their real extent; ModelOpt's FP8_PB_WO writes that
 * grid as [rows / block, 1, cols / block, 1]), or one E8M0 power of two per 32 values of a row (MX, [rows, cols / 32]).
 */
public record ScaleGrid(Granularity granularity, float[] scales, int rows, int cols, int block) {

    public enum Granularity { TENSOR, CHANNEL, BLOCK, MX }

    /** MX's block length along a row. */
    public static final int MX_BLOCK = 32;

    /** The block sizes recognized from a scale tensor's shape, most common first. */
    private static final int[] BLOCKS = {128, 64, 32, 256};

    /** Reads the granularity off the scale's shape, or null when the shape fits none. */
    public static ScaleGrid infer(long[] weightShape, long[] scaleShape, float[] scales) {
        long rows = weightShape.length == 0 ? 1 : weightShape[0];
        long cols = 1;
        for (int i = 1; i < weightShape.length; i++) {
            cols *= weightShape[i];
        }
        if (scales.length == 1) {
            return new ScaleGrid(Granularity.TENSOR, scales, (int) rows, (int) cols, 0);
        }
        boolean perRow = scales.length == rows
                && (scaleShape.length == 1 || (scaleShape.length == 2 && scaleShape[1] == 1));
        if (perRow) {
            return new ScaleGrid(Granularity.CHANNEL, scales, (int) rows, (int) cols, 0);
        }
        if (scaleShape.length == 4 && scaleShape[1] == 1 && scaleShape[3] == 1) {
            scaleShape = new long[] {scaleShape[0], scaleShape[2]};
        }
        if (scaleShape.length == 2) {
            for (int b : BLOCKS) {
                if (scaleShape[0] == (rows + b - 1) / b && scaleShape[1] == (cols + b - 1) / b) {
                    return new ScaleGrid(Granularity.BLOCK, scales, (int) rows, (int) cols, b);
                }
            }
        }
        return null;
    }

    /** An MX grid: natural [rows, ceil(cols / 32)] scales of a weight of this shape. */
    public static ScaleGrid mx(long[] weightShape, float[] scales) {
        long rows = weightShape.length == 0 ? 1 : weightShape[0];
        long cols = 1;
        for (int i = 1; i < weightShape.length; i++) {
            cols *= weightShape[i];
        }
        return new ScaleGrid(Granularity.MX, scales, (int) rows, (int) cols, MX_BLOCK);
    }

    /** The grid's [rows, cols] of scales an MX weight of this shape has. */
    public static long[] mxGrid(long[] weightShape) {
        long cols = 1;
        for (int i = 1; i < weightShape.length; i++) {
            cols *= weightShape[i];
        }
        return new long[] {weightShape.length == 0 ? 1 : weightShape[0], (cols + MX_BLOCK - 1) / MX_BLOCK};
    }

    /** The multiplier of element i of the flattened weight. */
    public float scaleOf(long i) {
        return switch (granularity) {
            case TENSOR -> scales[0];
            case CHANNEL -> scales[(int) (i / cols)];
            case BLOCK -> {
                int r = (int) (i / cols);
                int c = (int) (i % cols);
                int tilesPerRow = (cols + block - 1) / block;
                yield scales[(r / block) * tilesPerRow + c / block];
            }
            case MX -> scales[(int) (i / cols) * ((cols + MX_BLOCK - 1) / MX_BLOCK) + (int) (i % cols) / MX_BLOCK];
        };
    }

    public String describe() {
        return switch (granularity) {
            case TENSOR -> "tensor";
            case CHANNEL -> "channel";
            case BLOCK -> "block " + block + "x" + block;
            case MX -> "mx 1x32 e8m0";
        };
    }
}
