package dev.fp8q.converter.plan;

import dev.fp8q.formats.safetensors.TensorEntry;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Turns tensor names into decisions. Order: the source dtype (only BF16/F16/F32 can be quantized), the
 * rank (2-D weights; Conv2d/Conv3d weights only when a --quantize pattern names them), the user's ignore and quantize patterns (a tensor matching both is an error),
 * the preset's quantize rules, then the FP8 GEMM shape rule (last dim % 16, leading dims % 8) for preset
 * choices (not for weight-only presets); everything else is kept under the preset's keep rule. Names are
 * matched without the ComfyUI prefix the planner was given; keys outside it are kept.
 */
public final class Planner {

    private final Preset preset;
    private final UserRules user;
    private final String prefix;

    public Planner(Preset preset, UserRules user) {
        this(preset, user, "");
    }

    /** prefix: the ComfyUI key prefix the model's names carry ({@link dev.fp8q.formats.KeyPrefix}), or "". */
    public Planner(Preset preset, UserRules user, String prefix) {
        this.preset = preset;
        this.user = user;
        this.prefix = prefix;
    }

    public Preset preset() {
        return preset;
    }

    public List<Decision> plan(List<TensorEntry> tensors) {
        List<Decision> out = new ArrayList<>(tensors.size());
        for (TensorEntry t : tensors) {
            out.add(decide(t));
        }
        return out;
    }

    public Decision decide(TensorEntry t) {
        String name = t.name().startsWith(prefix) ? t.name().substring(prefix.length()) : null;
        if (name == null) {
            return new Decision(t, Action.PRESERVE, "prefix:outside-" + prefix.substring(0, prefix.length() - 1));
        }
        Pattern ig = first(user.ignore(), t.name(), name);
        Pattern qu = first(user.quantize(), t.name(), name);
        if (ig != null && qu != null) {
            throw new PlanException("tensor '" + t.name() + "' matches both --ignore '" + ig + "' and --quantize '" + qu
                    + "': make the patterns exclusive");
        }
        if (!t.dtype().isQuantizableSource()) {
            return new Decision(t, Action.PRESERVE, "dtype:" + t.dtype() + "-not-a-source");
        }
        if (t.rank() > 2 && qu != null && ig == null) { // Conv2d/Conv3d: weight-only FP8 storage, on request
            return new Decision(t, Action.QUANTIZE, user.label() + ":quantize=" + qu + "(weight-only,rank-" + t.rank() + ")");
        }
        if (t.rank() > 2 && ig == null && preset.weightOnly() && preset.quantizeRule(name) != null) {
            return new Decision(t, Action.QUANTIZE, preset.quantizeRule(name) + "(rank-" + t.rank() + ")");
        }
        if (t.rank() != 2) {
            return new Decision(t, Action.PRESERVE, t.rank() < 2 ? "shape:1d" : "shape:not-2d");
        }
        if (ig != null) {
            return new Decision(t, Action.PRESERVE, user.label() + ":ignore=" + ig);
        }
        if (qu != null) {
            return new Decision(t, Action.QUANTIZE, user.label() + ":quantize=" + qu);
        }
        String rule = preset.quantizeRule(name);
        if (rule == null) {
            return new Decision(t, Action.PRESERVE, preset.keepRule(name));
        }
        if (!preset.weightOnly() && (t.dim(1) % 16 != 0 || t.dim(0) % 8 != 0)) {
            return new Decision(t, Action.PRESERVE, "fp8-gemm-shape");
        }
        return new Decision(t, Action.QUANTIZE, rule);
    }

    /** The first pattern found in the full name or in the name without the prefix. */
    private static Pattern first(List<Pattern> ps, String full, String name) {
        for (Pattern p : ps) {
            if (p.matcher(full).find() || p.matcher(name).find()) {
                return p;
            }
        }
        return null;
    }
}
