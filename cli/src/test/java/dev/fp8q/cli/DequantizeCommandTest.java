package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.codec.E4M3;
import dev.fp8q.formats.codec.Elements;
import dev.fp8q.formats.safetensors.SafetensorsFile;
import dev.fp8q.formats.safetensors.TensorEntry;
import dev.fp8q.testdata.WanNaming;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DequantizeCommandTest {

    @TempDir
    Path dir;

    @Test
    void bf16RoundTripReproducesTheFp8BytesExactly() throws Exception {
        Path src = VerifyCommandTest.convert(dir, WanNaming.DIFFUSERS, DType.BF16);
        Path dst = dir.resolve("fp8-" + WanNaming.DIFFUSERS + "-" + DType.BF16 + ".safetensors");
        Path outFile = dir.resolve("bf16.safetensors");
        CliRun run = CliRun.of("dequantize", dst.toString(), outFile.toString());
        assertEquals(0, run.code(), run.err());
        int fp8 = 0;
        try (SafetensorsFile q = SafetensorsFile.open(dst);
                SafetensorsFile d = SafetensorsFile.open(outFile)) {
            assertFalse(d.metadata() != null && d.metadata().containsKey("_quantization_metadata"));
            for (TensorEntry e : q.tensors()) {
                if (e.name().endsWith("_scale")) {
                    assertTrue(d.tensor(e.name()).isEmpty(), "scale tensor dropped: " + e.name());
                    continue;
                }
                TensorEntry o = d.tensor(e.name()).orElseThrow();
                MemorySegment qb = q.data(e);
                MemorySegment ob = d.data(o);
                if (e.dtype() == DType.F8_E4M3) {
                    fp8++;
                    assertEquals(DType.BF16, o.dtype());
                    float scale = q.data(q.tensor(e.name() + "_scale").orElseThrow()).get(Elements.FLOAT, 0);
                    for (long i = 0; i < e.numel(); i++) {
                        short want = Elements.floatToBf16(E4M3.decode(qb.get(ValueLayout.JAVA_BYTE, i)) * scale);
                        assertEquals(want, ob.getAtIndex(Elements.SHORT, i), e.name() + "[" + i + "]");
                    }
                } else {
                    assertEquals(-1, qb.mismatch(ob), "preserved tensor copied byte for byte: " + e.name());
                }
            }
        }
        assertTrue(fp8 > 10, "FP8 weights seen: " + fp8);

        Path again = dir.resolve("fp8-again.safetensors");
        assertEquals(0, CliRun.of("convert", "--quiet", outFile.toString(), again.toString()).code());
        try (SafetensorsFile a = SafetensorsFile.open(dst);
                SafetensorsFile b = SafetensorsFile.open(again)) {
            assertEquals(a.tensors().size(), b.tensors().size());
            for (TensorEntry e : a.tensors()) {
                TensorEntry f = b.tensor(e.name()).orElseThrow();
                assertEquals(e.dtype(), f.dtype(), e.name());
                assertEquals(-1, a.data(e).mismatch(b.data(f)), "same bytes after the round trip: " + e.name());
            }
        }
    }

    /**
     * --scale-dtype bf16: the stored scale is BF16, the codes are the exact encoding of source / that scale, and
     * dequantize gives code x scale rounded to BF16 (what a runtime keeping BF16 scales computes).
     */
    @Test
    void bf16ScalesEncodeWithTheRoundedScaleAndDequantizeWithIt() throws Exception {
        Path src = ConvertCommandTest.make(dir.resolve("src.safetensors"), dev.fp8q.testdata.WanVariant.T2V_A14B,
                WanNaming.DIFFUSERS, DType.BF16, 0, false);
        Path dst = dir.resolve("fp8.safetensors");
        assertEquals(0, CliRun.of("convert", "--quiet", "--layout", "hf-fp8", "--scale-dtype", "bf16", src.toString(),
                dst.toString()).code());
        Path out = dir.resolve("bf16.safetensors");
        assertEquals(0, CliRun.of("dequantize", dst.toString(), out.toString()).code());
        int fp8 = 0;
        int offGrid = 0;
        try (SafetensorsFile s = SafetensorsFile.open(src);
                SafetensorsFile q = SafetensorsFile.open(dst);
                SafetensorsFile d = SafetensorsFile.open(out)) {
            for (TensorEntry e : q.tensors()) {
                if (e.dtype() != DType.F8_E4M3) {
                    continue;
                }
                fp8++;
                TensorEntry st = q.tensor(e.name() + "_scale_inv").orElseThrow();
                assertEquals(DType.BF16, st.dtype(), st.name());
                assertEquals(0, st.shape().length, "per-tensor: 0-dim, as transformers' FP8Linear registers it");
                float scale = Elements.bf16ToFloat(q.data(st).get(Elements.SHORT, 0));
                float amax = 0;
                MemorySegment x = s.data(s.tensor(e.name()).orElseThrow());
                for (long i = 0; i < e.numel(); i++) {
                    amax = Math.max(amax, Math.abs(Elements.bf16ToFloat(x.getAtIndex(Elements.SHORT, i))));
                }
                float f32 = amax / E4M3.MAX;
                assertEquals(Elements.bf16ToFloat(Elements.floatToBf16(f32)), scale, e.name() + ": amax/448 rounded to BF16");
                offGrid += f32 != scale ? 1 : 0;
                MemorySegment qb = q.data(e);
                MemorySegment ob = d.data(d.tensor(e.name()).orElseThrow());
                for (long i = 0; i < e.numel(); i++) {
                    byte code = qb.get(ValueLayout.JAVA_BYTE, i);
                    float v = Elements.bf16ToFloat(x.getAtIndex(Elements.SHORT, i));
                    assertEquals(E4M3.encode(v / scale), code, e.name() + "[" + i + "] encoded with the BF16 scale");
                    assertEquals(Elements.floatToBf16(E4M3.decode(code) * scale), ob.getAtIndex(Elements.SHORT, i),
                            e.name() + "[" + i + "] dequantized");
                }
            }
        }
        assertTrue(fp8 > 10, "FP8 weights seen: " + fp8);
        assertTrue(offGrid > 0, "some scales changed by the rounding, so the test can tell the two apart");
    }

    /** ComfyUI's legacy layout written by torch: codes times scale_weight, and the scaled_fp8 marker dropped. */
    @Test
    void readsAForeignLayoutWrittenByTorch() throws Exception {
        Path in = Path.of(System.getProperty("fp8q.shared.dir", "../shared"), "testdata", "torch", "comfy_legacy_fp8_scaled.safetensors");
        org.junit.jupiter.api.Assumptions.assumeTrue(Files.isRegularFile(in), "SKIPPED: " + in + " not present");
        Path out = dir.resolve("legacy-bf16.safetensors");
        CliRun run = CliRun.of("dequantize", in.toString(), out.toString());
        assertEquals(0, run.code(), run.err());
        int checked = 0;
        try (SafetensorsFile q = SafetensorsFile.open(in); SafetensorsFile d = SafetensorsFile.open(out)) {
            assertTrue(d.tensor("scaled_fp8").isEmpty(), "legacy marker dropped");
            for (TensorEntry e : q.tensors()) {
                if (e.dtype() != DType.F8_E4M3 || !e.name().endsWith(".weight")) {
                    continue;
                }
                String layer = e.name().substring(0, e.name().length() - "weight".length());
                float scale = q.data(q.tensor(layer + "scale_weight").orElseThrow()).get(Elements.FLOAT, 0);
                assertTrue(d.tensor(layer + "scale_weight").isEmpty());
                MemorySegment codes = q.data(e);
                MemorySegment vals = d.data(d.tensor(e.name()).orElseThrow());
                for (long i = 0; i < e.numel(); i++) {
                    assertEquals(Elements.floatToBf16(E4M3.decode(codes.get(ValueLayout.JAVA_BYTE, i)) * scale),
                            vals.getAtIndex(Elements.SHORT, i), e.name() + "[" + i + "]");
                }
                checked++;
            }
        }
        assertEquals(1, checked);
    }

    @Test
    void refusesAnExistingOutAndABadDtypeWithoutWriting() throws Exception {
        VerifyCommandTest.convert(dir, WanNaming.ORIGINAL, DType.BF16);
        Path dst = dir.resolve("fp8-" + WanNaming.ORIGINAL + "-" + DType.BF16 + ".safetensors");
        Path out = dir.resolve("taken.safetensors");
        Files.writeString(out, "not fp8q's");
        CliRun exists = CliRun.of("dequantize", dst.toString(), out.toString());
        assertEquals(2, exists.code());
        assertTrue(exists.err().contains("exists"), exists.err());
        CliRun forced = CliRun.of("dequantize", "--force", dst.toString(), out.toString());
        assertEquals(2, forced.code(), "not an fp8q output: not replaced");
        assertEquals("not fp8q's", Files.readString(out));
        Files.delete(out);
        CliRun dtype = CliRun.of("dequantize", "--dtype", "f8", dst.toString(), dir.resolve("x").toString());
        assertEquals(2, dtype.code());
        assertFalse(Files.exists(dir.resolve("x.safetensors")));
        assertEquals(0, CliRun.of("dequantize", dst.toString(), out.toString()).code());
        assertEquals(0, CliRun.of("check", out.toString()).code(), "OUT carries its own manifest");
        // what runs killed during --force leave beside OUT is removed under the lock by the next run
        Files.createDirectories(dir.resolve(".taken.safetensors.fp8q-old-1234/sub"));
        Files.createDirectories(dir.resolve(".taken.safetensors.fp8q-tmp-5678"));
        CliRun f32 = CliRun.of("dequantize", "--force", "--dtype", "f32", dst.toString(), out.toString());
        assertEquals(0, f32.code(), f32.err());
        try (var files = Files.list(dir)) {
            assertTrue(files.noneMatch(p -> p.getFileName().toString().contains(".fp8q-")), "no temporary, old or lock file left");
        }
    }
}
