package dev.fp8q.verifier.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.lora.LoraMerge;
import java.lang.foreign.Arena;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

/** The GPU's LoRA merge against the CPU's (DeltaMerger): every float32 bit equal. */
class CudaLoraMergeTest {

    @Test
    void ptxDefinesTheMergeKernelsWithoutContraction() {
        String text = new String(Ptx.load().text(), StandardCharsets.US_ASCII);
        for (String k : CudaLoraMerge.KERNELS) {
            assertTrue(text.contains(".entry " + k + "("), () -> k + " is not in the PTX");
        }
        String lowRank = body(text, "lowrank_add_f64");
        assertTrue(lowRank.contains("fma.rn.f64") && lowRank.contains("mul.rn.f64") && lowRank.contains("add.rn.f64"),
                "the rank sum by FMA, then a rounded product and a rounded sum");
        assertFalse(body(text, "dense_add_f64").contains("fma."), "acc + strength * diff must not contract to an FMA");
    }

    private static String body(String ptx, String kernel) {
        String s = ptx.substring(ptx.indexOf(".entry " + kernel + "("));
        return s.substring(0, s.indexOf("\n}"));
    }

    @Test
    void everyValueEqualsTheCpuMergeBitForBit() throws Exception {
        assumeTrue(Gpus.present(), "no GPU: the CUDA merge is checked on a GPU machine");
        try (CudaLoraMerge gpu = CudaLoraMerge.open()) { // open runs the check and refuses a GPU that fails it
            assertEquals(List.of(), gpu.selfCheck());
        }
    }

    @Test
    void takesOnlyWhatItWidens() throws Exception {
        assumeTrue(Gpus.present(), "no GPU");
        try (CudaLoraMerge gpu = CudaLoraMerge.open(); Arena arena = Arena.ofConfined()) {
            Checkpoint.Tensor f64 = Checkpoint.Tensor.inMemory("w", DType.F64, new long[] {4, 4}, arena.allocate(128));
            Checkpoint.Tensor bf16 = Checkpoint.Tensor.inMemory("w", DType.BF16, new long[] {4, 4}, arena.allocate(32));
            Checkpoint.Tensor up = Checkpoint.Tensor.inMemory("up", DType.BF16, new long[] {4, 2}, arena.allocate(16));
            Checkpoint.Tensor down = Checkpoint.Tensor.inMemory("down", DType.F32, new long[] {2, 4}, arena.allocate(32));
            assertFalse(gpu.takes(f64, List.of()));
            assertFalse(gpu.takes(bf16, List.of(new LoraMerge.Full("d", 1, f64))));
            assertTrue(gpu.takes(bf16, List.of(new LoraMerge.Full("d", 1, bf16), new LoraMerge.LowRank("l", 1, up, down, 2))));
            assertFalse(gpu.takes(bf16, List.of(new LoraMerge.LowRank("l", 1, up, down, 3))), "factors that do not fit the target");
        }
    }
}
