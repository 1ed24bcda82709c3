package dev.fp8q.formats.safetensors;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Parses a header's JSON into plain values with the reference reader's (serde_json's) rules, so that we
 * accept and reject the same headers: at most 127 nested containers, no lone surrogate escapes, no number
 * that overflows a double, nothing after the root value. Keys keep their order and duplicates, because the
 * reference treats duplicates differently by place (last wins for tensors, an error inside a tensor entry).
 */
final class StrictJson {

    /** serde_json refuses the 128th nested container. */
    static final int MAX_DEPTH = 127;

    sealed interface Value permits Obj, Arr, Str, Num, Bool, Null {}

    record Obj(List<Map.Entry<String, Value>> entries) implements Value {}

    record Arr(List<Value> items) implements Value {}

    record Str(String value) implements Value {}

    /** A number as written; {@code integral} when it has no fraction or exponent. */
    record Num(String text, boolean integral) implements Value {}

    record Bool(boolean value) implements Value {}

    record Null() implements Value {}

    /** Thrown with a short reason; the caller names the file. */
    static final class JsonError extends Exception {
        JsonError(String message) {
            super(message);
        }
    }

    private static final JsonFactory FACTORY = JsonFactory.builder()
            .disable(JsonFactory.Feature.CANONICALIZE_FIELD_NAMES)
            .disable(JsonFactory.Feature.INTERN_FIELD_NAMES)
            .streamReadConstraints(StreamReadConstraints.builder()
                    .maxNestingDepth(MAX_DEPTH + 16) // our own limit below decides
                    .maxStringLength(Integer.MAX_VALUE)
                    .maxNameLength(Integer.MAX_VALUE)
                    .maxNumberLength(Integer.MAX_VALUE)
                    .build())
            .build();

    private StrictJson() {}

    static Value parse(String text) throws JsonError {
        try (JsonParser p = FACTORY.createParser(text)) {
            JsonToken first = p.nextToken();
            if (first == null) {
                throw new JsonError("EOF while parsing a value");
            }
            Value root = read(p, first, 0);
            if (p.nextToken() != null) {
                throw new JsonError("trailing characters after the JSON value");
            }
            return root;
        } catch (JsonProcessingException e) {
            throw new JsonError(e.getOriginalMessage());
        } catch (IOException e) {
            throw new JsonError(e.getMessage());
        }
    }

    private static Value read(JsonParser p, JsonToken t, int depth) throws IOException, JsonError {
        switch (t) {
            case START_OBJECT -> {
                checkDepth(depth + 1);
                List<Map.Entry<String, Value>> entries = new ArrayList<>();
                for (JsonToken k = p.nextToken(); k != JsonToken.END_OBJECT; k = p.nextToken()) {
                    String name = checkSurrogates(p.currentName());
                    entries.add(Map.entry(name, read(p, p.nextToken(), depth + 1)));
                }
                return new Obj(entries);
            }
            case START_ARRAY -> {
                checkDepth(depth + 1);
                List<Value> items = new ArrayList<>();
                for (JsonToken v = p.nextToken(); v != JsonToken.END_ARRAY; v = p.nextToken()) {
                    items.add(read(p, v, depth + 1));
                }
                return new Arr(items);
            }
            case VALUE_STRING -> {
                return new Str(checkSurrogates(p.getText()));
            }
            case VALUE_NUMBER_INT, VALUE_NUMBER_FLOAT -> {
                String text = p.getText();
                if (Double.isInfinite(Double.parseDouble(text))) {
                    throw new JsonError("number out of range: " + abbreviate(text));
                }
                return new Num(text, t == JsonToken.VALUE_NUMBER_INT);
            }
            case VALUE_TRUE -> {
                return new Bool(true);
            }
            case VALUE_FALSE -> {
                return new Bool(false);
            }
            case VALUE_NULL -> {
                return new Null();
            }
            default -> throw new JsonError("unexpected token " + t);
        }
    }

    private static void checkDepth(int depth) throws JsonError {
        if (depth > MAX_DEPTH) {
            throw new JsonError("recursion limit exceeded (more than " + MAX_DEPTH + " nested containers)");
        }
    }

    /** Valid UTF-8 cannot hold surrogates, so any here came from a \\u escape: it must be a proper pair. */
    private static String checkSurrogates(String s) throws JsonError {
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < s.length() && Character.isLowSurrogate(s.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                throw new JsonError("lone surrogate in \\u escape");
            }
        }
        return s;
    }

    static String abbreviate(String s) {
        return s.length() <= 40 ? s : s.substring(0, 37) + "...";
    }
}
