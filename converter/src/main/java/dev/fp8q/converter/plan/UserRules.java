package dev.fp8q.converter.plan;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.formats.lora.LoraSpec;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * The user's adjustments: --ignore REGEX (keep in high precision) and --quantize REGEX, from flags or a
 * rules file {@code {"ignore": [...], "quantize": [...]}}. Patterns are Java regexes searched in the name. A rules
 * file may carry a {@code "label"} (plan --budget-db writes one): the decisions its patterns make are named by it
 * instead of "user". A {@code "loras"} list names LoRAs to merge, as --lora does: "FILE[:STRENGTH]" strings or
 * {@code {"file": ..., "strength": ...}} objects, relative paths from the rules file's folder.
 */
public record UserRules(List<Pattern> ignore, List<Pattern> quantize, String label) {

    public static final UserRules NONE = new UserRules(List.of(), List.of());

    public UserRules {
        ignore = List.copyOf(ignore);
        quantize = List.copyOf(quantize);
    }

    public UserRules(List<Pattern> ignore, List<Pattern> quantize) {
        this(ignore, quantize, "user");
    }

    public static UserRules of(List<String> ignore, List<String> quantize) {
        return new UserRules(compile(ignore, "--ignore"), compile(quantize, "--quantize"));
    }

    private static List<Pattern> compile(List<String> regexes, String what) {
        List<Pattern> out = new ArrayList<>();
        for (String r : regexes) {
            try {
                out.add(Pattern.compile(r));
            } catch (PatternSyntaxException e) {
                throw new PlanException(what + " '" + r + "' is not a valid regular expression: " + e.getDescription());
            }
        }
        return out;
    }

    /** Reads a rules file and adds the flags' patterns to it. */
    public static UserRules read(Path file, List<String> ignore, List<String> quantize) throws IOException {
        JsonNode root = root(file);
        List<String> ig = new ArrayList<>(strings(file, root, "ignore"));
        List<String> qu = new ArrayList<>(strings(file, root, "quantize"));
        root.fieldNames().forEachRemaining(f -> {
            if (!f.equals("ignore") && !f.equals("quantize") && !f.equals("label") && !f.equals("loras")) {
                throw new PlanException(file + ": unknown key '" + f + "' in rules file (ignore, quantize, label, loras)");
            }
        });
        JsonNode label = root.get("label");
        if (label != null && (!label.isTextual() || label.asText().isBlank())) {
            throw new PlanException(file + ": 'label' must be a non-empty string");
        }
        ig.addAll(ignore);
        qu.addAll(quantize);
        UserRules rules = of(ig, qu);
        return label == null ? rules : new UserRules(rules.ignore(), rules.quantize(), label.asText());
    }

    /** The rules file's "loras", in order (empty when it has none). */
    public static List<LoraSpec> loras(Path file) throws IOException {
        JsonNode n = root(file).get("loras");
        if (n == null) {
            return List.of();
        }
        if (!n.isArray()) {
            throw new PlanException(file + ": 'loras' must be an array of \"FILE[:STRENGTH]\" or {\"file\", \"strength\"}");
        }
        Path dir = file.toAbsolutePath().getParent();
        List<LoraSpec> out = new ArrayList<>();
        for (JsonNode e : n) {
            LoraSpec spec;
            if (e.isTextual()) {
                spec = LoraSpec.parse(e.asText());
            } else if (e.isObject() && e.path("file").isTextual() && (!e.has("strength") || e.get("strength").isNumber())) {
                spec = new LoraSpec(Path.of(e.get("file").asText()), e.has("strength") ? e.get("strength").asDouble() : 1.0);
            } else {
                throw new PlanException(file + ": 'loras' entries must be \"FILE[:STRENGTH]\" or {\"file\": ..., \"strength\": N}");
            }
            out.add(new LoraSpec(dir.resolve(spec.file()), spec.strength()));
        }
        return out;
    }

    private static JsonNode root(Path file) throws IOException {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(java.nio.file.Files.readString(file)); // strict UTF-8
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new PlanException(file + ": rules file is not valid JSON: " + e.getOriginalMessage());
        } catch (java.nio.charset.CharacterCodingException e) {
            throw new PlanException(file + ": rules file is not UTF-8 text");
        }
        if (root == null || !root.isObject()) {
            throw new PlanException(file + ": rules file must be an object {\"ignore\": [...], \"quantize\": [...]}");
        }
        return root;
    }

    private static List<String> strings(Path file, JsonNode root, String key) {
        JsonNode n = root.get(key);
        if (n == null) {
            return List.of();
        }
        if (!n.isArray()) {
            throw new PlanException(file + ": '" + key + "' must be an array of regular expressions");
        }
        List<String> out = new ArrayList<>();
        for (JsonNode e : n) {
            if (!e.isTextual()) {
                throw new PlanException(file + ": '" + key + "' must hold strings");
            }
            out.add(e.asText());
        }
        return out;
    }
}
