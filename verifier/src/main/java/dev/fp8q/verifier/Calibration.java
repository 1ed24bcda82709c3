package dev.fp8q.verifier;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.calibrate.InputStats;
import dev.fp8q.verifier.run.CalibratingWeights;
import dev.fp8q.verifier.run.ReferenceWeights;
import dev.fp8q.verifier.model.CapturedInputs;
import dev.fp8q.verifier.model.ChainedModel;
import dev.fp8q.verifier.model.ChainedModels;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.wan.CpuBlockMath;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Static activation scales: the reference (source weights, float32) model (any family of the model seam) chained over the expert's timesteps
 * and several seeds, or over captured latents / text features, recording the input of every FP8 Linear
 * ({@link CalibratingWeights}); each Linear's amax by the method (max, percentile, mse; {@link InputStats}), the
 * max over a group of Linears that share their input, and input_scale = amax / 448 in float32.
 */
public final class Calibration {

    public enum Method { MAX, PERCENTILE, MSE }

    /**
     * timesteps null: three over the expert's range (the component's name says which expert); latents / contexts:
     * captured inputs, paired in order (one of either goes with each of the other).
     */
    public record Options(Method method, double percentile, int[] grid, int contextTokens, long seed,
            List<Double> timesteps, int samples, List<Path> latents, List<Path> contexts, Consumer<String> log) {}

    /** One Linear: its recorded amax, the method's amax, the group's amax (what the scale is of), the scale, spread. */
    public record LayerScale(String layer, float amax, float methodAmax, float scaleAmax, float scale, Double spread,
            String group) {}

    public record Result(String method, Double percentile, List<Double> timesteps, int samples, String inputs,
            int[] grid, Map<String, LayerScale> layers, Map<String, Map<String, Float>> amaxPerStep) {}

    private Calibration() {}

    public static Result run(String component, Checkpoint source, Set<String> layers, Options o)
            throws FormatException, VerifyException {
        ReferenceWeights ref = new ReferenceWeights(source);
        ChainedModel<?> model = ChainedModels.of(source, ref, o.grid(), o.contextTokens(), CapturedInputs.NONE)
                .orElseThrow(() -> new VerifyException("calibration runs the chained model (Wan or Qwen-Image); "
                        + source.root() + " is not a transformer fp8q runs whole"));
        List<Input> inputs = inputs(component, model, source, ref, o);
        CalibratingWeights first = new CalibratingWeights(ref, layers, InputStats.Pass.AMAX, null);
        if (o.method() == Method.PERCENTILE) {
            first.stats().values().forEach(InputStats::histogram);
        }
        forward(inputs, first, o, "amax");
        Map<String, InputStats> stats = first.stats();
        Map<String, Float> methodAmax = new LinkedHashMap<>();
        if (o.method() == Method.MAX) {
            stats.forEach((l, s) -> methodAmax.put(l, s.amax()));
        } else {
            InputStats.Pass pass = o.method() == Method.PERCENTILE ? InputStats.Pass.PERCENTILE : InputStats.Pass.MSE;
            for (InputStats s : stats.values()) {
                if (pass == InputStats.Pass.PERCENTILE) {
                    s.preparePercentile(Math.max(1, (long) Math.ceil(o.percentile() / 100.0 * s.count())));
                } else {
                    s.prepareMse();
                }
            }
            forward(inputs, new CalibratingWeights(ref, layers, pass, stats), o, o.method().name().toLowerCase(Locale.ROOT));
            stats.forEach((l, s) -> methodAmax.put(l, pass == InputStats.Pass.PERCENTILE ? s.percentileValue() : s.mseValue()));
        }
        Map<String, Float> groupAmax = new LinkedHashMap<>();
        first.groups().forEach((l, g) -> groupAmax.merge(g, methodAmax.get(l), Math::max));
        Map<String, LayerScale> out = new LinkedHashMap<>();
        Map<String, Map<String, Float>> perStep = new LinkedHashMap<>();
        for (Map.Entry<String, InputStats> e : stats.entrySet()) {
            String l = e.getKey();
            InputStats s = e.getValue();
            if (s.count() == 0) {
                continue; // not on the chained path (a Linear the Wan forward never calls)
            }
            String g = first.groups().get(l);
            float a = groupAmax.get(g);
            float scale = a > 0 ? a / dev.fp8q.formats.codec.E4M3.MAX : 1f;
            double min = s.amaxPerStep().values().stream().mapToDouble(Float::doubleValue).min().orElse(0);
            double max = s.amaxPerStep().values().stream().mapToDouble(Float::doubleValue).max().orElse(0);
            out.put(l, new LayerScale(l, s.amax(), methodAmax.get(l), a, scale, min > 0 ? max / min : null, g));
            perStep.put(l, Map.copyOf(s.amaxPerStep()));
        }
        List<Double> ts = inputs.stream().map(Input::timestep).distinct().toList();
        String how = o.latents().isEmpty() && o.contexts().isEmpty() ? "synthetic (seeded x_t and text features, as verify --whole makes them)"
                : "captured: " + o.latents().size() + " latents file(s), " + o.contexts().size() + " context file(s)";
        return new Result(o.method().name().toLowerCase(Locale.ROOT), o.method() == Method.PERCENTILE ? o.percentile() : null,
                ts, o.samples(), how, o.grid().clone(), out, perStep);
    }

