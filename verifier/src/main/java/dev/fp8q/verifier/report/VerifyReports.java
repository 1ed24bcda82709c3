package dev.fp8q.verifier.report;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import dev.fp8q.verifier.VerifyReport;
import dev.fp8q.verifier.check.Bound;
import dev.fp8q.verifier.check.Check;
import dev.fp8q.verifier.metrics.ErrorMetrics;
import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import javax.xml.stream.XMLOutputFactory;
import javax.xml.stream.XMLStreamException;
import javax.xml.stream.XMLStreamWriter;

/** The verify report as a terminal table, Markdown, JSON and JUnit XML. */
public final class VerifyReports {

    private static final ObjectMapper JSON = new ObjectMapper()
            .setPropertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(SerializationFeature.INDENT_OUTPUT);

    private VerifyReports() {}

    public static void writeJson(VerifyReport r, Path file) throws IOException {
        JSON.writeValue(file.toFile(), r);
    }

    public static String json(VerifyReport r) throws IOException {
        return JSON.writeValueAsString(r);
    }

    /** JUnit XML: one test suite per scope, one test case per check; failures carry the figures. */
    public static void writeJunit(VerifyReport r, Path file) throws IOException {
        try (Writer w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            XMLStreamWriter x = XMLOutputFactory.newFactory().createXMLStreamWriter(w);
            x.writeStartDocument("UTF-8", "1.0");
            x.writeCharacters("\n");
            x.writeStartElement("testsuites");
            x.writeAttribute("name", "fp8q verify");
            x.writeAttribute("tests", Integer.toString(r.checks().size()));
            x.writeAttribute("failures", Integer.toString(r.summary().failed()));
            x.writeAttribute("time", seconds(r.summary().seconds()));
            for (String scope : scopes(r)) {
                List<Check> in = r.checks().stream().filter(c -> c.scope().equals(scope)).toList();
                x.writeCharacters("\n  ");
                x.writeStartElement("testsuite");
                x.writeAttribute("name", "fp8q.verify." + scope);
                x.writeAttribute("tests", Integer.toString(in.size()));
                x.writeAttribute("failures", Long.toString(in.stream().filter(c -> !c.passed()).count()));
                x.writeAttribute("errors", "0");
                for (Check c : in) {
                    x.writeCharacters("\n    ");
                    x.writeStartElement("testcase");
                    x.writeAttribute("classname", "fp8q.verify." + scope);
                    x.writeAttribute("name", c.name());
                    x.writeAttribute("time", "0");
                    if (!c.passed()) {
                        x.writeStartElement("failure");
                        x.writeAttribute("message", String.join("; ", c.failures()));
                        x.writeAttribute("type", "bound exceeded");
                        x.writeCharacters(figures(c));
                        x.writeEndElement();
                    } else {
                        x.writeStartElement("system-out");
                        x.writeCharacters(figures(c));
                        x.writeEndElement();
                    }
                    x.writeEndElement();
                }
                x.writeCharacters("\n  ");
                x.writeEndElement();
            }
            x.writeCharacters("\n");
            x.writeEndElement();
            x.writeEndDocument();
            x.close();
        } catch (XMLStreamException e) {
            throw new IOException(file + ": " + e.getMessage(), e);
        }
    }

    private static List<String> scopes(VerifyReport r) {
        return r.checks().stream().map(Check::scope).distinct().toList();
    }

    private static String seconds(double s) {
        return String.format(Locale.ROOT, "%.3f", s);
    }

    /** "SQNR 31.52 dB, rel_l2 0.02651, cosine 0.999649, max_abs 0.0123; bound: SQNR >= 25 dB". */
    static String figures(Check c) {
        StringBuilder b = new StringBuilder();
        ErrorMetrics m = c.metrics();
        if (m != null) {
            b.append(String.format(Locale.ROOT, "SQNR %s dB, rel_l2 %.4g, cosine %.6f, max_abs %.4g", db(m.sqnrDb()),
                    m.relL2(), m.cosine(), m.maxAbs()));
        }
        if (c.codesFar() != null) {
            b.append(String.format(Locale.ROOT, ", codes off by one %d, far %d, underflow %.4f%%", c.codesOffByOne(),
                    c.codesFar(), 100 * c.underflow()));
        }
        if (c.bound() != null) {
            b.append("; bound: ").append(bound(c.bound()));
        }
        if (!c.passed()) {
            b.append("; FAILED: ").append(String.join("; ", c.failures()));
        }
        return b.toString();
    }

    static String db(double v) {
        return Double.isInfinite(v) ? "inf" : String.format(Locale.ROOT, "%.2f", v);
    }

    static String bound(Bound b) {
        List<String> parts = new ArrayList<>();
        if (b.minSqnrDb() != null) {
            parts.add("SQNR >= " + trim(b.minSqnrDb()) + " dB");
        }
        if (b.maxRelL2() != null) {
            parts.add("rel_l2 <= " + trim(b.maxRelL2()));
        }
        if (b.minCosine() != null) {
            parts.add("cosine >= " + trim(b.minCosine()));
        }
        if (b.maxCodesFar() != null) {
            parts.add("far codes <= " + b.maxCodesFar());
        }
        if (b.maxCodesOffByOne() != null) {
            parts.add("off-by-one codes <= " + b.maxCodesOffByOne());
        }
        return parts.isEmpty() ? "none" : String.join(", ", parts);
    }

