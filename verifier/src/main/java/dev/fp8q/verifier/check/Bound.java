package dev.fp8q.verifier.check;

import com.fasterxml.jackson.annotation.JsonInclude;
import dev.fp8q.verifier.metrics.ErrorMetrics;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * Limits a check is held to; null fields are not checked. NaN figures fail every limit.
 * Code counts apply to weight checks: codes that differ from the exact encoding of source / scale by one
 * step (another rounding) or by more (damage).
 */
@JsonInclude(JsonInclude.Include.NON_NULL)
public record Bound(Double minSqnrDb, Double maxRelL2, Double minCosine, Long maxCodesOffByOne, Long maxCodesFar) {

    public static final Bound NONE = new Bound(null, null, null, null, null);

    /** This bound with the fields {@code over} sets replacing ours. */
    public Bound overriddenBy(Bound over) {
        return new Bound(over.minSqnrDb != null ? over.minSqnrDb : minSqnrDb,
                over.maxRelL2 != null ? over.maxRelL2 : maxRelL2,
                over.minCosine != null ? over.minCosine : minCosine,
                over.maxCodesOffByOne != null ? over.maxCodesOffByOne : maxCodesOffByOne,
                over.maxCodesFar != null ? over.maxCodesFar : maxCodesFar);
    }

    /** Every limit the figures break, as "SQNR 12.3 dB < 25 dB"; empty when they pass. */
    public List<String> violations(ErrorMetrics m, Long codesOffByOne, Long codesFar) {
        List<String> out = new ArrayList<>();
        if (minSqnrDb != null && !(m.sqnrDb() >= minSqnrDb)) {
            out.add(String.format(Locale.ROOT, "SQNR %.2f dB < %s dB", m.sqnrDb(), fmt(minSqnrDb)));
        }
        if (maxRelL2 != null && !(m.relL2() <= maxRelL2)) {
            out.add(String.format(Locale.ROOT, "rel_l2 %.4g > %s", m.relL2(), fmt(maxRelL2)));
        }
        if (minCosine != null && !(m.cosine() >= minCosine)) {
            out.add(String.format(Locale.ROOT, "cosine %.6f < %s", m.cosine(), fmt(minCosine)));
        }
        if (maxCodesOffByOne != null && codesOffByOne != null && codesOffByOne > maxCodesOffByOne) {
            out.add(codesOffByOne + " codes one step from the exact encoding > " + maxCodesOffByOne);
        }
        if (maxCodesFar != null && codesFar != null && codesFar > maxCodesFar) {
            out.add(codesFar + " codes more than one step from the exact encoding > " + maxCodesFar);
        }
        return out;
    }

    private static String fmt(double v) {
        return v == Math.rint(v) && Math.abs(v) < 1e9 ? Long.toString((long) v) : Double.toString(v);
    }
}
