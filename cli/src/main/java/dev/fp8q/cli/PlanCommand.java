package dev.fp8q.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fp8q.converter.Converter;
import dev.fp8q.converter.SourcePlan;
import dev.fp8q.formats.lora.LoraMerge;
import dev.fp8q.converter.model.ModelInfo;
import dev.fp8q.converter.plan.Action;
import dev.fp8q.converter.quant.Scaling;
import dev.fp8q.converter.plan.Decision;
import dev.fp8q.converter.plan.Preset;
import dev.fp8q.converter.report.MemoryReport;
import dev.fp8q.formats.Components;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** fp8q plan SRC: the dry run. */
@Command(name = "plan", mixinStandardHelpOptions = true,
        description = "Dry run: every tensor's action and the rule that decided it, and the memory it would save.")
final class PlanCommand implements Callable<Integer> {

    @Parameters(arity = "0..1", paramLabel = "SRC", description = "Checkpoint or release folder (default: the embedded tiny Wan checkpoint)")
    Path src;

    @Mixin
    ConversionOptions conversion;

    @Option(names = "--json", description = "Every tensor's decision, machine-readable.")
    boolean json;

    @Option(names = "--compare", description = "Compare presets on memory and on the end-to-end error of the whole model chained (Wan)")
    boolean compare;

    @Option(names = "--presets", split = ",", paramLabel = "PRESET",
            description = "--compare: these presets (default: the family's: wan, wan-ffn-only, wan-modelopt; qwen-image, qwen-image-sglang)")
    List<String> presets;

    @Option(names = "--budget-db", paramLabel = "DB",
            description = "The fewest bytes to keep in high precision for this end-to-end SQNR of the whole model chained (Wan)")
    Double budgetDb;

    @Option(names = "--run", defaultValue = "weight_only", description = "--budget-db: weight_only or w8a8 (default: ${DEFAULT-VALUE})")
    String run;

    @Option(names = "--emit-rules", paramLabel = "FILE", description = "--budget-db: write the kept set as a rules file for convert --rules")
    Path emitRules;

    @Option(names = "--curve", paramLabel = "FILE.svg",
            description = "--budget-db: also plot memory saved against end-to-end SQNR as layers are kept (SVG; more chained runs)")
    Path curve;

    @Option(names = "--scalings", split = ",", paramLabel = "SCALING",
            description = "--compare: these scalings side by side (tensor, channel, block, mx; default: --scaling's)")
    List<String> scalings;

    /** --scalings parsed (with --pow2-scales where it applies), or --scaling alone. */
    private List<Scaling> comparedScalings(Scaling single) {
        if (scalings == null) {
            return List.of(single);
        }
        List<Scaling> out = new java.util.ArrayList<>();
        for (String s : scalings) {
            try {
                out.add(Scaling.parse(s.trim(), single.pow2() && !s.trim().equalsIgnoreCase("mx")));
            } catch (IllegalArgumentException e) {
                throw new Fp8q.UsageException("--scalings: " + e.getMessage());
            }
        }
        return out;
    }

    @Option(names = "--grid", defaultValue = "2,8,8", description = "--compare: video tokens F,H,W (default: ${DEFAULT-VALUE})")
    String grid;

    @Option(names = "--context-tokens", defaultValue = "64", description = "--compare: text rows (default: ${DEFAULT-VALUE})")
    int contextTokens;

    @Option(names = "--timesteps", split = ",", defaultValue = "500", description = "--compare: timesteps 0..1000 (default: ${DEFAULT-VALUE})")
    List<Double> timesteps;

    @Spec
    CommandSpec spec;

    /** Which tensors each LoRA changes, and whether they are quantized or kept. */
    private void loras(LoraMerge loras, SourcePlan plan, ArrayNode json, PrintWriter out) {
        Map<String, Action> actions = new java.util.HashMap<>();
        plan.converted().forEach(p -> p.decisions().forEach(d -> actions.put(d.tensor().name(), d.action())));
        for (LoraMerge.Applied a : loras.applied()) {
            ObjectNode n = json.addObject().put("file", a.file().toString()).put("style", a.style())
                    .put("strength", a.strength()).put("keys_applied", a.keysApplied());
            ArrayNode ts = n.putArray("targets");
            a.targets().forEach(ts::add);
            ArrayNode sk = n.putArray("skipped");
            a.skipped().forEach(sk::add);
            if (!this.json) {
                long q = a.targets().stream().filter(t -> actions.get(t) == Action.QUANTIZE).count();
                out.printf("LoRA %s (%s, strength %s): %d keys change %d tensors (%d quantized, %d kept)%n", a.file(), a.style(),
                        a.strength(), a.keysApplied(), a.targets().size(), q, a.targets().size() - q);
                for (String t : a.targets()) {
                    out.println("  " + (actions.get(t) == Action.QUANTIZE ? "quantize  " : "preserve  ") + t);
                }
                a.skipped().forEach(k -> out.println("  skipped   " + k));
                out.println();
            }
        }
    }

