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

    /** A captured activation: tensor name of the file, its last dimension the model's dim; needs: what the file must hold. */
    public static float[] rows(Checkpoint c, String name, int dim, String needs) throws FormatException {
        Checkpoint.Tensor t = c.tensor(name).orElseThrow(() -> new FormatException(Rule.TENSOR_NOT_FOUND, c.root(), name,
                "captured activations need " + needs));
        long[] shape = t.entry().shape();
        if (shape.length == 0 || shape[shape.length - 1] != dim) {
            throw new FormatException(Rule.TENSOR_INVALID_INFO, c.root(), name, "last dimension must be the model's dim " + dim);
        }
        return of(t);
    }

    /** A captured token grid: 3 positive I32 or I64 values (frames, height, width). */
    public static int[] grid(Checkpoint.Tensor t) throws FormatException {
        if (t.entry().numel() != 3) {
            throw new FormatException(Rule.TENSOR_INVALID_INFO, t.shard().path(), t.name(), "grid must hold 3 values");
        }
        MemorySegment seg = t.data();
        int[] out = new int[3];
        for (int i = 0; i < 3; i++) {
            long v = switch (t.entry().dtype()) {
                case I32 -> seg.getAtIndex(Elements.INT, i);
                case I64 -> seg.getAtIndex(ValueLayout.JAVA_LONG_UNALIGNED, i);
                default -> throw new FormatException(Rule.TENSOR_INVALID_INFO, t.shard().path(), t.name(),
                        "grid must be I32 or I64");
            };
            if (v < 1 || v > Integer.MAX_VALUE) {
                throw new FormatException(Rule.TENSOR_INVALID_INFO, t.shard().path(), t.name(), "grid sizes must be >= 1");
            }
            out[i] = (int) v;
        }
        return out;
    }
}
