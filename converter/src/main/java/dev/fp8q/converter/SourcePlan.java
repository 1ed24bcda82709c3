package dev.fp8q.converter;

import dev.fp8q.formats.KeyPrefix;
import dev.fp8q.converter.model.ModelDetector;
import dev.fp8q.converter.model.ModelInfo;
import dev.fp8q.converter.plan.Action;
import dev.fp8q.converter.plan.Decision;
import dev.fp8q.converter.plan.Planner;
import dev.fp8q.converter.plan.Preset;
import dev.fp8q.converter.plan.UserRules;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.Components;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.FormatException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * What a convert (or plan) does with each component of SRC. The checkpoint SRC names itself is converted; in a
 * folder of several components only the diffusion transformers are, by default (what vLLM-Omni's FP8 path
 * does), and text encoders, VAEs and the rest are carried over unchanged unless --components asks for them.
 * Holds the converted components' checkpoints open.
 */
public final class SourcePlan implements AutoCloseable {

    public enum Kind {
        TRANSFORMER, TEXT_ENCODER, VAE, OTHER;

        public String label() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** One component: converted (checkpoint open, planner ready) or carried (checkpoint null). */
    public record Part(Components.Component component, Kind kind, Checkpoint checkpoint, ModelInfo model,
            String prefix, Planner planner, List<Decision> decisions) {

        public boolean converted() {
            return checkpoint != null;
        }

        public long quantized() {
            return decisions.stream().filter(d -> d.action() == Action.QUANTIZE).count();
        }

        public String name() {
            return component.name();
        }
    }

    private final List<Part> parts;
    private final List<String> notes;

    private SourcePlan(List<Part> parts, List<String> notes) {
        this.parts = parts;
        this.notes = notes;
    }

    /** What the plan decided that the user should hear about (components carried for lack of work). */
    public List<String> notes() {
        return notes;
    }

    public List<Part> parts() {
        return parts;
    }

    public List<Part> converted() {
        return parts.stream().filter(Part::converted).toList();
    }

    /**
     * requested: --components entries (component names, or kinds: transformer, text_encoder, vae, all); the
     * checkpoint SRC names and the transformers are always converted.
     */
    public static SourcePlan of(Path src, String presetId, UserRules rules, List<String> requested, String pthKey)
            throws FormatException, ConvertException {
        List<Components.Component> components = Components.of(src);
        Set<String> asked = new TreeSet<>();
        requested.forEach(r -> asked.add(alias(r.trim().toLowerCase(Locale.ROOT))));
        Set<String> known = new TreeSet<>(List.of("all", "transformer", "text_encoder", "vae"));
        components.forEach(c -> known.add(c.name().toLowerCase(Locale.ROOT)));
        for (String a : asked) {
            if (!known.contains(a)) {
                throw new ConvertException("--components: '" + a + "' is neither a component of " + src + " nor a kind ("
                        + String.join(", ", known) + ")");
            }
        }
        List<Part> parts = new ArrayList<>();
        try {
            for (Components.Component c : components) {
                Kind kind = kindOf(c, pthKey);
                boolean convert = c.name().isEmpty() || kind == Kind.TRANSFORMER || asked.contains("all")
                        || asked.contains(kind.label()) || asked.contains(c.name().toLowerCase(Locale.ROOT));
                parts.add(convert ? open(c, kind, presetId, rules, pthKey) : new Part(c, kind, null, null, "", null, List.of()));
            }
        } catch (FormatException | ConvertException | RuntimeException e) {
            parts.forEach(p -> {
                if (p.converted()) {
                    p.checkpoint().close();
                }
            });
            throw e;
        }
        // A component with nothing to quantize is carried as it is (its config.json untouched), when others have work.
        List<String> notes = new ArrayList<>();
        if (parts.stream().anyMatch(p -> p.converted() && p.quantized() > 0)) {
            for (int i = 0; i < parts.size(); i++) {
                Part p = parts.get(i);
                if (p.converted() && p.quantized() == 0) {
                    p.checkpoint().close();
                    parts.set(i, new Part(p.component(), p.kind(), null, p.model(), p.prefix(), null, List.of()));
                    notes.add("component '" + p.name() + "': nothing to quantize under the " + p.planner().preset().id
                            + " preset: carried over unchanged");
                }
            }
        }
        return new SourcePlan(parts, notes);
    }

    /** Other words users give for the kinds. */
    private static String alias(String asked) {
        return switch (asked) {
            case "t5", "umt5", "text-encoder", "text_encoders" -> "text_encoder";
            case "transformers", "dit" -> "transformer";
            default -> asked;
        };
    }

