package dev.fp8q.verifier.cuda;

/** Whether this machine has a GPU fp8q can use (tests and scripts use it to pick what to check). */
public final class Gpus {

    private Gpus() {}

    public static boolean present() {
        try (CudaDevice d = CudaDevice.open()) {
            return true;
        } catch (GpuUnavailableException e) {
            return false;
        }
    }
}
