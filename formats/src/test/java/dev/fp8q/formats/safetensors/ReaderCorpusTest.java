package dev.fp8q.formats.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import dev.fp8q.formats.testing.PythonReference;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every rule of FORMATS.md section 1, as files the test builds: each is accepted, or rejected under its
 * named rule. Where the reference Python library is installed, it must agree on every file, and on
 * random mutations of valid files.
 */
class ReaderCorpusTest {

    record Case(String name, byte[] bytes, Rule expected) {}

    static byte[] file(String header, byte[] data) {
        return file(header.getBytes(StandardCharsets.UTF_8), data);
    }

    static byte[] file(byte[] header, byte[] data) {
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        return b.putLong(header.length).put(header).put(data).array();
    }

    static byte[] raw(long n, String rest) {
        byte[] r = rest.getBytes(StandardCharsets.UTF_8);
        return ByteBuffer.allocate(8 + r.length).order(ByteOrder.LITTLE_ENDIAN).putLong(n).put(r).array();
    }

    static String t(String dtype, String shape, long b, long e) {
        return "{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":[" + b + "," + e + "]}";
    }

    static String u8(String field, String value) {
        return "{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"" + field + "\":" + value + "}}";
    }

    static byte[] zeros(int n) {
        return new byte[n];
    }

    static List<Case> corpus() {
        List<Case> c = new ArrayList<>();
        String one = "{\"a\":" + t("U8", "[1]", 0, 1) + "}";
        // accepted
        c.add(new Case("plain", file(one, zeros(1)), null));
        c.add(new Case("empty_header_object", file("{}", zeros(0)), null));
        c.add(new Case("whitespace_around_and_unpadded", file(" \n\t\r{\"a\":" + t("U8", "[1]", 0, 1) + "}  \n", zeros(1)), null));
        c.add(new Case("scalar", file("{\"a\":" + t("F32", "[]", 0, 4) + "}", zeros(4)), null));
        c.add(new Case("zero_sized_same_offset", file("{\"a\":" + t("U8", "[0]", 0, 0) + ",\"b\":" + t("BF16", "[2,0]", 0, 0) + "}", zeros(0)), null));
        c.add(new Case("unknown_field", file(u8("foo", "[1,{\"x\":null},\"s\",true,-1.5e3]"), zeros(1)), null));
        c.add(new Case("any_order_misaligned", file("{\"b\":" + t("F32", "[1]", 1, 5) + ",\"a\":" + t("U8", "[1]", 0, 1) + "}", zeros(5)), null));
        c.add(new Case("metadata_null", file("{\"__metadata__\":null,\"a\":" + t("U8", "[1]", 0, 1) + "}", zeros(1)), null));
        c.add(new Case("metadata_after_tensors", file("{\"a\":" + t("U8", "[1]", 0, 1) + ",\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}", zeros(1)), null));
        c.add(new Case("duplicate_name_identical", file("{\"a\":" + t("U8", "[1]", 0, 1) + ",\"a\":" + t("U8", "[1]", 0, 1) + "}", zeros(1)), null));
        c.add(new Case("tensor_as_array", file("{\"a\":[\"U8\",[1],[0,1]]}", zeros(1)), null));
        c.add(new Case("dtype_as_unit_map", file("{\"a\":{\"dtype\":{\"U8\":null},\"shape\":[1],\"data_offsets\":[0,1]}}", zeros(1)), null));
        c.add(new Case("f4_even", file("{\"a\":" + t("F4", "[4]", 0, 2) + "}", zeros(2)), null));
        c.add(new Case("f6_four", file("{\"a\":" + t("F6_E2M3", "[4]", 0, 3) + "}", zeros(3)), null));
        c.add(new Case("huge_dim_times_zero", file("{\"a\":" + t("U8", "[18446744073709551615,0]", 0, 0) + "}", zeros(0)), null));
        c.add(new Case("escaped_pair_and_unicode", file("{\"\\ud83d\\ude00\u00e9\\u0001\":" + t("U8", "[1]", 0, 1) + "}", zeros(1)), null));
        c.add(new Case("depth_127", file(u8("foo", "[".repeat(125) + "]".repeat(125)), zeros(1)), null));
        c.add(new Case("big_int_in_unknown_field", file(u8("foo", "123456789012345678901234567890"), zeros(1)), null));
        c.add(new Case("tiny_float_in_unknown_field", file(u8("foo", "1e-999"), zeros(1)), null));
        c.add(new Case("every_dtype", everyDtype(), null));
        // header length rules
        c.add(new Case("shorter_than_8", new byte[7], Rule.HEADER_TOO_SMALL));
        c.add(new Case("empty_file", new byte[0], Rule.HEADER_TOO_SMALL));
        c.add(new Case("n_over_limit", raw(100_000_001L, "{}"), Rule.HEADER_TOO_LARGE));
        c.add(new Case("n_u64_max", raw(-1L, ""), Rule.HEADER_TOO_LARGE));
        c.add(new Case("n_at_limit_past_eof", raw(100_000_000L, "{}"), Rule.INVALID_HEADER_LENGTH));
        c.add(new Case("n_past_eof", raw(10, "{}"), Rule.INVALID_HEADER_LENGTH));
        // encoding and JSON shape
        c.add(new Case("bad_utf8", file(concat("{\"".getBytes(), new byte[] {(byte) 0xFF}, ("\":" + t("U8", "[1]", 0, 1) + "}").getBytes()), zeros(1)), Rule.INVALID_HEADER_UTF8));
        c.add(new Case("utf8_encoded_surrogate", file(concat("{\"".getBytes(), new byte[] {(byte) 0xED, (byte) 0xA0, (byte) 0x80}, ("\":" + t("U8", "[1]", 0, 1) + "}").getBytes()), zeros(1)), Rule.INVALID_HEADER_UTF8));
        c.add(new Case("bom", file(concat(new byte[] {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF}, one.getBytes()), zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("empty_header", file("", zeros(0)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("top_array", file("[]", zeros(0)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("top_null", file("null", zeros(0)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("nul_padding", file(one + "\0\0", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("trailing_garbage", file(one + "x", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("two_documents", file("{}{}", zeros(0)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("trailing_comma", file("{\"a\":" + t("U8", "[1]", 0, 1) + ",}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("form_feed_whitespace", file("\f" + one, zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("control_char_in_name", file("{\"a\u0001\":" + t("U8", "[1]", 0, 1) + "}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("bad_escape", file("{\"a\\x\":" + t("U8", "[1]", 0, 1) + "}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("lone_surrogate_name", file("{\"\\ud800\":" + t("U8", "[1]", 0, 1) + "}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("lone_surrogate_ignored_field", file(u8("foo", "\"\\udc00\""), zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("depth_128", file(u8("foo", "[".repeat(126) + "]".repeat(126)), zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("number_out_of_range", file(u8("foo", "1e999"), zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("integer_out_of_double_range", file(u8("foo", "9".repeat(400)), zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("incomplete_literal", file(u8("foo", "tru"), zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("unknown_dtype", file("{\"a\":" + t("u8", "[1]", 0, 1) + "}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("dtype_null", file("{\"a\":{\"dtype\":null,\"shape\":[1],\"data_offsets\":[0,1]}}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("dtype_map_two_keys", file("{\"a\":{\"dtype\":{\"U8\":null,\"I8\":null},\"shape\":[1],\"data_offsets\":[0,1]}}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("dtype_map_value_not_null", file("{\"a\":{\"dtype\":{\"U8\":[]},\"shape\":[1],\"data_offsets\":[0,1]}}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("missing_shape", file("{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("duplicate_field", file("{\"a\":{\"dtype\":\"U8\",\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("duplicate_metadata", file("{\"__metadata__\":{\"x\":\"1\"},\"__metadata__\":{}}", zeros(0)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("metadata_int_value", file("{\"__metadata__\":{\"x\":1}}", zeros(0)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("metadata_null_value", file("{\"__metadata__\":{\"x\":null}}", zeros(0)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("metadata_list", file("{\"__metadata__\":[]}", zeros(0)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("tensor_is_string", file("{\"a\":\"x\"}", zeros(0)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("bad_duplicate_before_good", file("{\"a\":\"bad\",\"a\":" + t("U8", "[1]", 0, 1) + "}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("tensor_array_4", file("{\"a\":[\"U8\",[1],[0,1],5]}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("tensor_array_2", file("{\"a\":[\"U8\",[1]]}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("three_offsets", file("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,2]}}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("one_offset", file("{\"a\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0]}}", zeros(0)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("negative_dim", file("{\"a\":" + t("U8", "[-1]", 0, 1) + "}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("minus_zero_dim", file("{\"a\":" + t("U8", "[-0]", 0, 0) + "}", zeros(0)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("fractional_dim", file("{\"a\":" + t("U8", "[1.0]", 0, 1) + "}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("exponent_dim", file("{\"a\":" + t("U8", "[1e0]", 0, 1) + "}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("leading_zero_dim", file("{\"a\":" + t("U8", "[01]", 0, 1) + "}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("string_dim", file("{\"a\":" + t("U8", "[\"1\"]", 0, 1) + "}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("bool_dim", file("{\"a\":" + t("U8", "[true]", 0, 1) + "}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("shape_null", file("{\"a\":" + t("U8", "null", 0, 1) + "}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("dim_2_pow_64", file("{\"a\":" + t("U8", "[18446744073709551616]", 0, 1) + "}", zeros(1)), Rule.INVALID_HEADER_JSON));
        c.add(new Case("offset_2_pow_64", file("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,18446744073709551616]}}", zeros(1)), Rule.INVALID_HEADER_JSON));
        // offsets, sizes, coverage
        c.add(new Case("gap", file("{\"a\":" + t("U8", "[1]", 0, 1) + ",\"b\":" + t("U8", "[1]", 2, 3) + "}", zeros(3)), Rule.INVALID_OFFSET));
        c.add(new Case("overlap", file("{\"a\":" + t("U8", "[2]", 0, 2) + ",\"b\":" + t("U8", "[2]", 1, 3) + "}", zeros(3)), Rule.INVALID_OFFSET));
        c.add(new Case("same_bytes_two_names", file("{\"a\":" + t("U8", "[2]", 0, 2) + ",\"b\":" + t("U8", "[2]", 0, 2) + "}", zeros(2)), Rule.INVALID_OFFSET));
        c.add(new Case("duplicate_name_moves", file("{\"a\":" + t("U8", "[1]", 0, 1) + ",\"a\":" + t("U8", "[1]", 1, 2) + "}", zeros(2)), Rule.INVALID_OFFSET));
        c.add(new Case("not_starting_at_zero", file("{\"a\":" + t("U8", "[1]", 1, 2) + "}", zeros(2)), Rule.INVALID_OFFSET));
        c.add(new Case("end_before_begin", file("{\"a\":" + t("U8", "[0]", 0, 0) + ",\"b\":" + t("U8", "[1]", 0, 1) + ",\"c\":" + t("U8", "[0]", 1, 0) + "}", zeros(1)), Rule.INVALID_OFFSET));
        c.add(new Case("size_mismatch", file("{\"a\":" + t("U16", "[1]", 0, 1) + "}", zeros(1)), Rule.TENSOR_INVALID_INFO));
        c.add(new Case("size_mismatch_huge_end", file("{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,18446744073709551615]}}", zeros(1)), Rule.TENSOR_INVALID_INFO));
        c.add(new Case("numel_overflow", file("{\"a\":" + t("U8", "[18446744073709551615,2]", 0, 1) + "}", zeros(1)), Rule.VALIDATION_OVERFLOW));
        c.add(new Case("bytes_overflow", file("{\"a\":" + t("F32", "[4611686018427387904]", 0, 1) + "}", zeros(1)), Rule.VALIDATION_OVERFLOW));
        c.add(new Case("f4_odd", file("{\"a\":" + t("F4", "[3]", 0, 2) + "}", zeros(2)), Rule.MISALIGNED_SUBBYTE));
        c.add(new Case("f6_one", file("{\"a\":" + t("F6_E3M2", "[1]", 0, 1) + "}", zeros(1)), Rule.MISALIGNED_SUBBYTE));
        c.add(new Case("trailing_bytes", file(one, zeros(2)), Rule.INCOMPLETE_BUFFER));
        c.add(new Case("truncated", file("{\"a\":" + t("U8", "[2]", 0, 2) + "}", zeros(1)), Rule.INCOMPLETE_BUFFER));
        c.add(new Case("no_tensors_but_data", file("{}", zeros(8)), Rule.INCOMPLETE_BUFFER));
        return c;
    }

    static byte[] everyDtype() {
        StringBuilder h = new StringBuilder("{");
        long off = 0;
        for (dev.fp8q.formats.DType d : dev.fp8q.formats.DType.values()) {
            long bytes = 8L * d.bits() / 8; // 8 elements end on a byte boundary for every width
            h.append(h.length() > 1 ? "," : "").append('"').append(d).append("\":").append(t(d.name(), "[8]", off, off + bytes));
            off += bytes;
        }
        return file(h.append('}').toString(), zeros((int) off));
    }

    static byte[] concat(byte[]... parts) {
        ByteArrayOutputStream o = new ByteArrayOutputStream();
        for (byte[] p : parts) {
            o.writeBytes(p);
        }
        return o.toByteArray();
    }

    /** null when accepted, else the rule. */
    static Rule verdict(Path p) {
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertTrue(f.tensors().size() >= 0);
            return null;
        } catch (FormatException e) {
            assertEquals(p, e.file(), "the error names the file");
            assertTrue(e.getMessage().startsWith(p.toString()), e.getMessage());
            assertTrue(!e.getMessage().contains("\n"), "one line");
            return e.rule();
        }
    }

    @Test
    void everyCaseGetsItsVerdict(@TempDir Path dir) throws IOException {
        for (Case c : corpus()) {
            Path p = dir.resolve(c.name + ".safetensors");
            Files.write(p, c.bytes);
            assertEquals(c.expected, verdict(p), c.name);
        }
    }

    @Test
    void errorsNameTheTensor(@TempDir Path dir) throws IOException {
        Path p = dir.resolve("gap.safetensors");
        Files.write(p, file("{\"a\":" + t("U8", "[1]", 0, 1) + ",\"weird.name\":" + t("U8", "[1]", 2, 3) + "}", zeros(3)));
        try {
            SafetensorsFile.open(p).close();
            fail("accepted");
        } catch (FormatException e) {
            assertEquals("weird.name", e.tensor());
            assertTrue(e.getMessage().contains("'weird.name'"), e.getMessage());
        }
    }

    @Test
    void acceptedFilesExposeTheirContents(@TempDir Path dir) throws Exception {
        Path p = dir.resolve("m.safetensors");
        Files.write(p, file("{\"b\":" + t("F32", "[1]", 1, 5) + ",\"__metadata__\":{\"k\":\"v\"},\"a\":" + t("U8", "[1]", 0, 1) + "}",
                new byte[] {7, 0, 0, (byte) 0x80, 0x3F}));
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertEquals(List.of("a", "b"), f.tensors().stream().map(TensorEntry::name).toList());
            assertEquals(Map.of("k", "v"), f.metadata());
            assertEquals(7, f.data("a").get(java.lang.foreign.ValueLayout.JAVA_BYTE, 0));
            assertEquals(1f, f.data("b").get(dev.fp8q.formats.codec.Elements.FLOAT, 0)); // unaligned read
        }
        Files.write(p, file("{}", zeros(0)));
        try (SafetensorsFile f = SafetensorsFile.open(p)) {
            assertNull(f.metadata());
        }
    }

    private static final String REFERENCE_VERDICTS = """
            import sys
            from safetensors import safe_open
            for p in sys.argv[1:]:
                try:
                    with safe_open(p, 'np') as f:
                        f.keys()
                    print('OK')
                except Exception as e:
                    print('ERR')
            """;

    private static Map<String, Boolean> referenceAccepts(List<Path> files) {
        String[] args = files.stream().map(Path::toString).toArray(String[]::new);
        String[] lines = PythonReference.run(REFERENCE_VERDICTS, args).strip().split("\n");
        assertEquals(files.size(), lines.length);
        Map<String, Boolean> out = new LinkedHashMap<>();
        for (int i = 0; i < lines.length; i++) {
            out.put(files.get(i).getFileName().toString(), lines[i].equals("OK"));
        }
        return out;
    }

    @Test
    void theReferenceLibraryAgreesOnEveryCase(@TempDir Path dir) throws IOException {
        PythonReference.require();
        List<Path> files = new ArrayList<>();
        for (Case c : corpus()) {
            Path p = dir.resolve(c.name + ".safetensors");
            Files.write(p, c.bytes);
            files.add(p);
        }
        Map<String, Boolean> ref = referenceAccepts(files);
        for (Path p : files) {
            assertEquals(ref.get(p.getFileName().toString()), verdict(p) == null, p.getFileName().toString());
        }
    }

    @Test
    void theReferenceLibraryAgreesOnRandomMutations(@TempDir Path dir) throws IOException {
        PythonReference.require();
        byte[] base = file("{\"__metadata__\":{\"format\":\"pt\"},\"w\":" + t("BF16", "[2,3]", 0, 12) + ",\"b\":"
                + t("F32", "[3]", 12, 24) + ",\"s\":" + t("F8_E4M3", "[]", 24, 25) + "}", zeros(25));
        SplittableRandom rnd = new SplittableRandom(42);
        List<Path> files = new ArrayList<>();
        String alphabet = "{}[]\",:0123456789-.eE \\u_abFUI8";
        for (int i = 0; i < 600; i++) {
            byte[] m = base.clone();
            int kind = rnd.nextInt(4);
            if (kind == 0) { // replace a header byte with a JSON-significant character
                m[8 + rnd.nextInt(m.length - 8 - 25)] = (byte) alphabet.charAt(rnd.nextInt(alphabet.length()));
            } else if (kind == 1) { // truncate or extend
                m = java.util.Arrays.copyOf(m, Math.max(0, m.length + rnd.nextInt(-30, 5)));
            } else if (kind == 2) { // corrupt the length prefix
                ByteBuffer.wrap(m).order(ByteOrder.LITTLE_ENDIAN).putLong(0, rnd.nextLong(0, m.length + 10));
            } else { // random byte anywhere in the header, any value
                m[8 + rnd.nextInt(m.length - 8 - 25)] = (byte) rnd.nextInt(256);
            }
            Path p = dir.resolve("m" + i + ".safetensors");
            Files.write(p, m);
            files.add(p);
        }
        Map<String, Boolean> ref = referenceAccepts(files);
        int accepted = 0;
        for (Path p : files) {
            boolean ours = verdict(p) == null;
            assertEquals(ref.get(p.getFileName().toString()), ours, () -> p.getFileName() + ": " + new String(readQuietly(p), StandardCharsets.ISO_8859_1));
            accepted += ours ? 1 : 0;
        }
        assertTrue(accepted > 0 && accepted < files.size(), "the mutations include both verdicts: " + accepted);
    }

    private static byte[] readQuietly(Path p) {
        try {
            return Files.readAllBytes(p);
        } catch (IOException e) {
            return new byte[0];
        }
    }
}
