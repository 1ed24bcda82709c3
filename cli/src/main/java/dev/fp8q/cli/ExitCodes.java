package dev.fp8q.cli;

/** The exit codes every command uses. */
public final class ExitCodes {
    public static final int OK = 0;
    /** verify: a bound was exceeded; check: a tensor's bytes changed. */
    public static final int FAILED_CHECK = 1;
    /** Usage error or unreadable / malformed input. */
    public static final int INPUT_ERROR = 2;
    /** A bug or an environment failure (disk full, out of memory): never silent. */
    public static final int INTERNAL_ERROR = 3;

    private ExitCodes() {}
}
