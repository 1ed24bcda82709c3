package dev.fp8q.converter;

/** A conversion refused for a reason the user can fix (DST exists, non-finite values, name clash). One line. */
public final class ConvertException extends Exception {
    public ConvertException(String message) {
        super(message);
    }

    public ConvertException(String message, Throwable cause) {
        super(message, cause);
    }
}
