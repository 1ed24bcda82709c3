package dev.fp8q.verifier.weights;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Elements;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.stream.IntStream;

/** A tensor's values as float32, decoded from the mapped bytes in parallel chunks. */
public final class TensorValues {

    private static final int CHUNK = 1 << 20;

    private TensorValues() {}

    public static float[] of(Checkpoint.Tensor t) throws FormatException {
        long n = t.entry().numel();
        if (n > Integer.MAX_VALUE - 16) {
            throw new FormatException(Rule.TENSOR_INVALID_INFO, t.shard().path(), t.name(),
                    n + " elements is more than one float array holds");
        }
        DType dtype = t.entry().dtype();
        switch (dtype) {
            case BF16, F16, F32, F64, F8_E4M3, F8_E5M2 -> { }
            default -> throw new FormatException(Rule.TENSOR_INVALID_INFO, t.shard().path(), t.name(),
                    "dtype " + dtype + " is not a floating type the verifier reads");
        }
        MemorySegment seg = t.data();
        float[] out = new float[(int) n];
        IntStream.range(0, (out.length + CHUNK - 1) / CHUNK).parallel().forEach(c -> {
            int from = c * CHUNK;
            int to = Math.min(out.length, from + CHUNK);
            decode(seg, dtype, out, from, to);
        });
        return out;
    }

    private static void decode(MemorySegment seg, DType dtype, float[] out, int from, int to) {
        switch (dtype) {
            case BF16 -> {
                for (int i = from; i < to; i++) {
                    out[i] = Elements.bf16ToFloat(seg.getAtIndex(Elements.SHORT, i));
                }
            }
            case F32 -> MemorySegment.copy(seg, Elements.FLOAT, (long) from * 4, out, from, to - from);
            case F8_E4M3 -> {
                for (int i = from; i < to; i++) {
                    out[i] = E4M3.decode(seg.get(ValueLayout.JAVA_BYTE, i));
                }
            }
            default -> {
                for (int i = from; i < to; i++) {
                    out[i] = Elements.get(seg, dtype, i);
                }
            }
        }
    }
}
