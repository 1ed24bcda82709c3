package dev.fp8q.formats.safetensors;

import dev.fp8q.formats.DType;
import java.util.Arrays;
import java.util.StringJoiner;

/**
 * One tensor of a safetensors header. Dimensions and offsets are unsigned 64-bit values as in the
 * format; offsets are relative to the data section, end exclusive.
 */
public record TensorEntry(String name, DType dtype, long[] shape, long begin, long end) {

    public TensorEntry {
        shape = shape.clone();
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    public long dim(int i) {
        return shape[i];
    }

    public long byteSize() {
        return end - begin;
    }

    /** Element count; valid once the header has passed validation (the product fits 64 bits). */
    public long numel() {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        return n;
    }

    public String shapeString() {
        StringJoiner j = new StringJoiner(", ", "[", "]");
        for (long d : shape) {
            j.add(Long.toUnsignedString(d));
        }
        return j.toString();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorEntry t && name.equals(t.name) && dtype == t.dtype
                && Arrays.equals(shape, t.shape) && begin == t.begin && end == t.end;
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return name + " " + dtype + " " + shapeString() + " [" + Long.toUnsignedString(begin) + ", "
                + Long.toUnsignedString(end) + ")";
    }
}
