package dev.fp8q.verifier.math;

import java.util.stream.IntStream;

/**
 * Wan's 3D rotary embedding (FORMATS.md section 3): per head, values (2j, 2j+1) form complex pair j; the
 * pairs are split into frame, height and width parts ([22, 21, 21] for head_dim 128) and pair j of a part
 * of width D is rotated by pos * 10000^(-2j / D), in float64 as the reference code does.
 */
public final class Rope {

    private final int headDim;
    private final int[] partStart;
    private final int[] partWidth;

    public Rope(int headDim) {
        if (headDim % 2 != 0 || headDim < 6) {
            throw new IllegalArgumentException("head_dim must be even and at least 6, not " + headDim);
        }
        this.headDim = headDim;
        int sixth = headDim / 6;
        int d0 = headDim - 4 * sixth;
        this.partWidth = new int[] {d0, 2 * sixth, 2 * sixth};
        this.partStart = new int[] {0, d0 / 2, d0 / 2 + sixth};
    }

    /** Pairs per part: [22, 21, 21] for head_dim 128. */
    public int[] pairsPerPart() {
        return new int[] {partWidth[0] / 2, partWidth[1] / 2, partWidth[2] / 2};
    }

    /** Rotates x [F*H*W, heads * headDim] in place; token t sits at (t / (H W), (t / W) % H, t % W). */
    public void apply(float[] x, int frames, int height, int width, int dim) {
        int tokens = frames * height * width;
        if (dim % headDim != 0 || (long) tokens * dim != x.length) {
            throw new IllegalArgumentException("rope: " + x.length + " values are not " + tokens + " tokens of " + dim);
        }
        int pairs = headDim / 2;
        IntStream.range(0, tokens).parallel().forEach(t -> {
            int[] pos = {t / (height * width), (t / width) % height, t % width};
            double[] cos = new double[pairs];
            double[] sin = new double[pairs];
            for (int part = 0; part < 3; part++) {
                for (int j = 0; j < partWidth[part] / 2; j++) {
                    double angle = pos[part] * Math.pow(10000, -(2.0 * j) / partWidth[part]);
                    cos[partStart[part] + j] = Math.cos(angle);
                    sin[partStart[part] + j] = Math.sin(angle);
                }
            }
            for (int h = 0, base = t * dim; h < dim / headDim; h++, base += headDim) {
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
