package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.formats.manifest.Manifest;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** plan --budget-db: keeps the planted layer, its rules file converts to the planned set, and verify confirms the budget. */
class ErrorBudgetTest {

    static final String[] INPUTS = {"--grid", "2,2,2", "--context-tokens", "4", "--timesteps", "500"};

    static double modelOutput(Path src, Path dst, Path json) throws Exception {
        DropInTest.ok("verify", "--quiet", "--whole", "--device", "cpu", "--weights", "none", "--grid", "2,2,2",
                "--context-tokens", "4", "--timesteps", "500", "--json", json.toString(), src.toString(), dst.toString());
        for (JsonNode c : new ObjectMapper().readTree(json.toFile()).get("checks")) {
            if (c.get("scope").asText().equals("model_output") && c.get("run").asText().equals("weight_only")) {
                return c.get("metrics").get("sqnr_db").asDouble();
            }
        }
        throw new AssertionError("no model_output check");
    }

    @Test
    void theBudgetKeepsThePlantedLayerAndConvertWithItsRulesMeetsIt(@TempDir Path dir) throws Exception {
        Path src = SensitivityTest.planted(dir);
        Path all = dir.resolve("all.safetensors");
        DropInTest.ok("convert", "--quiet", src.toString(), all.toString());
        double everything = modelOutput(src, all, dir.resolve("a.json"));
        double budget = everything + 2; // the preset alone misses it: something must stay in BF16

        Path rules = dir.resolve("rules.json");
        Path curve = dir.resolve("curve.svg");
        CliRun plan = DropInTest.ok(concat(List.of("plan", "--budget-db", String.valueOf(budget), "--emit-rules",
                rules.toString(), "--curve", curve.toString()), INPUTS, src.toString()));
        assertTrue(plan.out().contains("keep " + SensitivityTest.PLANTED + " "), plan.out());
        // the plot: one point per measured row of the table (the all-kept row has no finite SQNR), the plan marked
        org.w3c.dom.Document svg = javax.xml.parsers.DocumentBuilderFactory.newInstance().newDocumentBuilder()
                .parse(curve.toFile());
        assertEquals("svg", svg.getDocumentElement().getTagName());
        long rows = plan.out().lines().filter(l -> l.matches("^\\d+\\s+.*\\d+\\.\\d\\d$")).count();
        org.w3c.dom.NodeList circles = svg.getElementsByTagName("circle");
        assertEquals(rows, circles.getLength(), plan.out());
        assertTrue(rows >= 3, "0, 1, 2, ... layers kept: " + rows);
        int marked = 0;
        for (int i = 0; i < circles.getLength(); i++) {
            marked += ((org.w3c.dom.Element) circles.item(i)).getAttribute("fill").equals("#c00") ? 1 : 0;
        }
        assertEquals(1, marked, "the planned set is marked");
        JsonNode r = new ObjectMapper().readTree(rules.toFile());
        assertTrue(r.get("label").asText().startsWith("budget:weight_only>="), r.toString());

        Path kept = dir.resolve("kept.safetensors");
        DropInTest.ok("convert", "--quiet", "--rules", rules.toString(), src.toString(), kept.toString());
        Manifest m = Manifest.read(Manifest.locate(kept));
        int budgetRules = 0;
        for (Manifest.TensorRecord t : m.tensors()) {
            if (t.rule().startsWith("budget:")) {
                budgetRules++;
                assertEquals("preserve", t.action(), t.name());
            }
        }
        assertEquals(r.get("ignore").size(), budgetRules, "the planned set exactly, named by the budget");
        assertTrue(m.tensors().stream().anyMatch(t -> t.name().equals(SensitivityTest.PLANTED + ".weight")
                && t.rule().startsWith("budget:")));
        double confirmed = modelOutput(src, kept, dir.resolve("k.json"));
        assertTrue(confirmed >= budget, "verify on the converted checkpoint meets the budget: " + confirmed + " >= " + budget);
    }

    private static String[] concat(List<String> head, String[] mid, String last) {
        List<String> out = new java.util.ArrayList<>(head);
        out.addAll(List.of(mid));
        out.add(last);
        return out.toArray(String[]::new);
    }
}
