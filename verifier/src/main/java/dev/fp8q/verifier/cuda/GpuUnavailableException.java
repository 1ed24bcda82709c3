package dev.fp8q.verifier.cuda;

/** No usable GPU: no CUDA driver, no device, or one without FP8 tensor cores. The message says which. */
public final class GpuUnavailableException extends Exception {

    public GpuUnavailableException(String message) {
        super(message);
    }
}