    @Override
    public Integer call() throws Exception {
        Path source = src != null ? src : Inputs.embeddedDefault();
        PrintWriter out = spec.commandLine().getOut();
        ObjectMapper m = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = m.createObjectNode();
        ArrayNode comps = root.putArray("components");
        long before = 0;
        long after = 0;
        Scaling scaling = conversion.scaling();
        if ((compare || budgetDb != null) && !conversion.loras().isEmpty()) {
            throw new Fp8q.UsageException("--lora lists what a LoRA changes in a plain plan; --compare and --budget-db "
                    + "simulate the weights without it");
        }
        try (SourcePlan plan = SourcePlan.of(source, conversion.preset, conversion.userRules(), conversion.components,
                conversion.pthKey); LoraMerge loras = Converter.resolveLoras(plan, conversion.loras(), conversion.loraLenient,
                        n -> spec.commandLine().getErr().println("fp8q: warning: " + n))) {
            if (budgetDb != null) {
                if (!run.equals("weight_only") && !run.equals("w8a8")) {
                    throw new Fp8q.UsageException("--run must be weight_only or w8a8");
                }
                for (SourcePlan.Part part : plan.converted()) {
                    var sim = dev.fp8q.verifier.Simulation.of(part.checkpoint(), RunInputs.parseGrid(grid), contextTokens, 0,
                            timesteps);
                    if (sim.isEmpty()) {
                        throw new Fp8q.UsageException("--budget-db needs the whole model chained, which fp8q runs for Wan and Qwen-Image transformers: "
                                + part.component().path() + " is " + part.model().family());
                    }
                    boolean several = plan.converted().size() > 1; // one file each, named for its component
                    ErrorBudget.plan(part, budgetDb, run, sim.get(), several ? perPart(emitRules, part) : emitRules,
                            several ? perPart(curve, part) : curve, out);
                }
                return ExitCodes.OK;
            }
            if (compare) {
                ArrayNode rows = root.putArray("compare");
                for (SourcePlan.Part part : plan.converted()) {
                    PresetComparison.compare(part, presets == null ? PresetComparison.defaults(part.model().family()) : presets,
                            conversion.userRules(), comparedScalings(scaling), RunInputs.parseGrid(grid), contextTokens, timesteps,
                            json ? new PrintWriter(java.io.Writer.nullWriter()) : out, rows);
                }
                if (json) {
                    out.println(m.writeValueAsString(root));
                }
                return ExitCodes.OK;
            }
            for (SourcePlan.Part part : plan.parts()) {
                Components.Component c = part.component();
                String label = c.name().isEmpty() ? c.path().toString() : c.name();
                if (!part.converted()) {
                    comps.addObject().put("component", c.name()).put("kind", part.kind().label()).put("action", "copy");
                    if (!json) {
                        out.println("== " + label + " (" + part.kind().label() + "): copied unchanged");
                        out.println();
                    }
                    continue;
                }
                Preset preset = part.planner().preset();
                ModelInfo model = part.model();
                List<Decision> ds = part.decisions();
                Map<String, long[]> byRule = new TreeMap<>(); // rule -> count, bytes before, bytes after
                ObjectNode cn = comps.addObject().put("component", c.name()).put("kind", part.kind().label())
                        .put("action", "convert").put("preset", preset.id);
                if (!part.prefix().isEmpty()) {
                    cn.put("key_prefix", part.prefix());
                }
                cn.set("model", m.valueToTree(model));
                ArrayNode ts = cn.putArray("tensors");
                for (Decision d : ds) {
                    long b = d.tensor().byteSize();
                    long a = b;
                    if (d.action() == Action.QUANTIZE) {
                        long[] grid = scaling.grid(d.tensor().shape());
                        a = d.tensor().numel() + (long) scaling.scaleBytes() * grid[0] * grid[1];
                    }
                    long[] v = byRule.computeIfAbsent(d.action().name().toLowerCase() + "  " + d.rule(), k -> new long[3]);
                    v[0]++;
                    v[1] += b;
                    v[2] += a;
                    before += b;
                    after += a;
                    ObjectNode tn = ts.addObject().put("name", d.tensor().name()).put("action", d.action().name().toLowerCase())
                            .put("rule", d.rule()).put("bytes_before", b).put("bytes_after", a);
                    if (loras.targets(d.tensor().name())) {
                        tn.put("lora", true);
                    }
                }
                if (!json) {
                    out.println("== " + label + ": " + model.describe() + ", preset " + preset.id
                            + (part.prefix().isEmpty() ? "" : ", key prefix " + part.prefix()));
                    out.printf("%-44s %8s %12s %12s%n", "action  rule", "tensors", "before", "after");
                    byRule.forEach((k, v) -> out.printf("%-44s %8d %12s %12s%n", k, v[0], MemoryReport.human(v[1]), MemoryReport.human(v[2])));
                    out.println();
                }
            }
            loras(loras, plan, root.putArray("loras"), out);
            plan.notes().forEach(n -> spec.commandLine().getErr().println("fp8q: warning: " + n));
        }
        root.put("bytes_before", before).put("bytes_after", after);
        if (json) {
            out.println(m.writeValueAsString(root));
        } else {
            out.printf("would save %s of %s (%.1f%%): %s after%n", MemoryReport.human(before - after), MemoryReport.human(before),
                    before == 0 ? 0.0 : 100.0 * (before - after) / before, MemoryReport.human(after));
        }
        return ExitCodes.OK;
    }

    /** FILE.ext -> FILE.component.ext, for a source of several components (the A14B experts). */
    private static Path perPart(Path file, SourcePlan.Part part) {
        if (file == null || part.name().isEmpty()) {
            return file;
        }
        String n = file.getFileName().toString();
        int dot = n.lastIndexOf('.');
        String safe = part.name().replace('/', '_');
        return file.resolveSibling(dot > 0 ? n.substring(0, dot) + "." + safe + n.substring(dot) : n + "." + safe);
    }
}
