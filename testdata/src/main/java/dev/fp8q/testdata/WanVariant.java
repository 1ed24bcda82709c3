package dev.fp8q.testdata;

/** The Wan 2.2 DiT variants with their published dimensions (FORMATS.md section 3). */
public enum WanVariant {
    T2V_A14B("t2v-a14b", 5120, 13824, 40, 16, 16, true),
    I2V_A14B("i2v-a14b", 5120, 13824, 40, 36, 16, true),
    TI2V_5B("ti2v-5b", 3072, 14336, 30, 48, 48, false),
    S2V_14B("s2v-14b", 5120, 13824, 40, 16, 16, false),
    ANIMATE_14B("animate-14b", 5120, 13824, 40, 36, 16, false);

    public final String id;
    public final int dim;
    public final int ffn;
    public final int layers;
    public final int inDim;
    public final int outDim;
    /** Released as two experts (high_noise_model/, low_noise_model/). */
    public final boolean twoExperts;

    WanVariant(String id, int dim, int ffn, int layers, int inDim, int outDim, boolean twoExperts) {
        this.id = id;
        this.dim = dim;
        this.ffn = ffn;
        this.layers = layers;
        this.inDim = inDim;
        this.outDim = outDim;
        this.twoExperts = twoExperts;
    }

    public static WanVariant parse(String s) {
        for (WanVariant v : values()) {
            if (v.id.equalsIgnoreCase(s) || v.name().equalsIgnoreCase(s)) {
                return v;
            }
        }
        throw new IllegalArgumentException("unknown Wan variant '" + s + "' (one of t2v-a14b, i2v-a14b, ti2v-5b, s2v-14b, animate-14b)");
    }
}
