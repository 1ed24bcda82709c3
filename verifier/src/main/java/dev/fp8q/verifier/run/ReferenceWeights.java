package dev.fp8q.verifier.run;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import dev.fp8q.verifier.weights.TensorValues;

/** The source checkpoint's weights, float32 math: the reference run. */
public final class ReferenceWeights implements RunWeights {

    private final Checkpoint source;

    public ReferenceWeights(Checkpoint source) {
        this.source = source;
    }

    @Override
    public float[] tensor(String name) throws FormatException {
        return TensorValues.of(require(name));
    }

    @Override
    public boolean has(String name) {
        return source.tensor(name).isPresent();
    }

    @Override
    public float[] linear(String base, float[] x, int rows) throws FormatException {
        Checkpoint.Tensor w = require(base + ".weight");
        float[] bias = has(base + ".bias") ? tensor(base + ".bias") : null;
        return Linear.apply(x, rows, TensorValues.of(w), (int) w.entry().dim(0), bias);
    }

    private Checkpoint.Tensor require(String name) throws FormatException {
        return source.tensor(name).orElseThrow(
                () -> new FormatException(Rule.TENSOR_NOT_FOUND, source.root(), name, "not in the source checkpoint"));
    }
}
