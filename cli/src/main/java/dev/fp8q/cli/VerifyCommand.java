package dev.fp8q.cli;

import dev.fp8q.verifier.Verifier;
import dev.fp8q.verifier.VerifyReport;
import dev.fp8q.verifier.check.Bound;
import dev.fp8q.verifier.check.Bounds;
import dev.fp8q.verifier.report.VerifyReports;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import dev.fp8q.formats.lora.LoraSpec;
import java.util.Locale;
import java.util.concurrent.Callable;
import java.util.function.BiFunction;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** fp8q verify SRC DST. */
@Command(name = "verify", mixinStandardHelpOptions = true,
        description = {"Check every FP8 weight against its source, then rerun sample Wan blocks with source weights, "
                + "FP8 weights (weight-only) and FP8 weights and activations (W8A8); other architectures get a "
                + "per-Linear check. Exit 0: all bounds hold; 1: a bound was exceeded; 2: bad input.",
                "Bound selectors: scope[.run][.kind], scope weight|linear|block_output|block_update, "
                        + "run weight_only|w8a8 (w8a8_simulated, on a GPU, takes w8a8's bounds), kind attention|ffn|other."})
final class VerifyCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "SRC", description = "The source checkpoint (file, folder or release folder)")
    Path src;

    @Parameters(index = "1", paramLabel = "DST", description = "The FP8 checkpoint (fp8q's output or another tool's)")
    Path dst;

    @Option(names = "--blocks", split = ",", paramLabel = "N", description = "Blocks to rerun (default: first, middle, last)")
    List<Integer> blocks;

    @Mixin
    RunInputs inputs;

    @Option(names = "--lora", paramLabel = "FILE[:STRENGTH]",
            description = "Compare with SRC with this LoRA merged, as convert --lora merged it (repeatable, in the same order).")
    List<String> lora = new ArrayList<>();

    @Option(names = "--lora-lenient", description = "Skip LoRA keys that match no weight, as convert --lora-lenient did.")
    boolean loraLenient;

    @Option(names = "--activations", paramLabel = "FILE", description = "Captured inputs: safetensors with x, context, e (Wan) or img, txt, temb (Qwen-Image), and grid")
    Path activations;

    @Option(names = "--whole", description = "Also run the whole model chained (embeddings, every block, head) and check its output and the drift after each block")
    boolean whole;

    @Option(names = "--sensitivity", description = "--whole: also each FP8 Linear's own share of the model output's error (as fp8q sensitivity ranks it)")
    boolean sensitivity;

    @Option(names = "--timesteps", split = ",", paramLabel = "T", description = "--whole: timesteps 0..1000 (default: three spread over the expert's range)")
    List<Double> timesteps;

    @Option(names = "--samples", defaultValue = "1", description = "--whole: seeds per timestep (default: ${DEFAULT-VALUE})")
    int samples;

    @Option(names = "--weights", defaultValue = "all", paramLabel = "all|sampled|none",
            description = "Which FP8 weights to check against the source (default: ${DEFAULT-VALUE})")
    String weights;

    @Option(names = "--sample-linears", defaultValue = "32", description = "Linears checked for architectures it cannot run (default: ${DEFAULT-VALUE})")
    int sampleLinears;

    @Option(names = "--min-sqnr-db", paramLabel = "[SELECTOR=]DB", description = "Lowest SQNR allowed; without a selector, for every scope")
    List<String> minSqnr = List.of();

    @Option(names = "--max-rel-l2", paramLabel = "[SELECTOR=]X", description = "Highest rel_l2 allowed; without a selector, for every scope")
    List<String> maxRelL2 = List.of();

    @Option(names = "--bounds", paramLabel = "FILE", description = "JSON bounds file: {\"selector\": {\"min_sqnr_db\": 30, \"max_rel_l2\": 0.05, ...}}")
    Path boundsFile;

    @Option(names = "--act-scheme", paramLabel = "tensor|token|group128|static",
            description = "W8A8 activation scheme instead of the one the checkpoint's layout declares")
    String actScheme;

    @Option(names = "--json", paramLabel = "FILE", description = "Write the full report as JSON")
    Path json;

    @Option(names = "--junit", paramLabel = "FILE", description = "Write JUnit XML (one test case per check)")
    Path junit;

    @Option(names = "--markdown", paramLabel = "FILE", description = "Write the report as Markdown")
    Path markdown;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        Verifier.Device where = inputs.device();
        Verifier.WeightScope scope = switch (weights.toLowerCase(Locale.ROOT)) {
            case "all" -> Verifier.WeightScope.ALL;
            case "sampled" -> Verifier.WeightScope.SAMPLED;
            case "none" -> Verifier.WeightScope.NONE;
            default -> throw new Fp8q.UsageException("--weights must be all, sampled or none");
        };
        if (inputs.contextTokens < 1 || sampleLinears < 1) {
            throw new Fp8q.UsageException("--context-tokens and --sample-linears must be at least 1");
        }
        Bounds bounds = Bounds.defaults();
        if (boundsFile != null) {
            bounds = bounds.withFile(boundsFile);
        }
        bounds = apply(bounds, minSqnr, "--min-sqnr-db", (sel, v) -> new Bound(v, null, null, null, null));
        bounds = apply(bounds, maxRelL2, "--max-rel-l2", (sel, v) -> new Bound(null, v, null, null, null));
        PrintWriter err = spec.commandLine().getErr();
        Verifier.Options options = new Verifier.Options(blocks, inputs.grid(), inputs.contextTokens, inputs.seed, activations, scope,
                bounds, sampleLinears, 256, inputs.log(err, "verify"), where);
        if (whole) {
            if (samples < 1 || timesteps != null && timesteps.stream().anyMatch(t -> t < 0 || t > 1000)) {
                throw new Fp8q.UsageException("--samples must be at least 1 and --timesteps within 0..1000");
            }
            options = options.withWhole(new Verifier.Whole(timesteps == null ? null : List.copyOf(timesteps), samples,
                    inputs.latents, inputs.context, sensitivity));
        } else if (timesteps != null || inputs.latents != null || inputs.context != null || sensitivity) {
            throw new Fp8q.UsageException("--timesteps, --latents, --context and --sensitivity go with --whole");
        }
        if (actScheme != null) {
            try {
                options = options.withActScheme(dev.fp8q.verifier.weights.ActivationQuantizer.Scheme.parse(actScheme));
            } catch (IllegalArgumentException e) {
                throw new Fp8q.UsageException("--act-scheme: " + e.getMessage());
            }
        }
        List<LoraSpec> loras = new ArrayList<>();
        for (String l : lora) {
            try {
                loras.add(LoraSpec.parse(l));
            } catch (IllegalArgumentException e) {
                throw new Fp8q.UsageException(e.getMessage());
            }
        }
        VerifyReport report = Verifier.verify(src, dst, options.withLoras(loras, loraLenient));
        PrintWriter out = spec.commandLine().getOut();
        out.print(VerifyReports.table(report));
        if (json != null) {
            VerifyReports.writeJson(report, json);
        }
        if (junit != null) {
            VerifyReports.writeJunit(report, junit);
        }
        if (markdown != null) {
            java.nio.file.Files.writeString(markdown, VerifyReports.markdown(report));
        }
        return report.summary().passed() ? ExitCodes.OK : ExitCodes.FAILED_CHECK;
    }

    /** "[selector=]value" flags; a bare value applies to every scope. */
    private static Bounds apply(Bounds bounds, List<String> flags, String flag, BiFunction<String, Double, Bound> make) {
        for (String f : flags) {
            int eq = f.lastIndexOf('=');
            String value = eq < 0 ? f : f.substring(eq + 1);
            double v;
            try {
                v = Double.parseDouble(value);
            } catch (NumberFormatException e) {
                throw new Fp8q.UsageException(flag + " " + f + ": not a number: " + value);
            }
            List<String> selectors = eq < 0 ? Bounds.SCOPES.stream().sorted().toList() : List.of(f.substring(0, eq));
            for (String sel : selectors) {
                try {
                    bounds = bounds.with(sel, make.apply(sel, v));
                } catch (IllegalArgumentException e) {
                    throw new Fp8q.UsageException(flag + ": " + e.getMessage());
                }
            }
        }
        return bounds;
    }
}
