package dev.fp8q.formats;

/** Names the FP8 layouts give to things beside the weights (FORMATS.md section 2), for writers and readers. */
public final class Fp8Names {

    /** ComfyUI mixed precision: shard metadata key of the quantized layers' JSON. */
    public static final String COMFY_METADATA = "_quantization_metadata";
    /** ComfyUI legacy "scaled fp8": the marker tensor; it holds no weight. */
    public static final String LEGACY_MARKER = "scaled_fp8";

    private Fp8Names() {}
}
