package dev.fp8q.converter.plan;

/** A plan that cannot be made as asked: a conflict between rules, a bad pattern. One line. */
public final class PlanException extends RuntimeException {
    public PlanException(String message) {
        super(message);
    }
}
