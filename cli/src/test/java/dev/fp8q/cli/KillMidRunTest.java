package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
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
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A convert killed with SIGKILL at several points never leaves a DST; a rerun then completes and checks clean. */
class KillMidRunTest {

    @Test
    void killedRunsLeaveNoDstAndARerunSucceeds(@TempDir Path dir) throws Exception {
        Path src = dir.resolve("src");
        WanCheckpoints.make(new WanCheckpoints.Request(WanVariant.T2V_A14B, WanNaming.ORIGINAL,
                WanDims.tiny(WanVariant.T2V_A14B).withDim(1024, 4096).withLayers(4), DType.F32, 64L << 20, false, 0, 2), src);
        Path dst = dir.resolve("dst");
        String java = ProcessHandle.current().info().command().orElse("java");
        int killedBeforeEnd = 0;
        for (int delayMs : new int[] {150, 400, 700, 1000, 1500}) {
            Process p = new ProcessBuilder(List.of(java, "--add-modules", "jdk.incubator.vector", "-cp",
                    System.getProperty("java.class.path"), "dev.fp8q.cli.Main", "convert", "--quiet", src.toString(), dst.toString()))
                    .redirectErrorStream(true).redirectOutput(dir.resolve("child.log").toFile()).start();
            boolean finished = p.waitFor(delayMs, TimeUnit.MILLISECONDS);
            if (!finished) {
                p.destroyForcibly().waitFor();
                // The rename to DST is the run's last write, so a kill after it (while the report prints)
                // leaves a complete DST; anything else must leave none.
                if (Files.exists(dst)) {
                    assertEquals(0, CliRun.of("check", dst.toString()).code(), "a DST left by a killed run is complete");
                    dev.fp8q.converter.Converter.deleteTree(dst);
                } else {
                    killedBeforeEnd++;
                }
            } else {
                assertEquals(0, p.exitValue());
                assertEquals(0, CliRun.of("check", dst.toString()).code(), "a finished run is complete");
                dev.fp8q.converter.Converter.deleteTree(dst);
            }
        }
        assertTrue(killedBeforeEnd >= 2, "the kills landed mid-run: " + killedBeforeEnd);
        CliRun r = CliRun.of("convert", "--quiet", src.toString(), dst.toString());
        assertEquals(0, r.code(), r.err());
        assertEquals(0, CliRun.of("check", dst.toString()).code());
    }
}
