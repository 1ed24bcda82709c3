package dev.fp8q.verifier.check;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.fp8q.verifier.metrics.ErrorMetrics;
import java.util.List;

/**
 * One verdict: a scope (weight, linear, block_output, block_update, manifest), where it applies (component,
 * block, layer), which run (weight_only, w8a8; null for weights), the figures, the bound and what broke it.
 * stream: for blocks with two residual streams (Qwen-Image: "image", "text"), which one the block figures are of.
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Check(String component, String scope, Integer block, String layer, String kind, String run,
        ErrorMetrics metrics, Long codesOffByOne, Long codesFar, Double underflow, Bound bound, List<String> failures,
        String stream, Double clipped) {

    /** A check without a clipped fraction. */
    public Check(String component, String scope, Integer block, String layer, String kind, String run,
            ErrorMetrics metrics, Long codesOffByOne, Long codesFar, Double underflow, Bound bound, List<String> failures,
            String stream) {
        this(component, scope, block, layer, kind, run, metrics, codesOffByOne, codesFar, underflow, bound, failures,
                stream, null);
    }

    /** A static-activation Linear check with the fraction of its input that saturated at +-448. */
    public Check withClipped(Double fraction) {
        return new Check(component, scope, block, layer, kind, run, metrics, codesOffByOne, codesFar, underflow, bound,
                failures, stream, fraction);
    }

    public boolean passed() {
        return failures.isEmpty();
    }

    /** "block 19 self_attn.q w8a8" and the like: how reports name the check. */
    public String name() {
        StringBuilder b = new StringBuilder(scope);
        if (!component.isEmpty()) {
            b.insert(0, component + ": ");
        }
        if (block != null) {
            b.append(" block ").append(block);
        }
        if (layer != null) {
            b.append(' ').append(layer);
        }
        if (stream != null) {
            b.append(' ').append(stream);
        }
        if (run != null) {
            b.append(' ').append(run);
        }
        return b.toString();
    }

    public static Check of(String component, String scope, Integer block, String layer, String kind, String run,
            ErrorMetrics m, Long offByOne, Long far, Double underflow, Bound bound) {
        return new Check(component, scope, block, layer, kind, run, m, offByOne, far, underflow, bound,
                bound.violations(m, offByOne, far), null);
    }

    /** A block figure of one stream of a two-stream block. */
    public Check ofStream(String stream) {
        return new Check(component, scope, block, layer, kind, run, metrics, codesOffByOne, codesFar, underflow, bound,
                failures, stream, clipped);
    }

    /** A check that failed without figures (a manifest that disagrees with the files, a missing tensor). */
    public static Check failure(String component, String scope, String layer, String message) {
        return new Check(component, scope, null, layer, null, null, null, null, null, null, null, List.of(message), null);
    }
}
