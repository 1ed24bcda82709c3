package dev.fp8q.verifier;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.FormatException;
import dev.fp8q.verifier.cuda.CudaBlockMath;
import dev.fp8q.verifier.cuda.CudaDevice;
import dev.fp8q.verifier.cuda.CudaKernels;
import dev.fp8q.verifier.cuda.CudaLinears;
import dev.fp8q.verifier.cuda.CudaRunWeights;
import dev.fp8q.verifier.qwen.QwenBlock;
import dev.fp8q.verifier.qwen.QwenInputs;
import dev.fp8q.verifier.run.Fp8Weights;
import dev.fp8q.verifier.run.ProbedWeights;
import dev.fp8q.verifier.run.ReferenceWeights;
import dev.fp8q.verifier.run.RunWeights;
import dev.fp8q.verifier.model.ChainedModels;
import dev.fp8q.verifier.wan.BlockMath;
import dev.fp8q.verifier.wan.CpuBlockMath;
import dev.fp8q.verifier.wan.WanBlock;
import dev.fp8q.verifier.wan.WanInputs;
import dev.fp8q.verifier.weights.ActivationQuantizer.Scheme;
import dev.fp8q.verifier.weights.Fp8Checkpoint;
import dev.fp8q.verifier.weights.ScaleGrid;
import java.util.List;

/**
 * The runs of one component: CPU float32 math, or on a GPU (see {@link CudaLinears}) with the CPU for the rest.
 * w8a8Simulated and gpu are null on the CPU, where W8A8 itself is the float32 simulation. w8a8 quantizes
 * activations by the scheme given (dynamic per tensor when that is static); w8a8Static (null when the checkpoint has
 * no input_scale) by the checkpoint's input scales.
 */
record Runs(RunWeights reference, RunWeights weightOnly, RunWeights w8a8, RunWeights w8a8Simulated,
        RunWeights w8a8Static, ProbedWeights.Prober prober, CudaLinears gpu, CudaBlockMath gpuMath)
        implements AutoCloseable {

    static Runs of(CudaDevice device, Checkpoint source, Fp8Checkpoint fp8, int headDim, List<String> notes)
            throws FormatException {
        return of(device, source, fp8, headDim, notes, Scheme.TENSOR);
    }

    static Runs of(CudaDevice device, Checkpoint source, Fp8Checkpoint fp8, int headDim, List<String> notes,
            Scheme scheme) throws FormatException {
        ReferenceWeights reference = new ReferenceWeights(source);
        Fp8Weights weightOnly = new Fp8Weights(fp8, false);
        // a static scheme is the w8a8_static run; w8a8 beside it stays dynamic per tensor
        scheme = scheme == Scheme.STATIC ? Scheme.TENSOR : scheme;
        Fp8Weights w8a8 = new Fp8Weights(fp8, scheme);
        Fp8Weights statik = fp8.hasInputScales() ? new Fp8Weights(fp8, Scheme.STATIC) : null;
        ProbedWeights.Prober cpu = ProbedWeights.withStatic(ProbedWeights.cpu(w8a8), statik);
        for (String n : fp8.fp8Names()) {
            if (fp8.scales(n).granularity() == ScaleGrid.Granularity.MX) {
                notes.add("MXFP8 Linears: the MX GEMM simulated exactly in float32 on the CPU (weights as stored, W8A8 "
                        + "inputs MX-quantized per 32 values along K with E8M0 scales); Hopper GPUs such as the H200 have no "
                        + "MX tensor cores (Blackwell's), so no hardware run of them");
                break;
            }
        }
        if (device == null) {
            return new Runs(reference, weightOnly, w8a8, null, statik, cpu, null, null);
        }
        if (scheme != Scheme.TENSOR) {
            CudaLinears linears = new CudaLinears(new CudaKernels(device), source, fp8);
            notes.add("on " + device.describe() + ": activation scheme " + scheme.id() + " has no GPU kernel: every "
                    + "Linear on the CPU in float32, the rest of the block on the GPU");
            return new Runs(CudaRunWeights.cpuLinears(reference, linears), CudaRunWeights.cpuLinears(weightOnly, linears),
                    CudaRunWeights.cpuLinears(w8a8, linears), null,
                    statik == null ? null : CudaRunWeights.cpuLinears(statik, linears), cpu, linears,
                    new CudaBlockMath(linears.kernels(), headDim));
        }
        CudaLinears linears = new CudaLinears(new CudaKernels(device), source, fp8);
        notes.add("on " + device.describe() + ": Linears of the reference and weight-only runs on BF16 tensor cores "
                + "(activations rounded to BF16), W8A8 on FP8 tensor cores, w8a8_simulated the same W8A8 in float32 "
                + "on CUDA cores (what the CPU computes), attention and the elementwise ops in float32: the whole block on the GPU");
        if (fp8.fp8Names().stream().anyMatch(n -> source.tensor(n).map(t -> t.entry().dtype() != DType.BF16).orElse(false))) {
            notes.add("the source is not BF16: the GPU's reference rounds its weights to BF16");
        }
        for (String n : fp8.fp8Names()) {
            if (fp8.scales(n).granularity() == ScaleGrid.Granularity.BLOCK) {
                notes.add("block-scaled Linears run on the CPU (the GPU kernels take per-tensor and per-channel scales)");
                break;
            }
        }
        if (statik != null) {
            notes.add("w8a8_static: its Linears run on the CPU in float32 (the GPU kernels scale activations dynamically)");
        }
        ProbedWeights.Prober gpuWays = (base, x, rows) -> !weightOnly.quantized(base) ? null
                : !linears.supports(base) ? ProbedWeights.cpu(w8a8).fp8Ways(base, x, rows)
                : new float[][] {linears.apply(CudaLinears.Way.WEIGHT_ONLY, base, x, rows),
                        linears.apply(CudaLinears.Way.W8A8, base, x, rows),
                        linears.apply(CudaLinears.Way.W8A8_SIMULATED, base, x, rows)};
        ProbedWeights.Prober prober = ProbedWeights.withStatic(gpuWays, statik);
        return new Runs(new CudaRunWeights(reference, linears, CudaLinears.Way.REFERENCE),
                new CudaRunWeights(weightOnly, linears, CudaLinears.Way.WEIGHT_ONLY),
                new CudaRunWeights(w8a8, linears, CudaLinears.Way.W8A8),
                new CudaRunWeights(w8a8, linears, CudaLinears.Way.W8A8_SIMULATED),
                statik == null ? null : CudaRunWeights.cpuLinears(statik, linears), prober, linears,
                new CudaBlockMath(linears.kernels(), headDim));
    }

    /** One run of the block: on the GPU when there is one, else the CPU. */
    float[] forward(WanBlock block, int b, WanInputs in, RunWeights w) throws FormatException {
        return gpuMath == null ? block.forward(b, in, w) : block.forward(b, in, w, gpuMath);
    }

    /** One run of a Qwen-Image block, likewise. */
    QwenBlock.Streams forward(QwenBlock block, int b, QwenInputs in, RunWeights w) throws FormatException {
        return gpuMath == null ? block.forward(b, in, w) : block.forward(b, in, w, gpuMath);
    }

    /** The math blocks run on: the GPU's when there is one, else the CPU's. */
    BlockMath<?> math() {
        return gpuMath != null ? gpuMath : new CpuBlockMath(ChainedModels.HEAD_DIM);
    }

    /** Frees the GPU's copies of this block's weights. */
    void endBlock() {
        if (gpu != null) {
            gpu.release();
        }
    }

    @Override
    public void close() {
        endBlock();
    }
}
