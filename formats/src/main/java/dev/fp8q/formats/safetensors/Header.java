package dev.fp8q.formats.safetensors;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A parsed and validated safetensors header: metadata (null when absent) and the tensors in data order.
 * Parsing follows the reference reader rule by rule (FORMATS.md section 1): everything is validated
 * before any tensor data is touched.
 */
public record Header(Map<String, String> metadata, List<TensorEntry> tensors, long headerLength) {

    /** The reference's limit on the header length N, in bytes. */
    public static final long MAX_HEADER_SIZE = 100_000_000L;

    public static final String METADATA_KEY = "__metadata__";

    public Header {
        metadata = metadata == null ? null : Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
        tensors = List.copyOf(tensors);
    }

    /** Offset of the data section in the file. */
    public long dataStart() {
        return 8 + headerLength;
    }

    /** Length of the data section the header describes. */
    public long dataLength() {
        return tensors.isEmpty() ? 0 : tensors.getLast().end();
    }

    /**
     * Parses header bytes (without the 8-byte length) of a file of {@code fileSize} bytes and validates
     * offsets and sizes against it. The file is named by the caller through {@link FormatException#withFile}.
     */
    public static Header parse(byte[] headerBytes, long fileSize) throws FormatException {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(headerBytes)).toString();
        } catch (CharacterCodingException e) {
            throw fail(Rule.INVALID_HEADER_UTF8, null, e.toString());
        }
        StrictJson.Value root;
        try {
            root = StrictJson.parse(text);
        } catch (StrictJson.JsonError e) {
            throw fail(Rule.INVALID_HEADER_JSON, null, e.getMessage());
        }
        if (!(root instanceof StrictJson.Obj obj)) {
            throw fail(Rule.INVALID_HEADER_JSON, null, "the header is not a JSON object");
        }
        Map<String, String> metadata = null;
        boolean sawMetadata = false;
        Map<String, TensorEntry> byName = new LinkedHashMap<>();
        for (Map.Entry<String, StrictJson.Value> e : obj.entries()) {
            if (e.getKey().equals(METADATA_KEY)) {
                if (sawMetadata) {
                    throw fail(Rule.INVALID_HEADER_JSON, null, "duplicate field " + METADATA_KEY);
                }
                sawMetadata = true;
                metadata = metadata(e.getValue());
            } else {
                byName.put(e.getKey(), tensor(e.getKey(), e.getValue())); // the reference keeps the last
            }
        }
        List<TensorEntry> sorted = new ArrayList<>(byName.values());
        sorted.sort((a, b) -> a.begin() != b.begin() ? Long.compareUnsigned(a.begin(), b.begin())
                : Long.compareUnsigned(a.end(), b.end()));
        long dataEnd = validate(sorted);
        long dataLength = fileSize - 8 - headerBytes.length;
        if (dataEnd != dataLength) {
            throw fail(Rule.INCOMPLETE_BUFFER, null, "tensors cover " + Long.toUnsignedString(dataEnd)
                    + " bytes, the data section holds " + dataLength);
        }
        return new Header(metadata, sorted, headerBytes.length);
    }

    private static long validate(List<TensorEntry> sorted) throws FormatException {
        long start = 0;
        for (TensorEntry t : sorted) {
            if (t.begin() != start || Long.compareUnsigned(t.end(), t.begin()) < 0) {
                throw fail(Rule.INVALID_OFFSET, t.name(), "data_offsets [" + Long.toUnsignedString(t.begin())
                        + ", " + Long.toUnsignedString(t.end()) + "], expected to begin at "
                        + Long.toUnsignedString(start) + " (gap, overlap or end before begin)");
            }
            start = t.end();
            long numel = 1;
            for (long d : t.shape()) {
                numel = multiplyExactUnsigned(numel, d, t.name());
            }
            long bits = multiplyExactUnsigned(numel, t.dtype().bits(), t.name());
            if (bits % 8 != 0) {
                throw fail(Rule.MISALIGNED_SUBBYTE, t.name(), t.dtype() + " " + t.shapeString());
            }
            if (t.end() - t.begin() != bits / 8) {
                throw fail(Rule.TENSOR_INVALID_INFO, t.name(), t.dtype() + " " + t.shapeString() + " needs "
                        + Long.toUnsignedString(bits / 8) + " bytes, offsets give "
                        + Long.toUnsignedString(t.end() - t.begin()));
            }
        }
        return start;
    }

    private static long multiplyExactUnsigned(long a, long b, String tensor) throws FormatException {
        if (Math.unsignedMultiplyHigh(a, b) != 0) {
            throw fail(Rule.VALIDATION_OVERFLOW, tensor, "shape times element size exceeds 64 bits");
        }
        return a * b;
    }

    private static Map<String, String> metadata(StrictJson.Value v) throws FormatException {
        if (v instanceof StrictJson.Null) {
            return null;
        }
        if (!(v instanceof StrictJson.Obj obj)) {
            throw fail(Rule.INVALID_HEADER_JSON, null, METADATA_KEY + " is not a map of strings");
        }
        Map<String, String> m = new LinkedHashMap<>();
        for (Map.Entry<String, StrictJson.Value> e : obj.entries()) {
            if (!(e.getValue() instanceof StrictJson.Str s)) {
                throw fail(Rule.INVALID_HEADER_JSON, null, METADATA_KEY + " value of '" + e.getKey()
                        + "' is not a string");
            }
            m.put(e.getKey(), s.value());
        }
        return m;
    }

    /** A tensor entry in either form serde accepts: an object with named fields, or a 3-element array. */
    private static TensorEntry tensor(String name, StrictJson.Value v) throws FormatException {
        StrictJson.Value dtype = null;
        StrictJson.Value shape = null;
        StrictJson.Value offsets = null;
        if (v instanceof StrictJson.Obj obj) {
            for (Map.Entry<String, StrictJson.Value> f : obj.entries()) {
                switch (f.getKey()) {
                    case "dtype" -> dtype = once(dtype, f, name);
                    case "shape" -> shape = once(shape, f, name);
                    case "data_offsets" -> offsets = once(offsets, f, name);
                    default -> { } // unknown fields are ignored, as by the reference
                }
            }
            for (var field : new Object[][] {{"dtype", dtype}, {"shape", shape}, {"data_offsets", offsets}}) {
                if (field[1] == null) {
                    throw fail(Rule.INVALID_HEADER_JSON, name, "missing field " + field[0]);
                }
            }
        } else if (v instanceof StrictJson.Arr arr && arr.items().size() == 3) {
            dtype = arr.items().get(0);
            shape = arr.items().get(1);
            offsets = arr.items().get(2);
        } else {
            throw fail(Rule.INVALID_HEADER_JSON, name, "entry is not a tensor description");
        }
        DType dt = dtype(dtype, name);
        if (!(shape instanceof StrictJson.Arr dims)) {
            throw fail(Rule.INVALID_HEADER_JSON, name, "shape is not an array");
        }
        long[] sh = new long[dims.items().size()];
        for (int i = 0; i < sh.length; i++) {
            sh[i] = usize(dims.items().get(i), name, "shape");
        }
        if (!(offsets instanceof StrictJson.Arr off) || off.items().size() != 2) {
            throw fail(Rule.INVALID_HEADER_JSON, name, "data_offsets is not an array of 2 integers");
        }
        long begin = usize(off.items().get(0), name, "data_offsets");
        long end = usize(off.items().get(1), name, "data_offsets");
        return new TensorEntry(name, dt, sh, begin, end);
    }

    private static StrictJson.Value once(StrictJson.Value seen, Map.Entry<String, StrictJson.Value> f, String name)
            throws FormatException {
        if (seen != null) {
            throw fail(Rule.INVALID_HEADER_JSON, name, "duplicate field " + f.getKey());
        }
        return f.getValue();
    }

    /** A dtype as a string, or serde's other spelling of a unit variant: a one-key map to null. */
    private static DType dtype(StrictJson.Value v, String name) throws FormatException {
        String s = null;
        if (v instanceof StrictJson.Str str) {
            s = str.value();
        } else if (v instanceof StrictJson.Obj o && o.entries().size() == 1
                && o.entries().getFirst().getValue() instanceof StrictJson.Null) {
            s = o.entries().getFirst().getKey();
        }
        if (s == null) {
            throw fail(Rule.INVALID_HEADER_JSON, name, "dtype is not a string");
        }
        String given = s;
        return DType.parse(s).orElseThrow(() -> fail(Rule.INVALID_HEADER_JSON, name,
                "unknown dtype '" + StrictJson.abbreviate(given) + "'"));
    }

    private static final BigInteger MAX_U64 = BigInteger.ONE.shiftLeft(64).subtract(BigInteger.ONE);

    /** A non-negative integer written without fraction, exponent or sign that fits 64 bits unsigned. */
    private static long usize(StrictJson.Value v, String name, String field) throws FormatException {
        if (v instanceof StrictJson.Num n && n.integral() && !n.text().startsWith("-")) {
            BigInteger b = new BigInteger(n.text());
            if (b.compareTo(MAX_U64) <= 0) {
                return b.longValue();
            }
        }
        throw fail(Rule.INVALID_HEADER_JSON, name, field + " holds " + describe(v)
                + ", expected an unsigned 64-bit integer");
    }

    private static String describe(StrictJson.Value v) {
        return switch (v) {
            case StrictJson.Num n -> StrictJson.abbreviate(n.text());
            case StrictJson.Str s -> "a string";
            case StrictJson.Obj o -> "an object";
            case StrictJson.Arr a -> "an array";
            case StrictJson.Bool b -> "a boolean";
            case StrictJson.Null n -> "null";
        };
    }

    private static FormatException fail(Rule rule, String tensor, String detail) {
        return new FormatException(rule, null, tensor, detail);
    }
}
