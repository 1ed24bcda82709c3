package dev.fp8q.converter.quant;

/**
 * A power of two p that brings a tensor's range (up to 448 * scale) near 1, so float32 squares of x * p
 * neither overflow nor underflow; lane sums are then added in lane order in float64 and divided by p^2.
 */
record StatsScale(float p, double unscale) {

    static StatsScale of(float scale) {
        int e = Math.max(-126, Math.min(126, -Math.getExponent(scale) - 9)); // 448 * scale < 2^(exp + 9)
        return new StatsScale(Math.scalb(1f, e), Math.scalb(1.0, -2 * e));
    }

    double sumLanes(float[] lanes) {
        double s = 0;
        for (float v : lanes) {
            s += v;
        }
        return s * unscale;
    }
}
