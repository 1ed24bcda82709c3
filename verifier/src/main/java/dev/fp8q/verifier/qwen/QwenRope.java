package dev.fp8q.verifier.qwen;

import java.util.stream.IntStream;

/**
 * diffusers' QwenEmbedRope (theta 10000, axes_dims_rope (16, 56, 56), scale_rope=True) as applied by
 * apply_rotary_emb_qwen(use_real=False): per head, values (2j, 2j+1) form complex pair j; pairs 0..7 turn with
 * the frame position, 8..35 with the height, 36..63 with the width; pair j of an axis of width D turns by
 * pos * 10000^(-2j / D). Image token (f, y, x) of an F x H x W grid sits at (f, y - (H - H/2), x - (W - W/2))
 * (scale_rope centres height and width); text token i at max(H/2, W/2) + i on all three axes. Angles in float64.
 */
public final class QwenRope {

    public static final int[] AXES = {16, 56, 56};
    public static final int HEAD_DIM = 16 + 56 + 56;
    /** QwenEmbedRope's tables hold 4096 positions. */
    static final int POSITIONS = 4096;

    private QwenRope() {}

    /** Positions [tokens][3] of the image tokens, in order (frame, row, column). */
    public static int[][] imagePositions(int[] grid) {
        int f = grid[0];
        int h = grid[1];
        int w = grid[2];
        if (f > POSITIONS || h - h / 2 > POSITIONS || w - w / 2 > POSITIONS) {
            throw new IllegalArgumentException("grid " + f + "x" + h + "x" + w + " exceeds QwenEmbedRope's 4096 positions");
        }
        int[][] out = new int[f * h * w][];
        for (int t = 0; t < out.length; t++) {
            out[t] = new int[] {t / (h * w), (t / w) % h - (h - h / 2), t % w - (w - w / 2)};
        }
        return out;
    }

    /** Positions of the text tokens, which follow the image's largest centred index. */
    public static int[][] textPositions(int[] grid, int textTokens) {
        int start = Math.max(grid[1] / 2, grid[2] / 2);
        if (start + textTokens > POSITIONS) {
            throw new IllegalArgumentException(textTokens + " text tokens after position " + start
                    + " exceed QwenEmbedRope's 4096 positions");
        }
        int[][] out = new int[textTokens][];
        for (int i = 0; i < textTokens; i++) {
            out[i] = new int[] {start + i, start + i, start + i};
        }
        return out;
    }

    /** Rotates x [positions.length, heads * 128] in place. */
    public static void apply(float[] x, int[][] positions, int dim) {
        if (dim % HEAD_DIM != 0 || (long) positions.length * dim != x.length) {
            throw new IllegalArgumentException("rope: " + x.length + " values are not " + positions.length
                    + " tokens of " + dim + " (heads of " + HEAD_DIM + ")");
        }
        int pairs = HEAD_DIM / 2;
        IntStream.range(0, positions.length).parallel().forEach(t -> {
            double[] cos = new double[pairs];
            double[] sin = new double[pairs];
            for (int axis = 0, p = 0; axis < 3; axis++) {
                for (int j = 0; j < AXES[axis] / 2; j++, p++) {
                    double angle = positions[t][axis] * Math.pow(10000, -(2.0 * j) / AXES[axis]);
                    cos[p] = Math.cos(angle);
                    sin[p] = Math.sin(angle);
                }
            }
            for (int base = t * dim; base < (t + 1) * dim; base += HEAD_DIM) {
                for (int j = 0; j < pairs; j++) {
                    double re = x[base + 2 * j];
                    double im = x[base + 2 * j + 1];
                    x[base + 2 * j] = (float) (re * cos[j] - im * sin[j]);
                    x[base + 2 * j + 1] = (float) (re * sin[j] + im * cos[j]);
                }
            }
        });
    }
}
