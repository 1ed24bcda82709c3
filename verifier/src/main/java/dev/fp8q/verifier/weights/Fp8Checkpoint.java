package dev.fp8q.verifier.weights;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.Fp8Names;
import dev.fp8q.formats.FormatException.Rule;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.manifest.Manifest;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.IntStream;

/**
 * One converted component as a runtime sees it: FP8 E4M3 weights with their dequantization scales found
 * through the manifest or, for checkpoints other tools made, by the layouts' naming conventions.
 * Tensors that are not FP8 read as they were written (a preserved tensor cast to BF16 reads as BF16).
 */
public final class Fp8Checkpoint {

    /** Scale names beside "<w>": fp8q, ComfyUI, compressed-tensors, ModelOpt, HF ("_scale"); HF block ("_scale_inv"). */
    private static final List<String> SCALE_SUFFIXES = List.of("_scale", "_scale_inv");

    private final Checkpoint checkpoint;
    private final Map<String, Manifest.TensorRecord> records;

    public Fp8Checkpoint(Checkpoint checkpoint, List<Manifest.TensorRecord> records) {
        this.checkpoint = checkpoint;
        this.records = new HashMap<>();
        for (Manifest.TensorRecord r : records) {
            this.records.put(r.name(), r);
        }
    }

    public Checkpoint checkpoint() {
        return checkpoint;
    }

    public Optional<Checkpoint.Tensor> tensor(String name) {
        return checkpoint.tensor(name);
    }

    public boolean isFp8(String name) {
        return checkpoint.tensor(name).map(t -> t.entry().dtype() == DType.F8_E4M3).orElse(false);
    }

    /** Names of every FP8 E4M3 weight (not ComfyUI's legacy marker), in checkpoint order. */
    public List<String> fp8Names() {
        List<String> out = new ArrayList<>();
        for (Checkpoint.Tensor t : checkpoint.tensors()) {
            if (t.entry().dtype() == DType.F8_E4M3 && !t.name().equals(Fp8Names.LEGACY_MARKER)) {
                out.add(t.name());
            }
        }
        return out;
    }

    public Optional<Manifest.TensorRecord> record(String name) {
        return Optional.ofNullable(records.get(name));
    }

    /** The scale tensor of an FP8 weight, read as the runtime would. */
    public ScaleGrid scales(String name) throws FormatException {
        Checkpoint.Tensor w = require(name);
        Checkpoint.Tensor s = scaleTensor(name);
        DType sd = s.entry().dtype();
        if (sd == DType.U8 || sd == DType.F8_E8M0) {
            return MxScales.read(w, s);
        }
        float[] values = TensorValues.of(s);
        ScaleGrid grid = ScaleGrid.infer(w.entry().shape(), s.entry().shape(), values);
        if (grid == null) {
            throw new FormatException(Rule.TENSOR_INVALID_INFO, s.shard().path(), s.name(),
                    "scale shape " + java.util.Arrays.toString(s.entry().shape()) + " fits no granularity of weight "
                            + java.util.Arrays.toString(w.entry().shape()));
        }
        for (float v : values) {
            if (!(v > 0) || !Float.isFinite(v)) {
                throw new FormatException(Rule.TENSOR_INVALID_INFO, s.shard().path(), s.name(),
                        "scale " + v + " is not a positive finite number");
            }
        }
        return grid;
    }

    /** The name of an FP8 weight's scale tensor (manifest first, then the layouts' naming). */
    public String scaleName(String name) throws FormatException {
        return scaleTensor(name).name();
    }

    private Checkpoint.Tensor scaleTensor(String name) throws FormatException {
        Manifest.TensorRecord r = records.get(name);
        if (r != null && r.scaleTensor() != null) {
            return checkpoint.tensor(r.scaleTensor()).orElseThrow(() -> new FormatException(Rule.TENSOR_NOT_FOUND,
                    checkpoint.root(), r.scaleTensor(), "the manifest names it as the scale of " + name));
        }
        List<String> candidates = new ArrayList<>();
        for (String suffix : SCALE_SUFFIXES) {
            candidates.add(name + suffix);
        }
        if (name.endsWith(".weight")) { // ComfyUI legacy: "<layer>.scale_weight"
            candidates.add(name.substring(0, name.length() - "weight".length()) + "scale_weight");
        }
        for (String c : candidates) {
            Optional<Checkpoint.Tensor> t = checkpoint.tensor(c);
            if (t.isPresent()) {
                return t.get();
            }
        }
        throw new FormatException(Rule.TENSOR_NOT_FOUND, checkpoint.root(), name,
                "FP8 weight without a scale (looked for " + String.join(", ", candidates) + ")");
    }

    /** Names a Linear's static activation scale goes by: vLLM, ModelOpt, compressed-tensors, ComfyUI; transformers' fp8. */
    public static final List<String> INPUT_SCALE_SUFFIXES = List.of(".input_scale", ".activation_scale");

    /**
     * The static activation scale of Linear {@code base} ("<base>.input_scale" or transformers'
     * "<base>.activation_scale"), empty when the checkpoint has none; several values (one per fused shard) read as
     * their max, as vLLM's loaders take it.
     */
    public Optional<Float> inputScale(String base) throws FormatException {
        for (String suffix : INPUT_SCALE_SUFFIXES) {
            Optional<Checkpoint.Tensor> t = checkpoint.tensor(base + suffix);
            if (t.isPresent()) {
                float max = 0;
                for (float v : TensorValues.of(t.get())) {
                    if (!(v > 0) || !Float.isFinite(v)) {
                        throw new FormatException(Rule.TENSOR_INVALID_INFO, t.get().shard().path(), t.get().name(),
                                "input scale " + v + " is not a positive finite number");
                    }
                    max = Math.max(max, v);
                }
                return max > 0 ? Optional.of(max) : Optional.empty();
            }
        }
        return Optional.empty();
    }

    /** True when some FP8 weight of the checkpoint has a static activation scale. */
    public boolean hasInputScales() {
        for (String n : fp8Names()) {
            if (n.endsWith(".weight")) {
                String base = n.substring(0, n.length() - ".weight".length());
                if (INPUT_SCALE_SUFFIXES.stream().anyMatch(s -> checkpoint.tensor(base + s).isPresent())) {
                    return true;
                }
            }
        }
        return false;
    }

    /** The values a runtime computes with: FP8 codes times their scales, or the stored values. */
    public float[] values(String name) throws FormatException {
        Checkpoint.Tensor t = require(name);
        if (t.entry().dtype() != DType.F8_E4M3) {
            return TensorValues.of(t);
        }
        ScaleGrid grid = scales(name);
        var seg = t.data();
        float[] out = new float[Math.toIntExact(t.entry().numel())];
        IntStream.range(0, (out.length + 65535) >>> 16).parallel().forEach(c -> {
            for (int i = c << 16, end = Math.min(out.length, i + 65536); i < end; i++) {
                out[i] = E4M3.decode(seg.get(ValueLayout.JAVA_BYTE, i)) * grid.scaleOf(i);
            }
        });
        return out;
    }

    /** The tensor, or TENSOR_NOT_FOUND naming it. */
    public Checkpoint.Tensor require(String name) throws FormatException {
        return checkpoint.tensor(name).orElseThrow(
                () -> new FormatException(Rule.TENSOR_NOT_FOUND, checkpoint.root(), name, "not in the FP8 checkpoint"));
    }
}
