package dev.fp8q.verifier.wan;

import dev.fp8q.verifier.run.Linear;
import dev.fp8q.verifier.run.RunWeights;
import java.util.HashMap;
import java.util.Map;

/** Weights held in memory, for block tests: name -> values, and the out-features of each Linear weight. */
final class MapWeights implements RunWeights {

    final Map<String, float[]> values = new HashMap<>();
    final Map<String, Integer> rows = new HashMap<>();

    void put(String name, float[] v, int outFeatures) {
        values.put(name, v);
        rows.put(name, outFeatures);
    }

    @Override
    public float[] tensor(String name) {
        float[] v = values.get(name);
        if (v == null) {
            throw new IllegalArgumentException("no " + name);
        }
        return v;
    }

    @Override
    public boolean has(String name) {
        return values.containsKey(name);
    }

    @Override
    public float[] linear(String base, float[] x, int n) {
        return Linear.apply(x, n, tensor(base + ".weight"), rows.get(base + ".weight"),
                has(base + ".bias") ? tensor(base + ".bias") : null);
    }
}
