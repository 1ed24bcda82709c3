package dev.fp8q.verifier;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.fp8q.verifier.check.Check;
import java.util.List;
import java.util.Map;

/** Everything verify found: what it ran, every check with its figures and bound, and the verdict. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record VerifyReport(String tool, String version, String source, String fp8, Map<String, Object> settings,
        List<ComponentRun> components, List<Check> checks, Summary summary) {

    /**
     * How one component was verified: architecture "wan" or "qwen-image" (block reruns) or "per-linear" (an architecture
     * verify cannot run: each sampled Linear checked on its own), and how its inputs were made.
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record ComponentRun(String name, String architecture, String naming, List<Integer> blocks,
            List<String> layers, List<String> notes) {}

    public record Summary(int checks, int failed, boolean passed, double gflop, double seconds,
            Map<String, Double> phaseSeconds) {}

    public List<Check> failures() {
        return checks.stream().filter(c -> !c.passed()).toList();
    }
}
