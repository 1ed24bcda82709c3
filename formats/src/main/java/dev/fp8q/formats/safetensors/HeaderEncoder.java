package dev.fp8q.formats.safetensors;

import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * Writes a header exactly as the reference writer does: compact JSON, {@code __metadata__} first, tensors
 * in the given order with fields dtype, shape, data_offsets, strings escaped as serde_json escapes them,
 * then ASCII spaces up to a multiple of 8 bytes.
 */
final class HeaderEncoder {

    private HeaderEncoder() {}

    static byte[] encode(Map<String, String> metadata, List<TensorEntry> ordered) {
        StringBuilder sb = new StringBuilder(64 + ordered.size() * 96);
        sb.append('{');
        boolean first = true;
        if (metadata != null) {
            string(sb, Header.METADATA_KEY).append(":{");
            boolean firstMeta = true;
            for (Map.Entry<String, String> e : metadata.entrySet()) {
                if (!firstMeta) {
                    sb.append(',');
                }
                firstMeta = false;
                string(sb, e.getKey()).append(':');
                string(sb, e.getValue());
            }
            sb.append('}');
            first = false;
        }
        for (TensorEntry t : ordered) {
            if (!first) {
                sb.append(',');
            }
            first = false;
            string(sb, t.name()).append(":{\"dtype\":\"").append(t.dtype().name()).append("\",\"shape\":[");
            long[] shape = t.shape();
            for (int i = 0; i < shape.length; i++) {
                if (i > 0) {
                    sb.append(',');
                }
                sb.append(Long.toUnsignedString(shape[i]));
            }
            sb.append("],\"data_offsets\":[").append(Long.toUnsignedString(t.begin())).append(',')
                    .append(Long.toUnsignedString(t.end())).append("]}");
        }
        sb.append('}');
        byte[] json = sb.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) & ~7;
        byte[] out = new byte[padded];
        System.arraycopy(json, 0, out, 0, json.length);
        for (int i = json.length; i < padded; i++) {
            out[i] = ' ';
        }
        return out;
    }

    private static final char[] HEX = "0123456789abcdef".toCharArray();

    private static StringBuilder string(StringBuilder sb, String s) {
        sb.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> sb.append("\\\"");
                case '\\' -> sb.append("\\\\");
                case '\b' -> sb.append("\\b");
                case '\f' -> sb.append("\\f");
                case '\n' -> sb.append("\\n");
                case '\r' -> sb.append("\\r");
                case '\t' -> sb.append("\\t");
                default -> {
                    if (c < 0x20) {
                        sb.append("\\u00").append(HEX[c >> 4]).append(HEX[c & 0xF]);
                    } else {
                        sb.append(c);
                    }
                }
            }
        }
        return sb.append('"');
    }
}
