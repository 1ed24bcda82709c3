package dev.fp8q.verifier.cuda;

import static jcuda.driver.JCudaDriver.cuMemFree;

import jcuda.driver.CUdeviceptr;

/** Device memory from cuMemAlloc (256-byte aligned); freed on close. */
public final class DeviceBuffer implements AutoCloseable {

    private final CUdeviceptr ptr;
    private final long bytes;
    private boolean freed;

    DeviceBuffer(CUdeviceptr ptr, long bytes) {
        this.ptr = ptr;
        this.bytes = bytes;
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
            cuMemFree(ptr);
        }
    }
}
