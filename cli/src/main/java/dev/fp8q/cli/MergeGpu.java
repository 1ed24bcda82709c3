package dev.fp8q.cli;

import dev.fp8q.formats.lora.MergeDevice;
import dev.fp8q.verifier.Verifier;
import dev.fp8q.verifier.cuda.CudaLoraMerge;
import dev.fp8q.verifier.cuda.GpuUnavailableException;
import java.util.concurrent.CompletableFuture;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * The GPU for convert --lora's merges, as --device says: cuda opens it now (and fails without one), auto opens it in
 * the background while the conversion starts (the driver, the PTX and the self-check take about half a second) and
 * gives null, the CPU, when there is none (saying so only when a GPU was found but could not be used). Closing it closes the GPU, once it has opened.
 */
final class MergeGpu implements Supplier<MergeDevice>, AutoCloseable {

    static final MergeGpu NONE = new MergeGpu(CompletableFuture.completedFuture(null));

    private final CompletableFuture<MergeDevice> device;

    private MergeGpu(CompletableFuture<MergeDevice> device) {
        this.device = device;
    }

    static MergeGpu open(Verifier.Device where, Consumer<String> log) {
        return switch (where) {
            case CPU -> NONE;
            case CUDA -> {
                try {
                    yield new MergeGpu(CompletableFuture.completedFuture(opened(CudaLoraMerge.open(), log)));
                } catch (GpuUnavailableException e) {
                    throw new Fp8q.UsageException("--device cuda: " + e.getMessage());
                }
            }
            case AUTO -> new MergeGpu(CompletableFuture.supplyAsync(() -> {
                try {
                    return opened(CudaLoraMerge.open(), log);
                } catch (GpuUnavailableException e) {
                    if (e.gpuPresent()) { // without a GPU, the CPU is the plain case: no line
                        log.accept("LoRA merges on the CPU: " + e.getMessage());
                    }
                    return null;
                } catch (RuntimeException | LinkageError e) {
                    log.accept("LoRA merges on the CPU: the GPU did not open (" + e + ")");
                    return null;
                }
            }, r -> Thread.ofPlatform().daemon().name("fp8q-gpu-open").start(r)));
        };
    }

    private static MergeDevice opened(CudaLoraMerge gpu, Consumer<String> log) {
        dev.fp8q.converter.Trace.mark("GPU open");
        log.accept("LoRA merges on " + gpu.describe());
        return gpu;
    }

    @Override
    public MergeDevice get() {
        return device.join();
    }

    @Override
    public void close() {
        MergeDevice d = device.join();
        if (d != null) {
            d.close();
        }
    }
}
