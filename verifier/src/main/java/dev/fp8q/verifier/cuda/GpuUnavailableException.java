package dev.fp8q.verifier.cuda;

/**
 * No usable GPU: no CUDA driver, no device, or one fp8q cannot use (no FP8 tensor cores, its PTX refused, a failed
 * self-check). The message says which; {@link #gpuPresent()} tells the last kind from the first two.
 */
public final class GpuUnavailableException extends Exception {

    private final boolean gpuPresent;

    public GpuUnavailableException(String message) {
        this(message, false);
    }

    public GpuUnavailableException(String message, boolean gpuPresent) {
        super(message);
        this.gpuPresent = gpuPresent;
    }

    /** Whether a GPU was found but cannot be used. */
    public boolean gpuPresent() {
        return gpuPresent;
    }
}
