package dev.fp8q.verifier.check;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.Fp8Names;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.formats.safetensors.TensorEntry;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;

/**
 * Whether SRC and DST of one component are one model: same tensor names (apart from the layouts' scale tensors),
 * same shapes, and preserved tensors equal. Without it a foreign pair either passes (preserved tensors are never
 * compared elsewhere) or fails deep inside the block math.
 */
public final class PairCheck {

    /** Tensors the FP8 layouts add beside the weights (FORMATS.md section 2). */
    private static final List<String> SCALE_SUFFIXES =
            List.of(".weight_scale", ".weight_scale_inv", ".scale_weight", ".input_scale", ".comfy_quant");
    private static final int NAMED = 3;

    /** swapped: SRC holds FP8 E4M3 tensors and DST none. differences: what differs, most telling first. */
    public record Result(boolean swapped, List<String> differences) {

        public boolean oneModel() {
            return !swapped && differences.isEmpty();
        }

        /** One line for the user: the mistake, the first few differences and how many more. */
        public String message(String component) {
            String where = component.isEmpty() ? "" : "component '" + component + "': ";
            if (swapped) {
                return where + "SRC and DST are swapped: SRC holds FP8 E4M3 tensors and DST none "
                        + "(give the original checkpoint first: verify SRC DST)";
            }
            String named = String.join("; ", differences.subList(0, Math.min(NAMED, differences.size())));
            int more = differences.size() - NAMED;
            return where + "SRC and DST are not one model: " + named + (more > 0 ? "; " + more + " more" : "");
        }
    }

    private PairCheck() {}

    public static Result of(Checkpoint source, Checkpoint fp8, List<Manifest.TensorRecord> records) {
        if (hasFp8(source) && !hasFp8(fp8)) {
            return new Result(true, List.of());
        }
        Map<String, Manifest.TensorRecord> byName = new HashMap<>();
        records.forEach(r -> byName.put(r.name(), r));
        Set<String> scales = records.stream().filter(r -> "scale".equals(r.action())).map(Manifest.TensorRecord::name)
                .collect(Collectors.toSet());
        List<String> shapes = new ArrayList<>();
        List<String> onlySrc = new ArrayList<>();
        List<String> onlyDst = new ArrayList<>();
        List<String> bytes = new ArrayList<>();
        for (Checkpoint.Tensor s : source.tensors()) {
            if (isScale(s.name(), scales)) {
                continue;
            }
            var d = fp8.tensor(s.name());
            if (d.isEmpty()) {
                onlySrc.add(s.name() + " only in SRC");
            } else if (!Arrays.equals(s.entry().shape(), d.get().entry().shape())) {
                shapes.add(s.name() + " shape " + shape(s.entry()) + " in SRC, " + shape(d.get().entry()) + " in DST");
            } else {
                String diff = preservedDifference(s, d.get(), byName.get(s.name()));
                if (diff != null) {
                    bytes.add(diff);
                }
            }
        }
        for (Checkpoint.Tensor d : fp8.tensors()) {
            if (!isScale(d.name(), scales) && source.tensor(d.name()).isEmpty()) {
                onlyDst.add(d.name() + " only in DST");
            }
        }
        List<String> all = new ArrayList<>(shapes);
        all.addAll(onlySrc);
        all.addAll(onlyDst);
        all.addAll(bytes);
        return new Result(false, List.copyOf(all));
    }

    private static boolean hasFp8(Checkpoint c) {
        return c.tensors().stream().anyMatch(t -> t.entry().dtype() == DType.F8_E4M3
                && !t.name().equals(Fp8Names.LEGACY_MARKER));
    }

    private static boolean isScale(String name, Set<String> scales) {
        return name.equals(Fp8Names.LEGACY_MARKER) || scales.contains(name)
                || SCALE_SUFFIXES.stream().anyMatch(name::endsWith);
    }

    /**
     * Why a preserved tensor (same dtype on both sides, or "preserve" in the manifest) is not the source's, or null.
     * Quantized ones are the weight check's; a cast to BF16 must be the exact rounding the converter does.
     */
    private static String preservedDifference(Checkpoint.Tensor s, Checkpoint.Tensor d, Manifest.TensorRecord r) {
        DType sd = s.entry().dtype();
        DType dd = d.entry().dtype();
        boolean preserved = r != null ? "preserve".equals(r.action()) : sd == dd;
        if (!preserved) {
            return null;
        }
        long at;
        if (sd == dd) {
            at = s.data().mismatch(d.data());
            at = at < 0 ? -1 : at * 8 / Math.max(1, sd.bits());
        } else if (dd == DType.BF16 && (sd == DType.F32 || sd == DType.F16)) {
            at = bf16Mismatch(s.data(), sd, d.data(), s.entry().numel());
        } else {
            return s.name() + " preserved as " + dd + " from " + sd + " (only a cast to BF16 is expected)";
        }
        return at < 0 ? null : s.name() + " values differ (preserved; first at element " + at + ")";
    }

    /** First element whose BF16 is not the round-to-nearest-even of the source's, or -1. */
    private static long bf16Mismatch(MemorySegment src, DType dtype, MemorySegment bf16, long n) {
        for (long i = 0; i < n; i++) {
            if (Elements.floatToBf16(Elements.get(src, dtype, i)) != bf16.getAtIndex(Elements.SHORT, i)) {
                return i;
            }
        }
        return -1;
    }

    private static String shape(TensorEntry e) {
        return Arrays.stream(e.shape()).mapToObj(Long::toUnsignedString).collect(Collectors.joining(",", "[", "]"));
    }
}
