package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.FileTrees;
import dev.fp8q.testdata.WanCheckpoints;
import dev.fp8q.testdata.WanDims;
import dev.fp8q.testdata.WanNaming;
import dev.fp8q.testdata.WanVariant;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * A convert killed with SIGKILL at random points never leaves a DST that is not complete: with no DST before,
 * none or a complete one after; with --force over an existing DST, the old or the new one, complete either way.
 * A rerun then completes, and no temporary folder survives it. The seed is printed for a rerun of a failure.
 */
class KillMidRunTest {

    @Test
    void killedRunsLeaveNoPartialDstAndARerunSucceeds(@TempDir Path dir) throws Exception {
        Path src = dir.resolve("src");
        WanCheckpoints.make(new WanCheckpoints.Request(WanVariant.T2V_A14B, WanNaming.ORIGINAL,
                WanDims.tiny(WanVariant.T2V_A14B).withDim(1024, 4096).withLayers(4), DType.F32, 64L << 20, false, 0, 2), src);
        Path dst = dir.resolve("dst");
        List<String> convert = List.of("convert", "--quiet", src.toString(), dst.toString());
        long seed = Long.getLong("fp8q.kill.seed", System.nanoTime());
        int killedBeforeEnd = killRounds(dir, dst, convert, 10, 50, seed, "");
        assertTrue(killedBeforeEnd >= 3, "the kills landed mid-run: " + killedBeforeEnd + " (seed " + seed + ")");
        rerunSucceedsWithoutTemporaries(dir, dst, convert, seed);
    }

    /** The same for fp8q merge: parts joined into DST, killed at random points, --force on odd rounds. */
    @Test
    void killedMergesLeaveNoPartialDstAndARerunSucceeds(@TempDir Path dir) throws Exception {
        Path src = dir.resolve("src");
        WanCheckpoints.make(new WanCheckpoints.Request(WanVariant.T2V_A14B, WanNaming.ORIGINAL,
                WanDims.tiny(WanVariant.T2V_A14B).withDim(1024, 4096).withLayers(4), DType.F32, 16L << 20, false, 0, 2), src);
        List<String> parts = new ArrayList<>();
        for (int i = 1; i <= 3; i++) {
            Path part = dir.resolve("part" + i);
            assertEquals(0, CliRun.of("convert", "--quiet", src.toString(), part.toString(), "--part", i + "/3").code());
            parts.add(part.toString());
        }
        Map<Path, String> before = stamps(parts);
        Path dst = dir.resolve("dst");
        List<String> merge = new ArrayList<>(List.of("merge", "--quiet"));
        merge.addAll(parts);
        merge.add(dst.toString());
        long seed = Long.getLong("fp8q.kill.seed", System.nanoTime());
        killRounds(dir, dst, merge, 8, 0, seed, " (merge)");
        assertEquals(before, stamps(parts), "the parts are never changed (seed " + seed + ")");
        rerunSucceedsWithoutTemporaries(dir, dst, merge, seed);
    }

    /**
     * Times one uninterrupted child run of args, then runs it `rounds` times, each killed after minDelayMs plus a
     * random share of that time (or left to end); odd rounds add --force over a complete DST. After each round:
     * --force kept a DST, and a DST left is complete. Returns how many were killed before they ended.
     */
    private static int killRounds(Path dir, Path dst, List<String> args, int rounds, long minDelayMs, long seed,
            String label) throws Exception {
        long t0 = System.nanoTime();
        assertEquals(0, child(dir, args).waitFor());
        long fullMs = (System.nanoTime() - t0) / 1_000_000;
        System.out.println("KillMidRunTest" + label + ": seed " + seed + ", an uninterrupted run takes " + fullMs + " ms");
        Random rnd = new Random(seed);
        int killedBeforeEnd = 0;
        for (int round = 0; round < rounds; round++) {
            boolean force = round % 2 == 1; // odd rounds replace an existing, complete DST
            if (!force && Files.exists(dst)) {
                FileTrees.delete(dst);
            }
            if (force && !Files.exists(dst)) {
                assertEquals(0, CliRun.of(args.toArray(String[]::new)).code());
            }
            long delay = minDelayMs + (long) (rnd.nextDouble() * fullMs);
            List<String> run = new ArrayList<>(args);
            if (force) {
                run.add(1, "--force");
            }
            Process p = child(dir, run);
            if (!p.waitFor(delay, TimeUnit.MILLISECONDS)) {
                p.destroyForcibly().waitFor();
                killedBeforeEnd++;
            } else {
                assertEquals(0, p.exitValue(), "seed " + seed);
            }
            if (force) {
                assertTrue(Files.exists(dst), "seed " + seed + ", kill at " + delay + " ms: --force lost the old DST");
            }
            if (Files.exists(dst)) {
                assertEquals(0, CliRun.of("check", dst.toString()).code(),
                        "seed " + seed + ", kill at " + delay + " ms: the DST left is complete");
            }
        }
        return killedBeforeEnd;
    }

    /** A rerun over whatever the kills left completes, and no temporary file of theirs survives it. */
    private static void rerunSucceedsWithoutTemporaries(Path dir, Path dst, List<String> args, long seed) throws Exception {
        if (Files.exists(dst)) {
            FileTrees.delete(dst);
        }
        CliRun r = CliRun.of(args.toArray(String[]::new));
        assertEquals(0, r.code(), r.err());
        assertEquals(0, CliRun.of("check", dst.toString()).code());
        try (var files = Files.list(dir)) {
            List<String> left = files.map(f -> f.getFileName().toString()).filter(n -> n.contains(".fp8q-")).toList();
            assertEquals(List.of(), left, "temporary files of killed runs are gone after a rerun (seed " + seed + ")");
        }
    }

    /** Every file of the folders: its size and last-modified time. */
    private static Map<Path, String> stamps(List<String> folders) throws Exception {
        Map<Path, String> out = new TreeMap<>();
        for (String f : folders) {
            try (var files = Files.walk(Path.of(f))) {
                for (Path p : files.filter(Files::isRegularFile).toList()) {
                    out.put(p, Files.size(p) + " " + Files.getLastModifiedTime(p));
                }
            }
        }
        return out;
    }

    private static Process child(Path dir, List<String> args) throws Exception {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = new ArrayList<>(List.of(java, "--add-modules", "jdk.incubator.vector", "-cp",
                System.getProperty("java.class.path"), "dev.fp8q.cli.Main"));
        cmd.addAll(args);
        return new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(dir.resolve("child.log").toFile()).start();
    }
}
