package dev.fp8q.verifier.weights;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import dev.fp8q.formats.codec.E8M0;
import dev.fp8q.formats.codec.ScaleSwizzle;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;

/**
 * MXFP8 scales as the runtimes read them (docs/INTEROP.md): E8M0 bytes, one per 32 values of a weight's row.
 * U8 (ModelOpt, compressed-tensors) lie in the natural [rows, in / 32] grid; F8_E8M0 (ComfyUI's float8_e8m0fnu)
 * in cuBLAS's swizzled layout, [roundup(rows, 128), roundup(in / 32, 4)], as comfy_kitchen writes them.
 */
final class MxScales {

    private MxScales() {}

    static ScaleGrid read(Checkpoint.Tensor weight, Checkpoint.Tensor scale) throws FormatException {
        long[] grid = ScaleGrid.mxGrid(weight.entry().shape());
        boolean swizzled = scale.entry().dtype() == DType.F8_E8M0;
        long[] want = swizzled ? ScaleSwizzle.paddedShape(grid[0], grid[1]) : grid;
        if (!Arrays.equals(scale.entry().shape(), want)) {
            throw new FormatException(Rule.TENSOR_INVALID_INFO, scale.shard().path(), scale.name(),
                    "MX scale shape " + Arrays.toString(scale.entry().shape()) + " is not " + Arrays.toString(want)
                            + (swizzled ? " (F8_E8M0: ComfyUI's swizzled layout)" : "") + " for weight "
                            + Arrays.toString(weight.entry().shape()));
        }
        byte[] stored = scale.data().toArray(ValueLayout.JAVA_BYTE);
        byte[] bytes = swizzled ? ScaleSwizzle.unswizzle(stored, (int) grid[0], (int) grid[1]) : stored;
        float[] values = new float[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            if ((bytes[i] & 0xFF) == E8M0.NAN) {
                throw new FormatException(Rule.TENSOR_INVALID_INFO, scale.shard().path(), scale.name(),
                        "E8M0 scale " + i + " is NaN (0xFF)");
            }
            values[i] = E8M0.decode(bytes[i]);
        }
        return ScaleGrid.mx(weight.entry().shape(), values);
    }
}
