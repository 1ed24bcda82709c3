package dev.fp8q.verifier.math;

import java.util.Objects;

/** A row-major float32 matrix view: rows x cols starting at offset, ld floats between row starts. */
public record Mat(float[] data, int offset, int rows, int cols, int ld) {

    public Mat {
        Objects.requireNonNull(data);
        if (rows < 0 || cols < 0 || offset < 0 || ld < cols) {
            throw new IllegalArgumentException("bad view " + rows + "x" + cols + " ld " + ld + " at " + offset);
        }
        if (rows > 0 && cols > 0 && (long) offset + (long) (rows - 1) * ld + cols > data.length) {
            throw new IllegalArgumentException("view " + rows + "x" + cols + " ld " + ld + " at " + offset
                    + " exceeds " + data.length + " floats");
        }
    }

    public static Mat of(float[] data, int rows, int cols) {
        return new Mat(data, 0, rows, cols, cols);
    }

    public static Mat zeros(int rows, int cols) {
        return of(new float[Math.multiplyExact(rows, cols)], rows, cols);
    }

    /** Columns [from, from + count) of every row (one attention head of a [tokens, dim] matrix). */
    public Mat columns(int from, int count) {
        Objects.checkFromIndexSize(from, count, cols);
        return new Mat(data, offset + from, rows, count, ld);
    }

    /** Rows [from, from + count). */
    public Mat rowRange(int from, int count) {
        Objects.checkFromIndexSize(from, count, rows);
        return new Mat(data, offset + from * ld, count, cols, ld);
    }

    public float get(int r, int c) {
        return data[offset + r * ld + c];
    }

    public void set(int r, int c, float v) {
        data[offset + r * ld + c] = v;
    }

    public int index(int r, int c) {
        return offset + r * ld + c;
    }
}
