package dev.fp8q.verifier;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.fp8q.verifier.check.Check;
import java.util.List;
import java.util.Map;

/** Everything verify found: what it ran, every check with its figures and bound, and the verdict. */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record VerifyReport(String tool, String version, String source, String fp8, Map<String, Object> settings,
        List<ComponentRun> components, List<Check> checks, List<StaticScale> staticScales, Summary summary) {

    /**
     * How one component was verified: architecture "wan" or "qwen-image" (block reruns) or "per-linear" (an architecture
     * verify cannot run: each sampled Linear checked on its own), and how its inputs were made.
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record ComponentRun(String name, String architecture, String naming, List<Integer> blocks,
            List<String> layers, List<String> notes) {}

    /**
     * verify --whole on a checkpoint with input scales: how well one static scale fits one FP8 Linear. amaxSpread:
     * max / min of its input's amax per timestep (amaxPerTimestep), from the manifest's calibration when it recorded
     * them, else measured on verify's own inputs (spreadFrom); worstInput: the input (timestep and seed) where
     * w8a8_static loses most against dynamic W8A8 on the Linear's reference input, dbLost = dynamicSqnrDb -
     * staticSqnrDb there, clipped the fraction of that input saturated by the static scale.
     */
    @JsonInclude(JsonInclude.Include.NON_NULL)
    public record StaticScale(String component, String layer, Double amaxSpread, String spreadFrom,
            Map<String, Float> amaxPerTimestep, String worstInput, double dynamicSqnrDb, double staticSqnrDb,
            double dbLost, Double clipped) {}

    public record Summary(int checks, int failed, boolean passed, double gflop, double seconds,
            Map<String, Double> phaseSeconds) {}

    public List<Check> failures() {
        return checks.stream().filter(c -> !c.passed()).toList();
    }
}
