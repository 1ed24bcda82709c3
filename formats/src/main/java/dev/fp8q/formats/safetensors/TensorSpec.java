package dev.fp8q.formats.safetensors;

import dev.fp8q.formats.DType;

/** A tensor to be written: name, dtype and shape; its place in the file is decided by the writer. */
public record TensorSpec(String name, DType dtype, long[] shape) {

    public TensorSpec {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public static TensorSpec of(TensorEntry e) {
        return new TensorSpec(e.name(), e.dtype(), e.shape());
    }
}
