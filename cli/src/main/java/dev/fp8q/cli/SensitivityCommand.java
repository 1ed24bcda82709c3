package dev.fp8q.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fp8q.verifier.Verifier;
import dev.fp8q.verifier.VerifyReport;
import dev.fp8q.verifier.check.Check;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** fp8q sensitivity SRC DST: each FP8 Linear's own share of the end-to-end error, ranked. */
@Command(name = "sensitivity", mixinStandardHelpOptions = true,
        description = "Rank the FP8 Linears of a Wan conversion by their own effect on the model's output: the whole model "
                + "chained with only that layer in FP8 (weight-only and W8A8), everything else the reference.")
final class SensitivityCommand implements Callable<Integer> {

    @Parameters(index = "0", paramLabel = "SRC")
    Path src;

    @Parameters(index = "1", paramLabel = "DST")
    Path dst;

    @Mixin
    RunInputs inputs;

    @Option(names = "--timestep", description = "0..1000 (default: the middle of the expert's range)")
    Double timestep;

    @Option(names = "--run", defaultValue = "weight_only", description = "weight_only or w8a8: the ranking's run (default: ${DEFAULT-VALUE})")
    String run;

    @Option(names = "--top", defaultValue = "20", description = "Rows to print (default: ${DEFAULT-VALUE}; --json has all)")
    int top;

    @Option(names = "--json", paramLabel = "FILE", description = "Every layer's figures for both runs, ranked")
    Path json;

    @Spec
    CommandSpec spec;

    @Override
    public Integer call() throws Exception {
        if (!run.equals("weight_only") && !run.equals("w8a8")) {
            throw new Fp8q.UsageException("--run must be weight_only or w8a8");
        }
        if (timestep != null && (timestep < 0 || timestep > 1000)) {
            throw new Fp8q.UsageException("--timestep must be within 0..1000");
        }
        PrintWriter err = spec.commandLine().getErr();
        Verifier.Options options = new Verifier.Options(List.of(0), inputs.grid(), inputs.contextTokens, inputs.seed, null,
                Verifier.WeightScope.NONE, dev.fp8q.verifier.check.Bounds.defaults(), 1, 16, inputs.log(err, "sensitivity"),
                inputs.device()).withWhole(new Verifier.Whole(timestep == null ? null : List.of(timestep), 1, inputs.latents,
                inputs.context, true));
        VerifyReport report = Verifier.verify(src, dst, options);
        List<Check> ranked = report.checks().stream().filter(c -> c.scope().equals("sensitivity"))
                .sorted(Comparator.comparingDouble((Check c) -> c.metrics().sqnrDb())).toList();
        if (ranked.isEmpty()) {
            throw new Fp8q.UsageException(dst + ": no FP8 Linear in a block of a whole model to rank (sensitivity runs Wan and Qwen-Image transformers)");
        }
        PrintWriter out = spec.commandLine().getOut();
        Check all = report.checks().stream().filter(c -> c.scope().equals("model_output") && run.equals(c.run())).findFirst()
                .orElse(null);
        if (all != null) {
            out.printf(Locale.ROOT, "every FP8 Linear at once (%s): model output SQNR %.2f dB%n", run, all.metrics().sqnrDb());
        }
        out.printf("%-5s %-10s %-44s %10s %10s%n", "rank", "component", "layer (alone in FP8, " + run + ")", "SQNR dB", "rel_l2");
        int rank = 0;
        for (Check c : ranked) {
            if (!c.run().equals(run) || rank >= top) {
                continue;
            }
            rank++;
            out.printf(Locale.ROOT, "%-5d %-10s %-44s %10.2f %10.3g%n", rank, c.component().isEmpty() ? "-" : c.component(),
                    c.layer(), c.metrics().sqnrDb(), c.metrics().relL2());
        }
        if (json != null) {
            ObjectMapper m = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
            ObjectNode root = m.createObjectNode();
            ArrayNode rows = root.putArray("ranked");
            for (Check c : ranked) {
                rows.addObject().put("component", c.component()).put("layer", c.layer()).put("block", c.block())
                        .put("run", c.run()).put("sqnr_db", c.metrics().sqnrDb()).put("rel_l2", c.metrics().relL2());
            }
            m.writeValue(json.toFile(), root);
        }
        return ExitCodes.OK;
    }
}
