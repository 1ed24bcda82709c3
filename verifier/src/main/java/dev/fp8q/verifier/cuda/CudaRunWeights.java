package dev.fp8q.verifier.cuda;

import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.run.RunWeights;

/**
 * A run whose Linears go to the GPU one way (on host or device inputs); tensors, and the Linears the GPU does not
 * take, come from the CPU run. {@link CudaBlockMath} runs the rest of the block on the GPU.
 */
public final class CudaRunWeights implements RunWeights {

    private final RunWeights cpu;
    private final CudaLinears gpu;
    private final CudaLinears.Way way;
    private final String layer;
    private final CudaLinears.Way layerWay;
    private final boolean cpuLinears;

    public CudaRunWeights(RunWeights cpu, CudaLinears gpu, CudaLinears.Way way) {
        this(cpu, gpu, way, null, null, false);
    }

    /** A run whose Linears all run on the CPU (activation schemes the GPU kernels lack), the rest of the block on the GPU. */
    public static CudaRunWeights cpuLinears(RunWeights cpu, CudaLinears gpu) {
        return new CudaRunWeights(cpu, gpu, CudaLinears.Way.W8A8_SIMULATED, null, null, true);
    }

    private CudaRunWeights(RunWeights cpu, CudaLinears gpu, CudaLinears.Way way, String layer, CudaLinears.Way layerWay,
            boolean cpuLinears) {
        this.cpuLinears = cpuLinears;
        this.cpu = cpu;
        this.gpu = gpu;
        this.way = way;
        this.layer = layer;
        this.layerWay = layerWay;
    }

    /**
     * This run with one Linear computed as another run computes it (sensitivity: one layer in FP8, the rest the
     * reference); cpuWeights: the same mix on the CPU, for what the GPU does not take.
     */
    public CudaRunWeights withLayer(RunWeights cpuWeights, String base, CudaRunWeights from) {
        // a layer of a run whose Linears the CPU computes: no GPU way for it (null), the CPU mix computes it
        return new CudaRunWeights(cpuWeights, gpu, way, base, from.cpuLinears ? null : from.way, cpuLinears);
    }

    /** The CPU weights behind this run. */
    public RunWeights cpu() {
        return cpu;
    }

    private CudaLinears.Way wayOf(String base) {
        return base.equals(layer) ? layerWay : way;
    }

    @Override
    public float[] tensor(String name) throws FormatException {
        return cpu.tensor(name);
    }

    @Override
    public boolean has(String name) {
        return cpu.has(name);
    }

    @Override
    public float[] linear(String base, float[] x, int rows) throws FormatException {
        if (cpuLinears || !gpu.supports(base) || wayOf(base) == null) {
            return cpu.linear(base, x, rows);
        }
        return gpu.apply(wayOf(base), base, x, rows);
    }

    /** The same Linear on an input on the device; the caller closes the result. */
    public DeviceBuffer linear(String base, DeviceBuffer x, int rows) throws FormatException {
        if (cpuLinears || !gpu.supports(base) || wayOf(base) == null) {
            CudaDevice d = gpu.device();
            return d.upload(cpu.linear(base, d.download(x, (int) (x.bytes() / 4)), rows));
        }
        return gpu.apply(wayOf(base), base, x, rows);
    }
}
