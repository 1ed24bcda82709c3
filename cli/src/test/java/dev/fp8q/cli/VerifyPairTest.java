package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.DType;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.testdata.WanCheckpoints;
import dev.fp8q.testdata.WanDims;
import dev.fp8q.testdata.WanNaming;
import dev.fp8q.testdata.WanVariant;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** verify refuses, naming the first differences, a SRC and DST that are not one model (issue 18 item 9). */
class VerifyPairTest {

    static Path make(Path out, WanVariant v, WanDims dims, DType dt, long seed) throws Exception {
        WanCheckpoints.make(new WanCheckpoints.Request(v, WanNaming.ORIGINAL, dims, dt, 0, false, seed, 2), out);
        return out;
    }

    static Path tinyT2v(Path out, DType dt, long seed) throws Exception {
        return make(out, WanVariant.T2V_A14B, WanDims.tiny(WanVariant.T2V_A14B), dt, seed);
    }

    static Path convert(Path src, Path dst, String... extra) {
        String[] args = Stream.concat(Stream.of("convert", "--quiet", src.toString(), dst.toString()), Stream.of(extra))
                .toArray(String[]::new);
        CliRun r = CliRun.of(args);
        assertEquals(ExitCodes.OK, r.code(), r.err());
        return dst;
    }

    static void assertRefused(CliRun r, String... fragments) {
        assertEquals(ExitCodes.INPUT_ERROR, r.code(), r.out() + r.err());
        for (String f : fragments) {
            assertTrue(r.err().contains(f), "'" + f + "' in: " + r.err());
        }
        assertFalse(r.out().contains("PASS") || r.out().contains("FAIL"), "nothing ran: " + r.out());
        assertFalse(r.err().contains("internal error"), r.err());
    }

    @Test
    void otherDimIsNamedNotAnInternalError(@TempDir Path dir) throws Exception {
        Path wide = make(dir.resolve("dim256.safetensors"), WanVariant.T2V_A14B,
                WanDims.tiny(WanVariant.T2V_A14B).withDim(256, 512), DType.BF16, 0);
        Path dst = convert(tinyT2v(dir.resolve("dim128.safetensors"), DType.BF16, 0), dir.resolve("fp8.safetensors"));
        assertRefused(VerifyCommandTest.verify(wide, dst), "SRC and DST are not one model: ",
                "blocks.0.cross_attn.k.weight shape [256,256] in SRC, [128,128] in DST", " more");
    }

    @Test
    void i2vSourceAgainstAT2vConversionIsRefused(@TempDir Path dir) throws Exception {
        Path i2v = make(dir.resolve("i2v.safetensors"), WanVariant.I2V_A14B, WanDims.tiny(WanVariant.I2V_A14B),
                DType.BF16, 0);
        Path dst = convert(tinyT2v(dir.resolve("t2v.safetensors"), DType.BF16, 0), dir.resolve("fp8.safetensors"));
        assertRefused(VerifyCommandTest.verify(i2v, dst), "SRC and DST are not one model: ", "patch_embedding.weight shape");
    }

    @Test
    void swappedArgumentsAreNamed(@TempDir Path dir) throws Exception {
        Path src = tinyT2v(dir.resolve("t2v.safetensors"), DType.BF16, 0);
        Path dst = convert(src, dir.resolve("fp8.safetensors"));
        assertRefused(VerifyCommandTest.verify(dst, src), "SRC and DST are swapped");
        assertEquals(ExitCodes.OK, VerifyCommandTest.verify(src, dst).code(), "the right order passes");
    }

    @Test
    void sameShapesWithOtherValuesAreRefusedByThePreservedTensors(@TempDir Path dir) throws Exception {
        Path other = tinyT2v(dir.resolve("seed7.safetensors"), DType.BF16, 7);
        Path dst = convert(tinyT2v(dir.resolve("seed0.safetensors"), DType.BF16, 0), dir.resolve("fp8.safetensors"));
        assertRefused(VerifyCommandTest.verify(other, dst), "SRC and DST are not one model: ",
                "values differ (preserved; first at element 0)");
    }

    @Test
    void aPreservedTensorCastToBf16IsComparedWithItsExactRounding(@TempDir Path dir) throws Exception {
        Path src = tinyT2v(dir.resolve("f32.safetensors"), DType.F32, 0);
        Path dst = convert(src, dir.resolve("fp8.safetensors"), "--preserve-dtype", "bf16");
        CliRun ok = VerifyCommandTest.verify(src, dst);
        assertEquals(ExitCodes.OK, ok.code(), ok.out() + ok.err());

        // One BF16 element one step away from the exact rounding, in a tensor the plan preserved.
        Manifest.TensorRecord rec = Manifest.find(dst).orElseThrow().tensors().stream()
                .filter(r -> r.action().equals("preserve") && r.dtype().equals("BF16") && r.shape().size() == 1)
                .findFirst().orElseThrow();
        Path file;
        long pos;
        try (Checkpoint d = Checkpoint.open(dst)) {
            Checkpoint.Tensor t = d.tensor(rec.name()).orElseThrow();
            file = t.shard().path();
            pos = VerifyCommandTest.offset(file, rec.name()) + 2 * 3;
        }
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.seek(pos);
            int b = raf.read();
            raf.seek(pos);
            raf.write(b ^ 1);
        }
        assertRefused(VerifyCommandTest.verify(src, dst), rec.name() + " values differ (preserved; first at element 3)");
    }
}
