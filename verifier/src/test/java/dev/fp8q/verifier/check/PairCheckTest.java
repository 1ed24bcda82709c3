package dev.fp8q.verifier.check;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.safetensors.SafetensorsWriter;
import dev.fp8q.formats.safetensors.TensorSpec;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What counts as one model for verify: names apart from every layout's scale tensors, shapes, preserved bytes. */
class PairCheckTest {

    private record T(String name, DType dtype, long[] shape, int fill) {}

    private static Path write(Path file, T... tensors) throws Exception {
        List<TensorSpec> specs = new ArrayList<>();
        Map<String, MemorySegment> data = new LinkedHashMap<>();
        try (Arena arena = Arena.ofConfined()) {
            for (T t : tensors) {
                specs.add(new TensorSpec(t.name(), t.dtype(), t.shape()));
                long n = 1;
                for (long d : t.shape()) {
                    n *= d;
                }
                MemorySegment s = arena.allocate(n * t.dtype().byteSize());
                s.fill((byte) t.fill());
                data.put(t.name(), s);
            }
            try (SafetensorsWriter w = SafetensorsWriter.create(file, Map.of(), specs)) {
                for (var e : data.entrySet()) {
                    w.write(e.getKey(), e.getValue());
                }
                w.commit();
            }
        }
        return file;
    }

    private static final T WEIGHT = new T("l.weight", DType.BF16, new long[] {16, 16}, 1);
    private static final T BIAS = new T("l.bias", DType.BF16, new long[] {16}, 2);
    private static final T FP8 = new T("l.weight", DType.F8_E4M3, new long[] {16, 16}, 3);

    private static PairCheck.Result check(Path src, Path dst) throws Exception {
        try (Checkpoint s = Checkpoint.open(src); Checkpoint d = Checkpoint.open(dst)) {
            return PairCheck.of(s, d, List.of());
        }
    }

    @Test
    void everyLayoutsScaleTensorsAreNotDifferences(@TempDir Path dir) throws Exception {
        Path src = write(dir.resolve("src.safetensors"), WEIGHT, BIAS);
        Path dst = write(dir.resolve("dst.safetensors"), FP8, BIAS, new T("l.weight_scale", DType.F32, new long[0], 0),
                new T("l.weight_scale_inv", DType.F32, new long[] {1, 1}, 0), new T("l.scale_weight", DType.F32, new long[0], 0),
                new T("l.input_scale", DType.F32, new long[0], 0), new T("l.comfy_quant", DType.U8, new long[] {8}, 0),
                new T("scaled_fp8", DType.F8_E4M3, new long[] {0}, 0));
        PairCheck.Result r = check(src, dst);
        assertTrue(r.oneModel(), r.differences().toString());
    }

    @Test
    void namesShapesAndPreservedBytesAreDifferences(@TempDir Path dir) throws Exception {
        Path src = write(dir.resolve("src.safetensors"), WEIGHT, BIAS, new T("n.weight", DType.BF16, new long[] {16}, 0),
                new T("m.weight", DType.BF16, new long[] {32, 16}, 0));
        Path dst = write(dir.resolve("dst.safetensors"), FP8, new T("l.bias", DType.BF16, new long[] {16}, 4),
                new T("o.weight", DType.BF16, new long[] {16}, 0), new T("m.weight", DType.F8_E4M3, new long[] {16, 16}, 0));
        PairCheck.Result r = check(src, dst);
        assertFalse(r.swapped());
        assertEquals(List.of("m.weight shape [32,16] in SRC, [16,16] in DST", "n.weight only in SRC", "o.weight only in DST",
                "l.bias values differ (preserved; first at element 0)"), r.differences());
        assertEquals("component 'c': SRC and DST are not one model: m.weight shape [32,16] in SRC, [16,16] in DST; "
                + "n.weight only in SRC; o.weight only in DST; 1 more", r.message("c"));
    }

    @Test
    void anFp8SourceBesideAHighPrecisionDestinationIsASwap(@TempDir Path dir) throws Exception {
        Path hp = write(dir.resolve("hp.safetensors"), WEIGHT, BIAS);
        Path fp8 = write(dir.resolve("fp8.safetensors"), FP8, BIAS, new T("l.weight_scale", DType.F32, new long[0], 0));
        PairCheck.Result r = check(fp8, hp);
        assertTrue(r.swapped());
        assertTrue(r.message("").startsWith("SRC and DST are swapped"), r.message(""));
        assertTrue(check(hp, fp8).oneModel());
    }
}
