package dev.fp8q.verifier.metrics;

/**
 * NUMERICS.md's error metrics of an output o against a reference r, accumulated in float64:
 * rel_l2 = ||o - r|| / ||r||, SQNR dB = -20 log10(rel_l2), cosine = <o, r> / (||o|| ||r||), max_abs.
 * A NaN or infinity in o makes every figure NaN, which no bound accepts.
 */
public record ErrorMetrics(double sqnrDb, double relL2, double cosine, double maxAbs, long count) {

    public static ErrorMetrics of(float[] reference, float[] output) {
        if (reference.length != output.length) {
            throw new IllegalArgumentException(reference.length + " reference values vs " + output.length);
        }
        // Fixed chunks merged in order: the same figures whatever the number of threads.
        int chunks = (reference.length + CHUNK - 1) / CHUNK;
        Accumulator[] parts = new Accumulator[chunks];
        java.util.stream.IntStream.range(0, chunks).parallel().forEach(c -> {
            Accumulator a = new Accumulator();
            for (int i = c * CHUNK, end = Math.min(reference.length, i + CHUNK); i < end; i++) {
                a.add(reference[i], output[i]);
            }
            parts[c] = a;
        });
        Accumulator all = new Accumulator();
        for (Accumulator a : parts) {
            all.merge(a);
        }
        return all.result();
    }

    private static final int CHUNK = 1 << 16;

    /** Running sums, for data that arrives in pieces. */
    public static final class Accumulator {
        private double rr;
        private double oo;
        private double ro;
        private double dd;
        private double maxAbs;
        private long count;
        private boolean nonFinite;

        public void add(double r, double o) {
            if (!Double.isFinite(o)) {
                nonFinite = true;
            }
            double d = o - r;
            rr += r * r;
            oo += o * o;
            ro += r * o;
            dd += d * d;
            maxAbs = Math.max(maxAbs, Math.abs(d));
            count++;
        }

        /** Sums a caller accumulated itself over count values (a hot loop that keeps them in registers). */
        public void addSums(double rr, double oo, double ro, double dd, double maxAbs, long count, boolean nonFinite) {
            this.rr += rr;
            this.oo += oo;
            this.ro += ro;
            this.dd += dd;
            this.maxAbs = Math.max(this.maxAbs, maxAbs);
            this.count += count;
            this.nonFinite |= nonFinite;
        }

        public void merge(Accumulator other) {
            rr += other.rr;
            oo += other.oo;
            ro += other.ro;
            dd += other.dd;
            maxAbs = Math.max(maxAbs, other.maxAbs);
            count += other.count;
            nonFinite |= other.nonFinite;
        }

        public ErrorMetrics result() {
            if (nonFinite) {
                return new ErrorMetrics(Double.NaN, Double.NaN, Double.NaN, Double.NaN, count);
            }
            double relL2 = rr == 0 ? (dd == 0 ? 0 : Double.POSITIVE_INFINITY) : Math.sqrt(dd / rr);
            double sqnr = dd == 0 ? Double.POSITIVE_INFINITY : 10 * Math.log10(rr / dd);
            double cosine = rr == 0 || oo == 0 ? (dd == 0 ? 1 : 0) : ro / Math.sqrt(rr * oo);
            return new ErrorMetrics(sqnr, relL2, cosine, maxAbs, count);
        }
    }
}
