package dev.fp8q.testdata;

/**
 * The dimensions a synthetic checkpoint is built with: a variant's full ones, or shrunk ones that keep
 * the head size (128) and every name, so small files exercise the same code paths.
 */
public record WanDims(int dim, int ffn, int layers, int inDim, int outDim, int textDim, int freqDim) {

    public static final int HEAD_DIM = 128;

    public int heads() {
        return dim / HEAD_DIM;
    }

    public static WanDims full(WanVariant v) {
        return new WanDims(v.dim, v.ffn, v.layers, v.inDim, v.outDim, 4096, 256);
    }

    /** The embedded default's size: dim 128 (one head), ffn 256, 2 blocks, text_dim 128. */
    public static WanDims tiny(WanVariant v) {
        return new WanDims(128, 256, 2, v.inDim, v.outDim, 128, 256);
    }

    public WanDims withLayers(int n) {
        return new WanDims(dim, ffn, n, inDim, outDim, textDim, freqDim);
    }

    public WanDims withDim(int d, int f) {
        if (d % HEAD_DIM != 0) {
            throw new IllegalArgumentException("dim must be a multiple of the head size " + HEAD_DIM + ": " + d);
        }
        return new WanDims(d, f, layers, inDim, outDim, textDim, freqDim);
    }
}
