package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.testdata.WanCheckpoints;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The distribution tarball, unpacked, converts and verifies with no JDK in reach: PATH is /usr/bin:/bin (whose
 * java, if any, is older than 25 here and could not run the jar) and JAVA_HOME is unset. CI does not build the
 * tarball (`./mvnw -B package -Pdist` does), so there this test is skipped.
 */
class DistributionTest {

    record Run(int code, String out, String err) {}

    @Test
    void unpackedTarballConvertsAndVerifiesWithoutAJdk(@TempDir Path dir) throws Exception {
        Path tarball = tarball();
        System.out.println("DistributionTest: testing " + tarball);
        assertEquals(0, run(dir, List.of("tar", "-xzf", tarball.toString())).code());
        Path fp8q;
        try (Stream<Path> s = Files.list(dir)) {
            fp8q = s.filter(Files::isDirectory).findFirst().orElseThrow().resolve("bin/fp8q");
        }
        // Called through a link, as from a bin folder on PATH: the launcher must find its own home.
        Path link = Files.createSymbolicLink(dir.resolve("fp8q-link"), fp8q);

        Run convert = run(dir, List.of(link.toString(), "convert", "--force"));
        assertEquals(0, convert.code(), convert.err());
        assertTrue(convert.out().contains("20 tensors quantized"), convert.out());

        // testdata make writes the embedded checkpoint's bytes: the SRC that verify needs.
        Run make = run(dir, List.of(fp8q.toString(), "testdata", "make", "embedded.safetensors"));
        assertEquals(0, make.code(), make.err());
        Path expected = WanCheckpoints.extractEmbedded(dir.resolve("expected.safetensors"));
        assertArrayEquals(Files.readAllBytes(expected), Files.readAllBytes(dir.resolve("embedded.safetensors")));
        Run verify = run(dir, List.of(fp8q.toString(), "verify", "embedded.safetensors", "fp8q-out.safetensors",
                "--device", "cpu", "--junit", "embedded.xml", "--quiet"));
        assertEquals(0, verify.code(), verify.out() + verify.err());
        assertTrue(Files.readString(dir.resolve("embedded.xml")).contains("failures=\"0\""));

        // A Wan-shaped checkpoint of another variant, through the whole round.
        assertEquals(0, run(dir, List.of(fp8q.toString(), "testdata", "make", "ti2v.safetensors", "--variant",
                "ti2v-5b")).code());
        assertEquals(0, run(dir, List.of(fp8q.toString(), "convert", "ti2v.safetensors", "ti2v-fp8.safetensors",
                "--quiet")).code());
        Run wan = run(dir, List.of(fp8q.toString(), "verify", "ti2v.safetensors", "ti2v-fp8.safetensors",
                "--device", "cpu", "--blocks", "0", "--quiet"));
        assertEquals(0, wan.code(), wan.out() + wan.err());
        assertTrue(wan.out().contains("PASS"), wan.out());
    }

    /** The newest dist/fp8q-*-linux-x86_64.tar.gz of this checkout, or the test is skipped saying how to build one. */
    static Path tarball() throws IOException {
        Path dist = Path.of(System.getProperty("fp8q.repo.dir", ".")).resolve("dist");
        List<Path> found = new ArrayList<>();
        if (Files.isDirectory(dist)) {
            try (Stream<Path> s = Files.list(dist)) {
                s.filter(p -> p.getFileName().toString().matches("fp8q-.*-linux-x86_64\\.tar\\.gz")).forEach(found::add);
            }
        }
        Assumptions.assumeFalse(found.isEmpty(),
                "SKIPPED: no dist/fp8q-*-linux-x86_64.tar.gz (build it with ./mvnw -B package -Pdist)");
        return found.stream().max(Comparator.comparing(p -> p.toFile().lastModified())).orElseThrow();
    }

    private static Run run(Path dir, List<String> command) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(command).directory(dir.toFile());
        pb.environment().remove("JAVA_HOME");
        pb.environment().remove("FP8Q_JAVA_OPTS");
        pb.environment().put("PATH", "/usr/bin:/bin");
        Path out = Files.createTempFile(dir, "out", ".txt");
        Path err = Files.createTempFile(dir, "err", ".txt");
        Process p = pb.redirectOutput(out.toFile()).redirectError(err.toFile()).start();
        if (!p.waitFor(120, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            throw new AssertionError("timed out: " + command);
        }
        return new Run(p.exitValue(), Files.readString(out, StandardCharsets.UTF_8), Files.readString(err, StandardCharsets.UTF_8));
    }
}