    private static Part open(Components.Component c, Kind kind, String presetId, UserRules rules, String pthKey)
            throws FormatException, ConvertException {
        Checkpoint cp = Checkpoint.open(c.path(), pthKey);
        try {
            Map<String, long[]> shapes = new LinkedHashMap<>();
            cp.tensors().forEach(t -> shapes.put(t.name(), t.entry().shape()));
            String prefix = KeyPrefix.of(shapes.keySet());
            ModelInfo model = ModelDetector.detect(shapes);
            Preset preset;
            try {
                preset = Preset.resolve(presetFor(c, kind, model, presetId), model);
            } catch (IllegalArgumentException e) {
                throw new ConvertException(e.getMessage());
            }
            Planner planner = new Planner(preset, rules, prefix);
            List<Decision> decisions = planner.plan(cp.tensors().stream().map(Checkpoint.Tensor::entry).toList());
            return new Part(c, kind, cp, model, prefix, planner, decisions);
        } catch (ConvertException | RuntimeException e) {
            cp.close();
            throw e;
        }
    }

    /**
     * --preset names the transformer's (or the checkpoint's SRC names itself). The other components of a pipeline
     * or release get theirs by kind: a T5 its own, VAEs and other text encoders weight-only storage (as vLLM-Omni
     * stores them).
     */
    private static String presetFor(Components.Component c, Kind kind, ModelInfo model, String presetId) {
        if (c.name().isEmpty() || kind == Kind.TRANSFORMER) {
            return presetId;
        }
        if (kind == Kind.VAE || kind == Kind.TEXT_ENCODER && !model.family().equals("t5")) {
            return "weight-only";
        }
        return "auto";
    }

    /** By what a pipeline declares, then by name, then by the tensor names; unreadable files are "other". */
    static Kind kindOf(Components.Component c, String pthKey) {
        String declared = c.declaredClass() == null ? "" : c.declaredClass();
        String n = c.name().toLowerCase(Locale.ROOT);
        if (declared.contains("Transformer") || n.startsWith("transformer") || n.endsWith("noise_model")) {
            return Kind.TRANSFORMER;
        }
        if (declared.startsWith("AutoencoderKL") || n.contains("vae")) {
            return Kind.VAE;
        }
        if (n.startsWith("text_encoder") || n.contains("t5") || declared.contains("EncoderModel")) {
            return Kind.TEXT_ENCODER;
        }
        try (Checkpoint cp = Checkpoint.open(c.path(), pthKey)) {
            Map<String, long[]> shapes = new LinkedHashMap<>();
            cp.tensors().forEach(t -> shapes.put(t.name(), t.entry().shape()));
            return switch (ModelDetector.detect(shapes).family()) {
                case "wan", "qwen-image" -> Kind.TRANSFORMER;
                case "t5", "llm", "bert" -> Kind.TEXT_ENCODER;
                case "vae" -> Kind.VAE;
                default -> Kind.OTHER;
            };
        } catch (FormatException | RuntimeException e) {
            return Kind.OTHER; // not a checkpoint fp8q reads (an optimizer state, say): carried as it is
        }
    }

    /**
     * Refuses a plan that quantizes nothing, naming why: no component to convert, an FP8 source, or a family
     * no preset knows.
     */
    public void requireWork(String presetId) throws ConvertException {
        List<Part> conv = converted();
        if (conv.stream().anyMatch(p -> p.quantized() > 0)) {
            return;
        }
        if (conv.isEmpty()) {
            throw new ConvertException("nothing to convert: no diffusion transformer among the components ("
                    + String.join(", ", parts.stream().map(p -> p.name() + " (" + p.kind().label() + ")").toList())
                    + "); ask for others with --components");
        }
        for (Part p : conv) {
            for (Checkpoint.Tensor t : p.checkpoint().tensors()) {
                if (t.entry().dtype() == DType.F8_E4M3 || t.entry().dtype() == DType.F8_E5M2) {
                    throw new ConvertException(t.shard().path() + ": already FP8 (tensor '" + t.name() + "' is "
                            + t.entry().dtype() + "): nothing to quantize; use 'fp8q verify SRC " + p.component().path()
                            + "' to check it against its source, or 'fp8q dequantize' to go back to high precision");
                }
            }
        }
        Part first = conv.getFirst();
        throw new ConvertException(first.component().path() + ": nothing to quantize: no tensor matches the "
                + first.planner().preset().id + " preset (detected family: " + first.model().family()
                + ", preset " + presetId + "); choose --preset (" + Preset.IDS + ") or name the weights with --quantize REGEX");
    }

    /** Where a converted .pth component goes: beside it, its dtype in the name changed to fp8. */
    public static String pthOutputName(Path pth) {
        String n = pth.getFileName().toString();
        String stem = n.substring(0, n.lastIndexOf('.'));
        String renamed = stem.replaceAll("(?i)(bf16|fp16|fp32|f16|f32|float32|float16|bfloat16)", "fp8");
        return (renamed.equals(stem) ? stem + "-fp8" : renamed) + ".safetensors";
    }

    @Override
    public void close() {
        for (Part p : parts) {
            if (p.converted()) {
                p.checkpoint().close();
            }
        }
    }
}
