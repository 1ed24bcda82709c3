package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.DType;
import dev.fp8q.testdata.WanCheckpoints;
import dev.fp8q.testdata.WanDims;
import dev.fp8q.testdata.WanNaming;
import dev.fp8q.testdata.WanVariant;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A write that the kernel refuses part-way (RLIMIT_FSIZE: the JVM ignores SIGXFSZ, so write() fails with
 * EFBIG exactly as it fails with ENOSPC on a full disk) ends the convert cleanly: one error line, exit 3,
 * no DST, no temporary files; a rerun with room completes.
 */
class DiskFullTest {

    @Test
    void aRefusedWriteLeavesNothingAndARerunSucceeds(@TempDir Path dir) throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/bin/sh")), "SKIPPED: needs /bin/sh for ulimit");
        Path src = dir.resolve("src");
        WanCheckpoints.make(new WanCheckpoints.Request(WanVariant.T2V_A14B, WanNaming.ORIGINAL,
                WanDims.tiny(WanVariant.T2V_A14B).withDim(512, 1024).withLayers(2), DType.BF16, 4L << 20, false, 0, 2), src);
        Path out = dir.resolve("out");
        Files.createDirectories(out);
        Path dst = out.resolve("dst");
        String java = ProcessHandle.current().info().command().orElse("java");
        // ulimit -f counts 1 KiB blocks; each output shard is about 2 MiB, the JVM's own files far less.
        String cmd = "ulimit -f 1000 && exec \"$0\" --add-modules jdk.incubator.vector -cp \"$1\" dev.fp8q.cli.Main convert --quiet \"$2\" \"$3\"";
        Process p = new ProcessBuilder(List.of("/bin/sh", "-c", cmd, java, System.getProperty("java.class.path"),
                src.toString(), dst.toString())).redirectErrorStream(true).redirectOutput(dir.resolve("child.log").toFile())
                .start();
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the child finished");
        String log = Files.readString(dir.resolve("child.log"));
        assertEquals(ExitCodes.INTERNAL_ERROR, p.exitValue(), log);
        assertTrue(log.contains("fp8q: error: ") && log.contains("File too large"), log);
        assertFalse(Files.exists(dst), "no DST after a failed write");
        try (Stream<Path> s = Files.list(out)) {
            assertEquals(List.of(), s.toList(), "nothing left beside DST");
        }
        CliRun r = CliRun.of("convert", "--quiet", src.toString(), dst.toString());
        assertEquals(0, r.code(), r.err());
        assertEquals(0, CliRun.of("check", dst.toString()).code());
    }
}
