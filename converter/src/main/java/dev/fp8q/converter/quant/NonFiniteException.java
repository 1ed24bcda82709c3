package dev.fp8q.converter.quant;

/** A tensor to be quantized holds NaN or infinite values. */
public final class NonFiniteException extends Exception {
    private final long count;

    public NonFiniteException(String tensor, long count) {
        super("tensor '" + tensor + "' holds " + count + " NaN/Inf value(s); it cannot be scaled "
                + "(use --nonfinite preserve to keep it in high precision)");
        this.count = count;
    }

    public long count() {
        return count;
    }
}