    private record Input(double timestep, long seed, ChainedModel<?> model) {}

    private static List<Input> inputs(String component, ChainedModel<?> model, Checkpoint source, ReferenceWeights ref,
            Options o) throws FormatException, VerifyException {
        List<Double> timesteps = o.timesteps() != null ? o.timesteps() : model.defaultTimesteps(component, new ArrayList<>());
        List<Input> out = new ArrayList<>();
        int n = Math.max(o.latents().size(), o.contexts().size());
        if (n == 0) {
            for (double t : timesteps) {
                for (int s = 0; s < o.samples(); s++) {
                    out.add(new Input(t, o.seed() + s, model));
                }
            }
            return out;
        }
        if (o.latents().size() > 1 && o.contexts().size() > 1 && o.latents().size() != o.contexts().size()) {
            throw new VerifyException("captured inputs: " + o.latents().size() + " latents files and " + o.contexts().size()
                    + " context files: give as many of each, or one of either");
        }
        for (int i = 0; i < n; i++) {
            Path lat = o.latents().isEmpty() ? null : o.latents().get(Math.min(i, o.latents().size() - 1));
            Path ctx = o.contexts().isEmpty() ? null : o.contexts().get(Math.min(i, o.contexts().size() - 1));
            CapturedInputs c = CapturedInputs.read(lat, ctx);
            ChainedModel<?> m = ChainedModels.of(source, ref, o.grid(), o.contextTokens(), c).orElseThrow();
            for (double t : c.timestep() != null ? List.of(c.timestep()) : timesteps) {
                out.add(new Input(t, o.seed() + i, m));
            }
        }
        return out;
    }

    private static void forward(List<Input> inputs, CalibratingWeights w, Options o, String pass) throws FormatException {
        for (Input in : inputs) {
            String step = "t=" + Math.round(in.timestep());
            w.step(step);
            o.log().accept("calibration (" + pass + "): " + step + " seed=" + in.seed() + ", " + in.model().layers()
                    + " blocks");
            chained(in.model(), in.timestep(), in.seed(), w);
        }
    }

    /** The whole model once, every Linear through w (which records the inputs). */
    private static <S extends ChainedModel.Step> void chained(ChainedModel<S> model, double t, long seed, RunWeights w)
            throws FormatException {
        S s = model.inputs(t, seed, w);
        model.output(s, 0, s.streams(), w, new CpuBlockMath(ChainedModels.HEAD_DIM));
    }
}
