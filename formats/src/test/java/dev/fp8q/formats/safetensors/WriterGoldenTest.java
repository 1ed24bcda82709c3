package dev.fp8q.formats.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.testing.PythonReference;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Our writer's bytes against files written by the reference library (src/test/python/make_golden.py,
 * committed under resources/golden): same tensors and metadata, same bytes.
 */
class WriterGoldenTest {

    record T(String name, DType dtype, long... shape) {}

    static final Map<String, List<T>> TENSORS = new LinkedHashMap<>();
    static final Map<String, Map<String, String>> METADATA = new LinkedHashMap<>();

    static {
        TENSORS.put("mixed", List.of(new T("model.embed.weight", DType.BF16, 4, 3), new T("blocks.0.attn.q.weight", DType.F32, 2, 5),
                new T("blocks.0.attn.q.weight_scale", DType.F32), new T("norm", DType.F16, 7), new T("fp8", DType.F8_E4M3, 3, 3),
                new T("fp8b", DType.F8_E5M2, 5), new T("ids", DType.I64, 3), new T("mask", DType.BOOL, 2, 2),
                new T("empty", DType.BF16, 2, 0), new T("u", DType.U8, 9), new T("d", DType.F64, 1), new T("i32", DType.I32, 2),
                new T("i16", DType.I16, 3), new T("i8", DType.I8, 1)));
        METADATA.put("mixed", Map.of("format", "pt"));
        TENSORS.put("no_metadata", List.of(new T("a", DType.F32, 3), new T("b", DType.BF16, 1)));
        METADATA.put("no_metadata", null);
        TENSORS.put("empty_metadata", List.of(new T("a", DType.U8, 1)));
        METADATA.put("empty_metadata", Map.of());
        TENSORS.put("names_order", List.of(new T("\uffff", DType.U8, 1), new T("\uD800\uDC00", DType.U8, 1), new T("B", DType.U8, 1),
                new T("a", DType.U8, 2), new T("aa", DType.U8, 1), new T("é\n\"\\/\u0001", DType.U8, 1)));
        METADATA.put("names_order", Map.of("quote\"d", "line\nbreak \u0002 é"));
        TENSORS.put("no_tensors", List.of());
        METADATA.put("no_tensors", Map.of("only", "metadata"));
    }

    /** The generator's content: byte i of tensor k is (i*37 + k*11 + 5) & 0xFF (bools keep the low bit). */
    static byte[] content(int k, T t) {
        long n = 1;
        for (long d : t.shape) {
            n *= d;
        }
        byte[] b = new byte[(int) (n * t.dtype.byteSize())];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) ((i * 37L + k * 11L + 5) & 0xFF);
            if (t.dtype == DType.BOOL) {
                b[i] &= 1;
            }
        }
        return b;
    }

    static void write(Path target, String kase, boolean reverseWrites) throws Exception {
        List<T> ts = TENSORS.get(kase);
        List<TensorSpec> specs = ts.stream().map(t -> new TensorSpec(t.name, t.dtype, t.shape)).toList();
        try (SafetensorsWriter w = SafetensorsWriter.create(target, METADATA.get(kase), specs)) {
            List<Integer> order = new ArrayList<>();
            for (int k = 0; k < ts.size(); k++) {
                order.add(k);
            }
            if (reverseWrites) {
                Collections.reverse(order);
            }
            for (int k : order) {
                w.write(ts.get(k).name, MemorySegment.ofArray(content(k, ts.get(k))));
            }
            w.commit();
        }
    }

    static byte[] golden(String kase) throws IOException {
        try (InputStream in = WriterGoldenTest.class.getResourceAsStream("/golden/" + kase + ".safetensors")) {
            return in.readAllBytes();
        }
    }

    @Test
    void bytesEqualTheReferenceWriters(@TempDir Path dir) throws Exception {
        for (String kase : TENSORS.keySet()) {
            Path p = dir.resolve(kase + ".safetensors");
            write(p, kase, kase.length() % 2 == 0); // write order must not matter
            assertArrayEquals(golden(kase), Files.readAllBytes(p), kase);
        }
    }

    @Test
    void goldenFilesReadBackWithTheirContent(@TempDir Path dir) throws Exception {
        for (String kase : TENSORS.keySet()) {
            Path p = dir.resolve(kase + ".safetensors");
            Files.write(p, golden(kase));
            try (SafetensorsFile f = SafetensorsFile.open(p)) {
                List<T> ts = TENSORS.get(kase);
                assertEquals(ts.size(), f.tensors().size());
                assertEquals(METADATA.get(kase), f.metadata());
                for (int k = 0; k < ts.size(); k++) {
                    assertArrayEquals(content(k, ts.get(k)), f.data(ts.get(k).name).toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
                }
            }
        }
    }

    @Test
    void uncommittedWriteLeavesNothingBehind(@TempDir Path dir) throws Exception {
        Path p = dir.resolve("x.safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.create(p, null, List.of(new TensorSpec("a", DType.F32, new long[] {4})))) {
            w.write("a", MemorySegment.ofArray(new byte[8])); // half of it
            assertThrows(IOException.class, w::commit, "an incomplete tensor is not committed");
        }
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of(), s.toList());
        }
        assertFalse(Files.exists(p));
    }

    @Test
    void refusesDuplicateNamesAndMisalignedSubByteTensors(@TempDir Path dir) {
        Path p = dir.resolve("x.safetensors");
        assertThrows(FormatException.class, () -> SafetensorsWriter.create(p, null,
                List.of(new TensorSpec("a", DType.U8, new long[] {1}), new TensorSpec("a", DType.U8, new long[] {1}))));
        assertThrows(FormatException.class, () -> SafetensorsWriter.create(p, null, List.of(new TensorSpec("a", DType.F4, new long[] {3}))));
    }

    @Test
    void theReferenceLibraryReadsWhatWeWrite(@TempDir Path dir) throws Exception {
        PythonReference.require();
        Path p = dir.resolve("mixed.safetensors");
        write(p, "mixed", false);
        String out = PythonReference.run("""
                import sys, ml_dtypes, numpy as np
                from safetensors import safe_open, deserialize
                with safe_open(sys.argv[1], 'np') as f:  # the mmap reader: metadata and numpy views
                    print(f.metadata())
                    for k in sorted(f.keys()):
                        if not f.get_slice(k).get_dtype().startswith('F8'):
                            f.get_tensor(k)
                for k, t in deserialize(open(sys.argv[1], 'rb').read()):  # raw bytes of every dtype
                    print(k, t['dtype'], t['shape'], bytes(t['data']).hex())
                """, p.toString());
        assertTrue(out.startsWith("{'format': 'pt'}"), out);
        List<T> ts = TENSORS.get("mixed");
        for (int k = 0; k < ts.size(); k++) {
            T t = ts.get(k);
            String hex = java.util.HexFormat.of().formatHex(content(k, t));
            assertTrue(out.contains(t.name + " ") && out.contains(hex), t.name + " in:\n" + out);
        }
    }
}
