package dev.fp8q.verifier.cuda;

import java.util.function.Consumer;
import jcuda.driver.CUdeviceptr;

/** Device memory from cuMemAlloc (256-byte aligned); given back to its device's pool on close. */
public final class DeviceBuffer implements AutoCloseable {

    private final CUdeviceptr ptr;
    private final long bytes;
    private final Consumer<DeviceBuffer> release;
    private boolean freed;

    DeviceBuffer(CUdeviceptr ptr, long bytes, Consumer<DeviceBuffer> release) {
        this.ptr = ptr;
        this.bytes = bytes;
        this.release = release;
    }

    /** The allocation itself, for the pool (valid after close). */
    CUdeviceptr raw() {
        return ptr;
    }

    CUdeviceptr ptr() {
        if (freed) {
            throw new IllegalStateException("device buffer used after close");
        }
        return ptr;
    }

    public long bytes() {
        return bytes;
    }

    @Override
    public void close() {
        if (!freed) {
            freed = true;
            release.accept(this);
        }
    }
}