    private static String trim(double v) {
        return v == Math.rint(v) ? Long.toString((long) v) : Double.toString(v);
    }

    /** The terminal table: weights summarized (failures listed), every linear and block check, the verdict. */
    public static String table(VerifyReport r) {
        StringBuilder b = new StringBuilder();
        for (VerifyReport.ComponentRun c : r.components()) {
            b.append(c.name().isEmpty() ? "checkpoint" : c.name()).append(": ").append(c.architecture());
            if (c.naming() != null) {
                b.append(" (").append(c.naming()).append(" naming)");
            }
            if (c.blocks() != null) {
                b.append(", blocks ").append(c.blocks());
            }
            b.append('\n');
            for (String n : c.notes()) {
                b.append("  ").append(n).append('\n');
            }
        }
        weightSummary(r, b);
        String fmt = "%-44s %-11s %8s %10s %10s %10s  %-16s %s%n";
        List<Check> rows = r.checks().stream().filter(c -> !c.scope().equals("weight") && c.metrics() != null).toList();
        if (!rows.isEmpty()) {
            b.append(String.format(Locale.ROOT, fmt, "check", "run", "SQNR dB", "rel_l2", "cosine", "max_abs", "bound",
                    ""));
            for (Check c : rows) {
                ErrorMetrics m = c.metrics();
                String where = (c.component().isEmpty() ? "" : c.component() + ": ")
                        + (c.block() != null ? "block " + c.block() + " " : "")
                        + (c.layer() != null ? shortLayer(c.layer()) : c.scope().replace("block_", ""))
                        + (c.stream() != null ? " (" + c.stream() + ")" : "");
                b.append(String.format(Locale.ROOT, fmt, where, c.run(), db(m.sqnrDb()),
                        String.format(Locale.ROOT, "%.4g", m.relL2()), String.format(Locale.ROOT, "%.6f", m.cosine()),
                        String.format(Locale.ROOT, "%.3g", m.maxAbs()), bound(c.bound()).replace(" dB", ""),
                        c.passed() ? "ok" : "FAIL"));
            }
        }
        staticTable(r, b);
        List<Check> failed = r.failures();
        if (!failed.isEmpty()) {
            b.append("failed:\n");
            for (Check c : failed) {
                b.append("  ").append(c.name()).append(": ").append(String.join("; ", c.failures())).append('\n');
            }
        }
        VerifyReport.Summary s = r.summary();
        b.append(String.format(Locale.ROOT, "%s: %d checks, %d failed; %.1f GFLOP on %s in %.1f s%s%n",
                s.passed() ? "PASS" : "FAIL", s.checks(), s.failed(), s.gflop(), r.settings().get("device"), s.seconds(),
                phases(s.phaseSeconds())));
        return b.toString();
    }

    /** Rows of the terminal's static-scales table: the Linears where static loses most. */
    static final int STATIC_ROWS = 20;

    /** The static scales section, worst first (terminal: the first {@link #STATIC_ROWS}). */
    private static void staticTable(VerifyReport r, StringBuilder b) {
        if (r.staticScales() == null) {
            return;
        }
        List<VerifyReport.StaticScale> rows = worstFirst(r);
        b.append(String.format(Locale.ROOT, "static scales: %d FP8 Linears, dB lost by w8a8_static against dynamic w8a8 "
                + "at the worst input, worst first%s%n", rows.size(),
                rows.size() > STATIC_ROWS ? " (" + STATIC_ROWS + " shown; every Linear in --json / --markdown)" : ""));
        String fmt = "%-44s %12s %-12s %14s %9s %9s %8s %8s%n";
        b.append(String.format(Locale.ROOT, fmt, "linear", "amax spread", "(from)", "worst input", "dynamic", "static",
                "lost dB", "clipped"));
        for (VerifyReport.StaticScale s : rows.subList(0, Math.min(STATIC_ROWS, rows.size()))) {
            b.append(String.format(Locale.ROOT, fmt, (s.component().isEmpty() ? "" : s.component() + ": ") + s.layer(),
                    spread(s), s.spreadFrom(), s.worstInput(), db(s.dynamicSqnrDb()), db(s.staticSqnrDb()),
                    db(s.dbLost()), clipped(s)));
        }
    }

    private static List<VerifyReport.StaticScale> worstFirst(VerifyReport r) {
        return r.staticScales().stream().sorted(Comparator.comparingDouble((VerifyReport.StaticScale s) ->
                Double.isNaN(s.dbLost()) ? Double.NEGATIVE_INFINITY : s.dbLost()).reversed()).toList();
    }

    private static String spread(VerifyReport.StaticScale s) {
        return s.amaxSpread() == null ? "-" : String.format(Locale.ROOT, "%.3fx", s.amaxSpread());
    }

