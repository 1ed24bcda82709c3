package dev.fp8q.converter.report;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fp8q.converter.plan.LayerKind;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.Components;
import dev.fp8q.formats.FormatException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Bytes before and after, by component and by kind of layer, and in total: as a terminal table, Markdown
 * and JSON. With one checkpoint, "after" is absent.
 */
public record MemoryReport(List<Row> rows, boolean hasAfter) {

    /** One component's bytes of one kind; component "" for a plain checkpoint, kind "total" for its sum. */
    public record Row(String component, String kind, long before, long after) {}

    public static MemoryReport of(Path before, Path after) throws FormatException {
        Map<String, Map<LayerKind, long[]>> sums = new LinkedHashMap<>();
        add(sums, before, 0);
        if (after != null) {
            add(sums, after, 1);
        }
        List<Row> rows = new ArrayList<>();
        long tb = 0;
        long ta = 0;
        for (var c : sums.entrySet()) {
            long cb = 0;
            long ca = 0;
            for (LayerKind k : LayerKind.values()) {
                long[] v = c.getValue().get(k);
                if (v != null) {
                    rows.add(new Row(c.getKey(), k.label(), v[0], v[1]));
                    cb += v[0];
                    ca += v[1];
                }
            }
            if (sums.size() > 1) {
                rows.add(new Row(c.getKey(), "total", cb, ca));
            }
            tb += cb;
            ta += ca;
        }
        rows.add(new Row("", "TOTAL", tb, ta));
        return new MemoryReport(rows, after != null);
    }

    private static void add(Map<String, Map<LayerKind, long[]>> sums, Path path, int slot) throws FormatException {
        List<Components.Component> components = Components.of(path);
        for (Components.Component c : components) {
            if (components.size() > 1 && !readable(c)) {
                continue; // a file beside the model that holds no tensors fp8q reads (an optimizer state, say)
            }
            try (Checkpoint cp = Checkpoint.open(c.path())) {
                Map<LayerKind, long[]> m = sums.computeIfAbsent(c.name(), k -> new LinkedHashMap<>());
                for (Checkpoint.Tensor t : cp.tensors()) {
                    m.computeIfAbsent(LayerKind.of(t.name()), k -> new long[2])[slot] += t.entry().byteSize();
                }
            }
        }
    }

    private static boolean readable(Components.Component c) {
        try (Checkpoint cp = Checkpoint.open(c.path())) {
            return true;
        } catch (FormatException | RuntimeException e) {
            return false;
        }
    }

    public Row total() {
        return rows.getLast();
    }

    public String table() {
        StringBuilder sb = new StringBuilder();
        String fmt = hasAfter ? "%-18s %-11s %12s %12s %8s%n" : "%-18s %-11s %12s%n";
        sb.append(hasAfter ? String.format(fmt, "component", "kind", "before", "after", "ratio")
                : String.format(fmt, "component", "kind", "bytes"));
        for (Row r : rows) {
            String comp = r.component().isEmpty() ? "-" : r.component();
            sb.append(hasAfter ? String.format(Locale.ROOT, fmt, comp, r.kind(), human(r.before()), human(r.after()), ratio(r))
                    : String.format(Locale.ROOT, fmt, comp, r.kind(), human(r.before())));
        }
        if (hasAfter) {
            Row t = total();
            sb.append(String.format(Locale.ROOT, "saved %s (%.1f%%)%n", human(t.before() - t.after()),
                    t.before() == 0 ? 0.0 : 100.0 * (t.before() - t.after()) / t.before()));
        }
        return sb.toString();
    }

    public String markdown() {
        StringBuilder sb = new StringBuilder(hasAfter ? "| component | kind | before | after | ratio |\n| --- | --- | ---: | ---: | ---: |\n"
                : "| component | kind | bytes |\n| --- | --- | ---: |\n");
        for (Row r : rows) {
            String comp = r.component().isEmpty() ? "-" : r.component();
            sb.append(hasAfter ? "| " + comp + " | " + r.kind() + " | " + human(r.before()) + " | " + human(r.after()) + " | " + ratio(r) + " |\n"
                    : "| " + comp + " | " + r.kind() + " | " + human(r.before()) + " |\n");
        }
        return sb.toString();
    }

    public String json() {
        ObjectMapper m = new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT);
        ObjectNode root = m.createObjectNode();
        ArrayNode a = root.putArray("rows");
        for (Row r : rows) {
            ObjectNode n = a.addObject().put("component", r.component()).put("kind", r.kind()).put("before_bytes", r.before());
            if (hasAfter) {
                n.put("after_bytes", r.after());
            }
        }
        return root.toPrettyString();
    }

    private static String ratio(Row r) {
        return r.before() == 0 ? "-" : String.format(Locale.ROOT, "%.3f", (double) r.after() / r.before());
    }

    public static String human(long bytes) {
        if (bytes < 1024) {
            return bytes + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.2f %s", v, units[u]);
    }
}
