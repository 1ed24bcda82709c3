package dev.fp8q.verifier.check;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Bounds by selector: {@code scope[.run][.kind]}, scope one of weight, linear, block_output, block_update;
 * run weight_only or w8a8; kind a layer kind (attention, ffn, ...). A check takes the fields of every
 * selector that matches it, the more specific overriding the more general.
 */
public final class Bounds {

    public static final Set<String> SCOPES = Set.of("weight", "linear", "block_output", "block_update", "model_output", "drift");
    public static final Set<String> RUNS = Set.of("weight_only", "w8a8");

    private static final ObjectMapper JSON = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES);

    private final Map<String, Bound> bySelector;

    private Bounds(Map<String, Bound> bySelector) {
        this.bySelector = bySelector;
    }

    /**
     * Defaults a correct per-tensor conversion passes with margin (docs/VERIFY.md gives the figures they were
     * set from) and that a wrong scale or damaged bytes fail.
     */
    public static Bounds defaults() {
        Map<String, Bound> m = new LinkedHashMap<>();
        m.put("weight", new Bound(25.0, null, null, null, 0L));
        m.put("linear.weight_only", new Bound(25.0, null, null, null, null));
        m.put("linear.w8a8", new Bound(22.0, null, null, null, null));
        m.put("block_output.weight_only", new Bound(20.0, null, null, null, null));
        m.put("block_output.w8a8", new Bound(17.0, null, null, null, null));
        m.put("block_update.weight_only", new Bound(20.0, null, null, null, null));
        m.put("block_update.w8a8", new Bound(17.0, null, null, null, null));
        m.put("model_output.weight_only", new Bound(15.0, null, null, null, null));
        m.put("model_output.w8a8", new Bound(12.0, null, null, null, null));
        return new Bounds(m);
    }

    /**
     * These bounds with one selector's fields overridden, for the selectors under it too: a bound set for
     * "linear" also replaces the defaults of "linear.w8a8" (later, more specific settings refine it).
     */
    public Bounds with(String selector, Bound b) {
        validate(selector);
        Map<String, Bound> m = new LinkedHashMap<>(bySelector);
        for (Map.Entry<String, Bound> e : m.entrySet()) {
            if (e.getKey().startsWith(selector + ".")) {
                e.setValue(e.getValue().overriddenBy(b));
            }
        }
        m.merge(selector, b, Bound::overriddenBy);
        String[] parts = selector.split("\\.");
        if (parts.length == 2 && !RUNS.contains(parts[1])) {
            // scope.kind must beat the scope.run defaults, which the lookup ranks as more specific
            for (String run : RUNS) {
                m.put(parts[0] + "." + run + "." + parts[1], of(parts[0], run, parts[1]).overriddenBy(b));
            }
        }
        return new Bounds(m);
    }

    /** A JSON file {"selector": {"min_sqnr_db": 30, ...}, ...} applied over these bounds. */
    public Bounds withFile(Path file) throws BoundsException {
        Map<String, Bound> read;
        try {
            read = JSON.readValue(Files.readString(file), new TypeReference<LinkedHashMap<String, Bound>>() {});
        } catch (JacksonException e) {
            throw new BoundsException(file + ": not a bounds file: " + e.getOriginalMessage());
        } catch (IOException e) {
            throw new BoundsException(file + ": " + e);
        }
        if (read == null) {
            throw new BoundsException(file + ": not a bounds file: null");
        }
        Bounds out = this;
        for (Map.Entry<String, Bound> e : read.entrySet()) {
            if (e.getValue() == null) {
                throw new BoundsException(file + ": selector " + e.getKey() + " has no bound");
            }
            try {
                out = out.with(e.getKey(), e.getValue());
            } catch (IllegalArgumentException ex) {
                throw new BoundsException(file + ": " + ex.getMessage());
            }
        }
        return out;
    }

    /** The bound of one check; run and kind may be null. */
    public Bound of(String scope, String run, String kind) {
        Bound b = Bound.NONE;
        for (String sel : specificityOrder(scope, run, kind)) {
            Bound x = bySelector.get(sel);
            if (x != null) {
                b = b.overriddenBy(x);
            }
        }
        return b;
    }

    private static List<String> specificityOrder(String scope, String run, String kind) {
        java.util.ArrayList<String> out = new java.util.ArrayList<>();
        out.add(scope);
        if (kind != null) {
            out.add(scope + "." + kind);
        }
        if (run != null) {
            out.add(scope + "." + run);
            if (kind != null) {
                out.add(scope + "." + run + "." + kind);
            }
        }
        return out;
    }

    public Map<String, Bound> asMap() {
        return Map.copyOf(bySelector);
    }

    static void validate(String selector) {
        String[] parts = selector.split("\\.", -1);
        if (parts.length > 3 || !SCOPES.contains(parts[0])
                || (parts.length == 3 && !RUNS.contains(parts[1]))
                || java.util.Arrays.stream(parts).anyMatch(String::isEmpty)) {
            throw new IllegalArgumentException("bad bound selector '" + selector + "': use scope[.run][.kind], scope one of "
                    + String.join(", ", new java.util.TreeSet<>(SCOPES)) + ", run one of weight_only, w8a8");
        }
    }

    /** A bounds file or flag that cannot be used. */
    public static final class BoundsException extends Exception {
        public BoundsException(String message) {
            super(message);
        }
    }
}
