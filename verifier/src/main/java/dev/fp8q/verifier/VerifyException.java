package dev.fp8q.verifier;

/** A verify request that cannot run as asked (blocks out of range, components that do not match, bad bounds). */
public final class VerifyException extends Exception {
    public VerifyException(String message) {
        super(message);
    }
}
