package dev.fp8q.verifier.run;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.calibrate.InputStats;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Set;

/**
 * The reference run, recording the input of each chosen Linear (the FP8 ones) into its {@link InputStats} before
 * computing it as the reference does. Linears handed the very same input array one after the other (q, k and v
 * of one attention; cross-attention's k and v) are joined into one group: vLLM fuses them and takes the max scale.
 */
public final class CalibratingWeights implements LinearsOver {

    private final RunWeights reference;
    private final Map<String, InputStats> stats = new LinkedHashMap<>();
    private final Map<String, String> groupOf = new LinkedHashMap<>();
    private final InputStats.Pass pass;
    private String step = "";
    private float[] lastInput;
    private String lastLayer;

    public CalibratingWeights(RunWeights reference, Set<String> layers, InputStats.Pass pass, Map<String, InputStats> earlier) {
        this.reference = reference;
        this.pass = pass;
        for (String l : layers) {
            stats.put(l, earlier != null && earlier.containsKey(l) ? earlier.get(l) : new InputStats());
            groupOf.put(l, l);
        }
    }

    /** The input (timestep, sample) the next forward runs: amax is also kept per step. */
    public void step(String name) {
        step = name;
        lastInput = null;
    }

    public Map<String, InputStats> stats() {
        return stats;
    }

    /** Each recorded Linear's group: the first Linear of the run of Linears that shared its input. */
    public Map<String, String> groups() {
        return groupOf;
    }

    @Override
    public RunWeights reference() {
        return reference;
    }

    @Override
    public float[] linear(String base, float[] x, int rows) throws FormatException {
        InputStats s = stats.get(base);
        if (s != null) {
            s.record(pass, step, x);
            if (x == lastInput && lastLayer != null) {
                groupOf.put(base, groupOf.get(lastLayer));
            }
            lastInput = x;
            lastLayer = base;
        }
        return reference.linear(base, x, rows);
    }
}
