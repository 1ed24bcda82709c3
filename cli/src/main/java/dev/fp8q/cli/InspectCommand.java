package dev.fp8q.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fp8q.converter.model.ModelDetector;
import dev.fp8q.converter.report.MemoryReport;
import dev.fp8q.converter.model.ModelInfo;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.Components;
import dev.fp8q.formats.DType;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** fp8q inspect: tensors, dtypes, bytes, and the detected model, of a checkpoint or release folder. */
@Command(name = "inspect", mixinStandardHelpOptions = true,
        description = "Tensors, dtypes, shapes and bytes of a checkpoint; the detected model family and variant.")
final class InspectCommand implements Callable<Integer> {

    @Parameters(arity = "0..1", paramLabel = "PATH",
            description = ".safetensors file, sharded folder, index file, or release folder (default: the embedded tiny Wan checkpoint)")
    Path path;

    @Option(names = "--json", description = "Machine-readable output.")
    boolean json;

    @Option(names = "--key", paramLabel = "KEY", description = "In a .pth that nests its state dict, the top-level key that holds it.")
    String pthKey;

    @Option(names = "--summary", description = "Totals and detection only, no per-tensor table.")
    boolean summary;

    @Spec
    CommandSpec spec;

    private static final ObjectMapper JSON = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);

    record DTypeTotal(int tensors, long bytes, long params) {}

    @Override
    public Integer call() throws Exception {
        Path target = path != null ? path : Inputs.embeddedDefault();
        PrintWriter out = spec.commandLine().getOut();
        ObjectNode root = JSON.createObjectNode();
        root.put("path", target.toString());
        ArrayNode comps = root.putArray("components");
        for (Components.Component c : Components.of(target)) {
            try (Checkpoint cp = Checkpoint.open(c.path(), pthKey)) {
                comps.add(describe(c, cp, out));
            }
        }
        if (json) {
            out.println(JSON.writeValueAsString(root));
        }
        return ExitCodes.OK;
    }

    private ObjectNode describe(Components.Component c, Checkpoint cp, PrintWriter out) {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        Map<DType, DTypeTotal> totals = new EnumMap<>(DType.class);
        long bytes = 0;
        long params = 0;
        for (Checkpoint.Tensor t : cp.tensors()) {
            shapes.put(t.name(), t.entry().shape());
            DTypeTotal d = totals.getOrDefault(t.entry().dtype(), new DTypeTotal(0, 0, 0));
            totals.put(t.entry().dtype(), new DTypeTotal(d.tensors + 1, d.bytes + t.entry().byteSize(),
                    d.params + t.entry().numel()));
            bytes += t.entry().byteSize();
            params += t.entry().numel();
        }
        ModelInfo model = ModelDetector.detect(shapes);
        ObjectNode node = JSON.createObjectNode();
        node.put("component", c.name());
        node.put("path", c.path().toString());
        ArrayNode files = node.putArray("files");
        cp.shards().forEach(s -> files.add(s.path().getFileName().toString()));
        node.put("sharded", cp.index().isPresent());
        node.set("model", JSON.valueToTree(model));
        node.put("tensors", cp.size());
        node.put("parameters", params);
        node.put("bytes", bytes);
        ObjectNode dt = node.putObject("dtypes");
        totals.forEach((k, v) -> dt.set(k.name(), JSON.valueToTree(v)));
        Map<String, String> meta = cp.shards().getFirst().metadata();
        if (meta != null) {
            node.set("metadata", JSON.valueToTree(meta));
        }
        ArrayNode ts = node.putArray("tensor_list");
        for (Checkpoint.Tensor t : sorted(cp)) {
            ObjectNode tn = ts.addObject();
            tn.put("name", t.name());
            tn.put("dtype", t.entry().dtype().name());
            ArrayNode sh = tn.putArray("shape");
            for (long d : t.entry().shape()) {
                sh.add(d);
            }
            tn.put("bytes", t.entry().byteSize());
            tn.put("file", t.shard().path().getFileName().toString());
        }
        if (!json) {
            print(out, c, cp, model, totals, bytes, params);
        }
        return node;
    }

    private void print(PrintWriter out, Components.Component c, Checkpoint cp, ModelInfo model,
            Map<DType, DTypeTotal> totals, long bytes, long params) {
        String title = c.name().isEmpty() ? c.path().toString() : c.name() + " (" + c.path() + ")";
        out.println("== " + title);
        out.printf("files      %d%s%n", cp.shards().size(), cp.index().isPresent() ? " (sharded, with index)" : "");
        out.printf("model      %s%n", model.describe());
        out.printf("tensors    %d, %,d parameters, %s%n", cp.size(), params, MemoryReport.human(bytes));
        out.println();
        out.printf("%-12s %8s %16s %12s%n", "dtype", "tensors", "parameters", "bytes");
        totals.forEach((k, v) -> out.printf("%-12s %8d %,16d %12s%n", k, v.tensors, v.params, MemoryReport.human(v.bytes)));
        if (!summary) {
            int w = Math.max(20, cp.tensors().stream().mapToInt(t -> t.name().length()).max().orElse(20));
            out.println();
            boolean many = cp.shards().size() > 1;
            out.printf("%-" + w + "s %-8s %-22s %12s%s%n", "tensor", "dtype", "shape", "bytes", many ? "  file" : "");
            for (Checkpoint.Tensor t : sorted(cp)) {
                out.printf("%-" + w + "s %-8s %-22s %12s%s%n", t.name(), t.entry().dtype(), t.entry().shapeString(),
                        MemoryReport.human(t.entry().byteSize()), many ? "  " + t.shard().path().getFileName() : "");
            }
        }
        out.println();
    }

    /** By name in natural order (blocks.2 before blocks.10), not the files' data order. */
    private static List<Checkpoint.Tensor> sorted(Checkpoint cp) {
        return cp.tensors().stream().sorted(Comparator.comparing(Checkpoint.Tensor::name, NaturalOrder.INSTANCE)).toList();
    }
}
