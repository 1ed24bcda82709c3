package dev.fp8q.verifier.cuda;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.fp8q.testdata.WanCheckpoints;
import dev.fp8q.verifier.Verifier;
import dev.fp8q.verifier.VerifyException;
import dev.fp8q.verifier.VerifyReport;
import dev.fp8q.verifier.check.Bounds;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The CUDA backend where CI runs (no GPU): the PTX in the jar against its source, and device selection. On a
 * machine with a GPU the same tests check that the GPU is taken and every kernel agrees with the CPU.
 */
class CudaBackendTest {

    private static final Path REPO = Path.of(System.getProperty("fp8q.repo.dir", "..")).toAbsolutePath().normalize();
    private static final Path SOURCE = REPO.resolve("verifier/src/main/cuda/fp8q.cu");
    private static boolean gpu;

    @BeforeAll
    static void probe() {
        gpu = Gpus.present();
    }

    @Test
    void shippedPtxWasMadeFromTheShippedSource() throws Exception {
        String hash = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(SOURCE)));
        assertEquals(hash, Ptx.load().sourceSha256(),
                "fp8q.ptx is stale: run verifier/src/main/cuda/build-ptx.sh after editing fp8q.cu");
    }

    @Test
    void ptxDefinesEveryKernelForFp8TensorCores() {
        String text = new String(Ptx.load().text(), StandardCharsets.US_ASCII);
        assertTrue(text.contains(".target sm_89"), "FP8 mma.sync needs sm_89");
        for (String k : CudaKernels.KERNELS) {
            assertTrue(text.contains(".entry " + k + "("), () -> k + " is not in the PTX");
        }
        assertTrue(text.contains("mma.sync.aligned.m16n8k32.row.col.f32.e4m3.e4m3.f32"));
        assertTrue(text.contains("cvt.rn.satfinite.e4m3x2.f32"));
        byte[] forDriver = Ptx.load().forDriver();
        assertEquals(0, forDriver[forDriver.length - 1], "cuModuleLoadData needs a terminating 0");
        assertEquals(Ptx.load().text().length + 1, forDriver.length);
    }

    @Test
    void nvccRegeneratesTheShippedPtx(@TempDir Path dir) throws Exception {
        assumeTrue(onPath("nvcc"), "nvcc is not installed: the shipped PTX is checked by its source hash only");
        Path out = dir.resolve("fp8q.ptx");
        Process p = new ProcessBuilder("bash", REPO.resolve("verifier/src/main/cuda/build-ptx.sh").toString(),
                out.toString()).redirectErrorStream(true).start();
        String log = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS) && p.exitValue() == 0, log);
        assertArrayEquals(Ptx.load().text(), Files.readAllBytes(out), "nvcc made different PTX from fp8q.cu");
    }

    @Test
    void withoutAGpuAutoComputesOnTheCpuAndCudaIsAClearError(@TempDir Path dir) throws Exception {
        assumeFalse(gpu, "this machine has a GPU");
        GpuUnavailableException e = assertThrows(GpuUnavailableException.class, CudaDevice::open);
        assertTrue(e.getMessage().startsWith("no CUDA driver") || e.getMessage().contains("no GPU"), e.getMessage());
        Path[] ck = conversion(dir);
        List<String> log = new ArrayList<>();
        VerifyReport auto = Verifier.verify(ck[0], ck[1], options(Verifier.Device.AUTO, log));
        assertEquals("cpu", auto.settings().get("device"));
        assertTrue(log.stream().anyMatch(l -> l.startsWith("no GPU (") && l.endsWith("computing on the CPU")), log::toString);
        assertTrue(auto.checks().stream().noneMatch(c -> "w8a8_simulated".equals(c.run())));
        VerifyException cuda = assertThrows(VerifyException.class,
                () -> Verifier.verify(ck[0], ck[1], options(Verifier.Device.CUDA, log)));
        assertTrue(cuda.getMessage().startsWith("--device cuda: "), cuda.getMessage());
    }

    @Test
    void withAGpuEveryKernelAgreesAndVerifyRunsThere(@TempDir Path dir) throws Exception {
        assumeTrue(gpu, "no GPU here (CI): bench/gpu-check.sh runs these on the GPU machine");
        try (CudaDevice d = CudaDevice.open()) {
            assertEquals(List.of(), GpuSelfCheck.run(new CudaKernels(d), s -> { }));
        }
        Path[] ck = conversion(dir);
        VerifyReport r = Verifier.verify(ck[0], ck[1], options(Verifier.Device.AUTO, new ArrayList<>()));
        assertTrue(r.settings().get("device").toString().startsWith("cuda: "));
        assertTrue(r.checks().stream().anyMatch(c -> "w8a8_simulated".equals(c.run())));
        assertTrue(r.summary().passed(), () -> r.failures().toString());
    }

    private static Verifier.Options options(Verifier.Device device, List<String> log) {
        return new Verifier.Options(List.of(0), new int[] {2, 4, 4}, 8, 3, null, Verifier.WeightScope.NONE,
                Bounds.defaults(), 4, 16, log::add, device);
    }

    /** The embedded tiny Wan checkpoint and fp8q's conversion of it. */
    private static Path[] conversion(Path dir) throws Exception {
        Path src = WanCheckpoints.extractEmbedded(dir.resolve("src.safetensors"));
        Path dst = dir.resolve("fp8.safetensors");
        dev.fp8q.verifier.wan.VerifierFiguresTest.quantize(src, dst);
        return new Path[] {src, dst};
    }

    private static boolean onPath(String tool) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(":")) {
            if (Files.isExecutable(Path.of(d, tool))) {
                return true;
            }
        }
        return false;
    }
}
