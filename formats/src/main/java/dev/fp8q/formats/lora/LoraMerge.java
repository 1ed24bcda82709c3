package dev.fp8q.formats.lora;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.Crc32c;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.safetensors.TensorEntry;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * LoRA files resolved against one model before any byte is written: every key parsed, matched to the model's
 * tensor (under the model's ComfyUI key prefix, if it has one) and its shapes checked. The deltas are then read
 * from the mapped LoRA files, target by target, by {@link DeltaMerger}.
 */
public final class LoraMerge implements AutoCloseable {

    /** What the manifest says of the merge. */
    public static final String NOTE = "W' = W + sum over LoRAs in order of (strength * alpha / rank) * (up @ down) "
            + "(+ strength * diff), in float64 with one rounding at the end: to float32 for quantized weights, "
            + "to the output dtype for kept tensors";

    /** One contribution to a target tensor. */
    public sealed interface Delta permits LowRank, Full {}

    /** (scale) * up @ down, up [out, rank, 1...] and down [rank, in...] viewed as matrices. */
    public record LowRank(String key, double scale, Checkpoint.Tensor up, Checkpoint.Tensor down, int rank) implements Delta {}

    /** strength * diff, a full delta of the target's shape (.diff for weights and norms, .diff_b for biases). */
    public record Full(String key, double strength, Checkpoint.Tensor diff) implements Delta {}

    /** One LoRA file as applied: style peft, kohya or comfy; the model tensors it changes. */
    public record Applied(Path file, String crc32c, double strength, String style, int keysApplied, List<String> targets,
            List<String> skipped) {}

    public static final LoraMerge NONE = new LoraMerge(List.of(), Map.of(), List.of());

    /** Key prefixes LoRA files put before the module path (ComfyUI, PEFT, diffusers), stripped in any order. */
    private static final List<String> PREFIXES = List.of("model.diffusion_model.", "diffusion_model.", "base_model.model.",
            "transformer.", "unet.");
    private static final String KOHYA = "lora_unet_";
    private static final String AMBIGUOUS = "\0";

    private final List<Checkpoint> files;
    private final Map<String, List<Delta>> deltas;
    private final List<Applied> applied;

    private LoraMerge(List<Checkpoint> files, Map<String, List<Delta>> deltas, List<Applied> applied) {
        this.files = files;
        this.deltas = deltas;
        this.applied = applied;
    }

    public boolean isEmpty() {
        return deltas.isEmpty() && applied.isEmpty();
    }

    /** The deltas to add to the tensor, in the order given (empty when no LoRA touches it). */
    public List<Delta> deltas(String tensor) {
        return deltas.getOrDefault(tensor, List.of());
    }

    public boolean targets(String tensor) {
        return deltas.containsKey(tensor);
    }

    public Set<String> targets() {
        return deltas.keySet();
    }

    public List<Applied> applied() {
        return applied;
    }

    /**
     * Opens and resolves the LoRA files against the model's tensors (names as the checkpoint spells them).
     * Unmatched keys and shape mismatches are errors naming the key; lenient lists them in {@link Applied#skipped}
     * and goes on.
     */
    public static LoraMerge resolve(List<LoraSpec> specs, List<TensorEntry> model, String prefix, boolean lenient)
            throws FormatException {
        if (specs.isEmpty()) {
            return NONE;
        }
        Map<String, TensorEntry> names = new HashMap<>();
        for (TensorEntry e : model) {
            if (e.name().startsWith(prefix)) {
                names.put(e.name().substring(prefix.length()), e);
            }
        }
        Map<String, String> flat = kohyaNames(names.keySet());
        List<Checkpoint> open = new ArrayList<>();
        Map<String, List<Delta>> deltas = new LinkedHashMap<>();
        List<Applied> applied = new ArrayList<>();
        try {
            for (LoraSpec spec : specs) {
                Checkpoint cp = Checkpoint.open(spec.file());
                open.add(cp);
                applied.add(new Resolver(spec, cp, names, flat, prefix, lenient).resolve(deltas));
            }
        } catch (FormatException | RuntimeException e) {
            open.forEach(Checkpoint::close);
            throw e;
        }
        return new LoraMerge(open, deltas, applied);
    }

    /** kohya flattens module paths' dots into underscores: each flattened name back to the model's module. */
    private static Map<String, String> kohyaNames(Set<String> names) {
        Map<String, String> flat = new HashMap<>();
        for (String n : names) {
            String module = n.endsWith(".weight") ? n.substring(0, n.length() - 7)
                    : n.endsWith(".bias") ? n.substring(0, n.length() - 5) : n;
            flat.merge(module.replace('.', '_'), module, (a, b) -> a.equals(b) ? a : AMBIGUOUS);
        }
        return flat;
    }

    /** Resolves one file's keys. */
    private static final class Resolver {
        private final LoraSpec spec;
        private final Checkpoint cp;
        private final Map<String, TensorEntry> names;
        private final Map<String, String> flat;
        private final String prefix;
        private final boolean lenient;
        private final List<String> problems = new ArrayList<>();
        private final List<String> problemKeys = new ArrayList<>();
        private final List<Rule> problemRules = new ArrayList<>();
        private Double configAlpha;

        Resolver(LoraSpec spec, Checkpoint cp, Map<String, TensorEntry> names, Map<String, String> flat, String prefix,
                boolean lenient) {
            this.spec = spec;
            this.cp = cp;
            this.names = names;
            this.flat = flat;
            this.prefix = prefix;
            this.lenient = lenient;
        }

        Applied resolve(Map<String, List<Delta>> deltas) throws FormatException {
            Map<String, Map<LoraKey.Part, Checkpoint.Tensor>> groups = new LinkedHashMap<>();
            boolean kohya = false;
            boolean peft = false;
            boolean comfy = false;
            for (Checkpoint.Tensor t : cp.tensors()) {
                LoraKey k = LoraKey.parse(t.name());
                if (k == null) {
                    problem(Rule.LORA_INVALID, t.name(), "not a key fp8q merges (lora_down/lora_up, lora_A/lora_B, alpha,"
                            + " diff, diff_b; LoHa, LoKr and DoRA are not supported)");
                    continue;
                }
                kohya |= k.module().startsWith(KOHYA);
                peft |= t.name().endsWith(".lora_A.weight") || t.name().endsWith(".lora_B.weight");
                comfy |= k.module().startsWith("diffusion_model.") || k.module().startsWith("model.diffusion_model.");
                groups.computeIfAbsent(k.module(), m -> new EnumMap<>(LoraKey.Part.class)).put(k.part(), t);
            }
            String style = kohya ? "kohya" : comfy || !peft ? "comfy" : "peft";
            if (peft) {
                configAlpha = adapterAlpha();
            }
            int applied = 0;
            List<String> targets = new ArrayList<>();
            for (Map.Entry<String, Map<LoraKey.Part, Checkpoint.Tensor>> g : groups.entrySet()) {
                Map<String, Delta> found = group(g.getKey(), g.getValue());
                if (found == null) {
                    continue;
                }
                for (Map.Entry<String, Delta> d : found.entrySet()) {
                    deltas.computeIfAbsent(prefix + d.getKey(), n -> new ArrayList<>()).add(d.getValue());
                    targets.add(prefix + d.getKey());
                }
                applied += g.getValue().size();
            }
            if (!problems.isEmpty() && !lenient) {
                String more = problems.size() == 1 ? "" : "; " + (problems.size() - 1) + " more: "
                        + String.join(", ", problemKeys.subList(1, Math.min(problemKeys.size(), 6)))
                        + (problemKeys.size() > 6 ? ", ..." : "") + " (--lora-lenient skips them)";
                throw new FormatException(problemRules.getFirst(), spec.file(), problemKeys.getFirst(), problems.getFirst() + more);
            }
            if (applied == 0) {
                throw new FormatException(Rule.LORA_UNMATCHED, spec.file(), null, "no key of this file applies to the model");
            }
            List<String> skipped = new ArrayList<>();
            for (int i = 0; i < problems.size(); i++) {
                skipped.add(problemKeys.get(i) + ": " + problems.get(i));
            }
            return new Applied(spec.file(), crc(spec.file()), spec.strength(), style, applied, List.copyOf(targets),
                    List.copyOf(skipped));
        }

        private void problem(Rule rule, String key, String what) {
            problemRules.add(rule);
            problemKeys.add(key);
            problems.add(what);
        }

        /** The deltas one module's keys make, by target name (unprefixed); null when the group is refused. */
        private Map<String, Delta> group(String module, Map<LoraKey.Part, Checkpoint.Tensor> parts) {
            Map<String, Delta> out = new LinkedHashMap<>();
            Checkpoint.Tensor down = parts.get(LoraKey.Part.DOWN);
            Checkpoint.Tensor up = parts.get(LoraKey.Part.UP);
            Checkpoint.Tensor alpha = parts.get(LoraKey.Part.ALPHA);
            String anyKey = parts.values().iterator().next().name();
            for (Checkpoint.Tensor t : parts.values()) {
                if (!floating(t.entry().dtype())) {
                    problem(Rule.LORA_INVALID, t.name(), "dtype " + t.entry().dtype() + " (LoRA tensors must be BF16, F16, F32 or F64)");
                    return null;
                }
            }
            if (down != null || up != null || alpha != null) {
                if (down == null || up == null) {
                    problem(Rule.LORA_INVALID, anyKey, down == null && up == null ? "alpha without lora_down/lora_up"
                            : (down == null ? "lora_up without its lora_down" : "lora_down without its lora_up"));
                    return null;
                }
                String target = weightOf(module);
                if (target == null) {
                    unmatched(module, parts);
                    return null;
                }
                TensorEntry w = names.get(target);
                String bad = lowRankShape(w, down.entry(), up.entry());
                if (bad != null) {
                    problem(Rule.LORA_SHAPE, down.name(), bad + " for '" + prefix + target + "' " + w.shapeString());
                    return null;
                }
                int rank = (int) down.entry().dim(0);
                double a = rank;
                if (alpha != null) {
                    if (alpha.entry().numel() != 1) {
                        problem(Rule.LORA_SHAPE, alpha.name(), "alpha must be a scalar, not " + alpha.entry().shapeString());
                        return null;
                    }
                    a = Elements.getDouble(alpha.data(), alpha.entry().dtype(), 0);
                } else if (configAlpha != null) {
                    a = configAlpha;
                }
                out.put(target, new LowRank(down.name(), spec.strength() * a / rank, up, down, rank));
            }
            Checkpoint.Tensor diff = parts.get(LoraKey.Part.DIFF);
            if (diff != null) {
                String target = paramOf(module);
                if (target == null) {
                    unmatched(module, parts);
                    return null;
                }
                if (!fullShape(names.get(target), diff, target)) {
                    return null;
                }
                if (out.containsKey(target)) { // both low-rank factors and a diff: a second contribution, after the first
                    problem(Rule.LORA_INVALID, diff.name(), "both a diff and lora_down/lora_up for '" + prefix + target + "'");
                    return null;
                }
                out.put(target, new Full(diff.name(), spec.strength(), diff));
            }
            Checkpoint.Tensor diffB = parts.get(LoraKey.Part.DIFF_B);
            if (diffB != null) {
                String base = moduleOf(module);
                String target = base == null ? null : base + ".bias";
                if (target == null || !names.containsKey(target)) {
                    unmatched(module, parts);
                    return null;
                }
                if (!fullShape(names.get(target), diffB, target)) {
                    return null;
                }
                out.put(target, new Full(diffB.name(), spec.strength(), diffB));
            }
            for (String t : out.keySet()) {
                DType dt = names.get(t).dtype();
                if (dt != DType.BF16 && dt != DType.F16 && dt != DType.F32) {
                    problem(Rule.LORA_INVALID, anyKey, "target '" + prefix + t + "' is " + dt + ": LoRAs merge into BF16, F16 or F32 weights");
                    return null;
                }
            }
            return out;
        }

        private void unmatched(String module, Map<LoraKey.Part, Checkpoint.Tensor> parts) {
            for (Checkpoint.Tensor t : parts.values()) {
                problem(Rule.LORA_UNMATCHED, t.name(), "module '" + module + "' is not in the model"
                        + (prefix.isEmpty() ? "" : " (matched under its key prefix " + prefix + ")"));
            }
        }

        private boolean fullShape(TensorEntry target, Checkpoint.Tensor diff, String name) {
            if (!Arrays.equals(target.shape(), diff.entry().shape())) {
                problem(Rule.LORA_SHAPE, diff.name(), "shape " + diff.entry().shapeString() + " differs from '" + prefix + name
                        + "' " + target.shapeString());
                return false;
            }
            return true;
        }

        /** The model's module the LoRA module names, without the model's prefix; null when none. */
        private String moduleOf(String module) {
            if (module.startsWith(KOHYA)) {
                String m = flat.get(module.substring(KOHYA.length()));
                return m == null || m.equals(AMBIGUOUS) ? null : m;
            }
            for (String c : candidates(module)) {
                if (names.containsKey(c + ".weight") || names.containsKey(c + ".bias") || names.containsKey(c)) {
                    return c;
                }
            }
            return null;
        }

        private String weightOf(String module) {
            String m = moduleOf(module);
            return m != null && names.containsKey(m + ".weight") ? m + ".weight" : null;
        }

        /** A module's weight, or a parameter named by itself (Wan's blocks.N.modulation), as ComfyUI maps .diff. */
        private String paramOf(String module) {
            String m = moduleOf(module);
            if (m == null) {
                return null;
            }
            return names.containsKey(m + ".weight") ? m + ".weight" : names.containsKey(m) ? m : null;
        }

        /** The module path as written, then without each known LoRA prefix (in any order). */
        private static List<String> candidates(String module) {
            List<String> out = new ArrayList<>(List.of(module));
            for (int i = 0; i < out.size(); i++) {
                for (String p : PREFIXES) {
                    if (out.get(i).startsWith(p) && !out.contains(out.get(i).substring(p.length()))) {
                        out.add(out.get(i).substring(p.length()));
                    }
                }
            }
            return out;
        }

        /** Why up [out, r, 1...] @ down [r, in...] does not fit the weight, or null. */
        private static String lowRankShape(TensorEntry w, TensorEntry down, TensorEntry up) {
            String pair = "down " + down.shapeString() + " and up " + up.shapeString();
            if (w.rank() < 2 || down.rank() < 2 || up.rank() < 2) {
                return pair + " need a weight and factors of 2 or more dimensions";
            }
            long out = w.dim(0);
            long in = w.numel() / out;
            long r = down.dim(0);
            if (r < 1 || up.dim(1) != r || up.numel() != up.dim(0) * r) {
                return pair + " do not share one rank";
            }
            if (up.dim(0) != out || down.numel() / r != in) {
                return pair + " give a delta of [" + up.dim(0) + ", " + down.numel() / r + "], not [" + out + ", " + in + "]";
            }
            return null;
        }

        /** PEFT's adapter_config.json beside the file: lora_alpha, or null when there is none. */
        private Double adapterAlpha() throws FormatException {
            Path cfg = spec.file().toAbsolutePath().resolveSibling("adapter_config.json");
            if (!Files.isRegularFile(cfg)) {
                return null;
            }
            JsonNode root;
            try {
                root = new ObjectMapper().readTree(Files.readString(cfg));
            } catch (IOException e) {
                throw new FormatException(Rule.LORA_INVALID, cfg, null, "adapter_config.json is not valid JSON: " + e.getMessage());
            }
            if (root == null || !root.isObject()) {
                throw new FormatException(Rule.LORA_INVALID, cfg, null, "adapter_config.json must be an object");
            }
            if (root.path("use_rslora").asBoolean(false)) {
                throw new FormatException(Rule.LORA_INVALID, cfg, null, "use_rslora (alpha / sqrt(r)) is not supported");
            }
            for (String pattern : List.of("alpha_pattern", "rank_pattern")) {
                JsonNode p = root.get(pattern);
                if (p != null && !p.isNull() && p.size() > 0) {
                    throw new FormatException(Rule.LORA_INVALID, cfg, null, pattern + " (per-module overrides) is not supported");
                }
            }
            JsonNode a = root.get("lora_alpha");
            if (a == null || a.isNull()) {
                return null;
            }
            if (!a.isNumber() || !Double.isFinite(a.asDouble())) {
                throw new FormatException(Rule.LORA_INVALID, cfg, null, "lora_alpha must be a number");
            }
            return a.asDouble();
        }

        private static String crc(Path file) throws FormatException {
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ); Arena arena = Arena.ofConfined()) {
                return Crc32c.hex(Crc32c.of(ch.map(FileChannel.MapMode.READ_ONLY, 0, ch.size(), arena)));
            } catch (IOException e) {
                throw new FormatException(Rule.IO, file, null, e.toString(), e);
            }
        }
    }

    static boolean floating(DType d) {
        return d == DType.BF16 || d == DType.F16 || d == DType.F32 || d == DType.F64;
    }

    @Override
    public void close() {
        files.forEach(Checkpoint::close);
    }
}