    private static String clipped(VerifyReport.StaticScale s) {
        return s.clipped() == null ? "-" : String.format(Locale.ROOT, "%.3f%%", 100 * s.clipped());
    }

    private static String shortLayer(String layer) {
        return layer.replaceFirst("^(transformer_)?blocks\\.\\d+\\.", "");
    }

    private static String phases(Map<String, Double> p) {
        if (p.isEmpty()) {
            return "";
        }
        List<String> parts = new ArrayList<>();
        p.entrySet().stream().sorted(Map.Entry.comparingByKey())
                .forEach(e -> parts.add(String.format(Locale.ROOT, "%s %.1f s", e.getKey(), e.getValue())));
        return " (" + String.join(", ", parts) + ")";
    }

    private static void weightSummary(VerifyReport r, StringBuilder b) {
        List<Check> w = r.checks().stream().filter(c -> c.scope().equals("weight") && c.metrics() != null).toList();
        if (w.isEmpty()) {
            return;
        }
        Check worst = w.stream().min(Comparator.comparingDouble(c -> Double.isNaN(c.metrics().sqnrDb())
                ? Double.NEGATIVE_INFINITY : c.metrics().sqnrDb())).orElseThrow();
        long exact = w.stream().filter(c -> c.codesFar() == 0 && c.codesOffByOne() == 0).count();
        double maxUnder = w.stream().mapToDouble(Check::underflow).max().orElse(0);
        b.append(String.format(Locale.ROOT,
                "weights: %d FP8 tensors vs source: lowest SQNR %s dB (%s), %d of %d with every code exact, "
                        + "underflow at most %.4f%%%n",
                w.size(), db(worst.metrics().sqnrDb()), worst.layer(), exact, w.size(), 100 * maxUnder));
    }

    /** Markdown: summary line, notes, and a table of every check. */
    public static String markdown(VerifyReport r) {
        StringBuilder b = new StringBuilder("# fp8q verify\n\n");
        VerifyReport.Summary s = r.summary();
        b.append(String.format(Locale.ROOT, "**%s**: %d checks, %d failed. Source `%s`, FP8 `%s`. %.1f GFLOP in %.1f s.%n%n",
                s.passed() ? "PASS" : "FAIL", s.checks(), s.failed(), r.source(), r.fp8(), s.gflop(), s.seconds()));
        for (VerifyReport.ComponentRun c : r.components()) {
            b.append("- ").append(c.name().isEmpty() ? "checkpoint" : "`" + c.name() + "`").append(": ")
                    .append(c.architecture()).append(c.blocks() != null ? ", blocks " + c.blocks() : "").append('\n');
            for (String n : c.notes()) {
                b.append("  - ").append(n).append('\n');
            }
        }
        b.append("\n| check | run | SQNR dB | rel_l2 | cosine | max_abs | codes off/far | bound | result |\n");
        b.append("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | --- |\n");
        for (Check c : r.checks()) {
            ErrorMetrics m = c.metrics();
            b.append("| ").append(c.name().replace("|", "\\|")).append(" | ").append(c.run() == null ? "" : c.run())
                    .append(" | ").append(m == null ? "" : db(m.sqnrDb()))
                    .append(" | ").append(m == null ? "" : String.format(Locale.ROOT, "%.4g", m.relL2()))
                    .append(" | ").append(m == null ? "" : String.format(Locale.ROOT, "%.6f", m.cosine()))
                    .append(" | ").append(m == null ? "" : String.format(Locale.ROOT, "%.3g", m.maxAbs()))
                    .append(" | ").append(c.codesFar() == null ? "" : c.codesOffByOne() + "/" + c.codesFar())
                    .append(" | ").append(c.bound() == null ? "" : bound(c.bound()))
                    .append(" | ").append(c.passed() ? "ok" : "**FAIL**: " + String.join("; ", c.failures()).replace("|", "\\|"))
                    .append(" |\n");
        }
        if (r.staticScales() != null) {
            b.append("\n## Static scales\n\nPer FP8 Linear with an input_scale: the amax spread across timesteps (max / min "
                    + "of the per-timestep amax; from the calibration recorded in the manifest, else measured), and the dB "
                    + "w8a8_static loses against dynamic w8a8 on the Linear's reference input where it loses most. Worst first.\n\n");
            b.append("| linear | amax spread | from | worst input | dynamic w8a8 SQNR dB | w8a8_static SQNR dB | dB lost | clipped |\n");
            b.append("| --- | ---: | --- | --- | ---: | ---: | ---: | ---: |\n");
            for (VerifyReport.StaticScale f : worstFirst(r)) {
                b.append("| ").append(f.component().isEmpty() ? "" : f.component() + ": ").append(f.layer())
                        .append(" | ").append(spread(f)).append(" | ").append(f.spreadFrom())
                        .append(" | ").append(f.worstInput()).append(" | ").append(db(f.dynamicSqnrDb()))
                        .append(" | ").append(db(f.staticSqnrDb())).append(" | ").append(db(f.dbLost()))
                        .append(" | ").append(clipped(f)).append(" |\n");
            }
        }
        return b.toString();
    }
}
