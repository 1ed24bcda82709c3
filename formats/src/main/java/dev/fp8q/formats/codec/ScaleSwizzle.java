package dev.fp8q.formats.codec;

/**
 * cuBLAS's block-scaling-factor layout (SWIZZLE_32_4_4), in which ComfyUI stores MXFP8 scales (comfy_kitchen's
 * to_blocked / from_blocked): the [rows, cols] grid is zero-padded to [roundup(rows, 128), roundup(cols, 4)] and
 * each 128 x 4 tile is stored as 32 rows of 16 bytes, row r % 32 holding the 4 scales of rows r, r + 32, r + 64,
 * r + 96. Stored with the padded grid's shape.
 */
public final class ScaleSwizzle {

    private ScaleSwizzle() {}

    /** The stored shape of a [rows, cols] scale grid. */
    public static long[] paddedShape(long rows, long cols) {
        return new long[] {(rows + 127) / 128 * 128, (cols + 3) / 4 * 4};
    }

    /** Where natural grid element (r, c) lies in the stored bytes. */
    public static long index(long r, long c, long cols) {
        long colTiles = (cols + 3) / 4;
        return (((r / 128) * colTiles + c / 4) * 32 + r % 32) * 16 + (r % 128) / 32 * 4 + c % 4;
    }

    /** The stored bytes of a natural [rows, cols] grid (row-major); padding is byte 0. */
    public static byte[] swizzle(byte[] natural, int rows, int cols) {
        long[] p = paddedShape(rows, cols);
        byte[] out = new byte[Math.toIntExact(p[0] * p[1])];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                out[(int) index(r, c, cols)] = natural[r * cols + c];
            }
        }
        return out;
    }

    /** The natural [rows, cols] grid of stored bytes. */
    public static byte[] unswizzle(byte[] stored, int rows, int cols) {
        byte[] out = new byte[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                out[r * cols + c] = stored[(int) index(r, c, cols)];
            }
        }
        return out;
    }
}
