package dev.fp8q.converter.model;

/**
 * What a checkpoint's tensor names say it is. For Wan: variant (t2v, i2v, ti2v, s2v, animate), naming
 * (original or diffusers), dim, blocks and FFN width; other families leave those fields empty.
 */
public record ModelInfo(String family, String variant, String naming, int dim, int blocks, int ffn, int inDim) {

    public static ModelInfo generic(String family) {
        return new ModelInfo(family, null, null, 0, 0, 0, 0);
    }

    public boolean isWan() {
        return family.equals("wan");
    }

    public String describe() {
        if (family.equals("qwen-image")) {
            return "qwen-image (dim " + dim + ", " + blocks + " blocks, mlp " + ffn + ")";
        }
        if (!isWan()) {
            return family;
        }
        return "wan " + variant + " (" + naming + " naming, dim " + dim + ", " + blocks + " blocks, ffn " + ffn
                + ", in_dim " + inDim + ")";
    }
}
