package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Instant;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The ./fp8q launcher's stale check, on a copy of it in a fake checkout (a fake mvnw counts builds, a fake JDK
 * runs nothing): what a build writes after the jar (bench's generated sources, target/, test classes) must not
 * make the next launch build again; a changed main source must.
 */
class LauncherTest {

    @Test
    void onlyMainSourcesAndPomsNewerThanTheJarRebuild(@TempDir Path dir) throws Exception {
        Path launcher = Path.of(System.getProperty("fp8q.repo.dir", ".."), "fp8q");
        Assumptions.assumeTrue(Files.isRegularFile(launcher), "SKIPPED: no launcher at " + launcher);
        Path repo = Files.createDirectory(dir.resolve("repo"));
        Files.copy(launcher, repo.resolve("fp8q"));
        Files.createDirectory(repo.resolve(".mvn"));
        script(repo.resolve("mvnw"), "here=\"$(dirname \"$0\")\"; echo build >> \"$here/builds\"; "
                + "mkdir -p \"$here/cli/target\"; echo jar > \"$here/cli/target/fp8q.jar\"");
        Files.writeString(repo.resolve("pom.xml"), "<project/>");
        for (String m : List.of("formats", "converter", "verifier", "testdata", "cli", "bench")) {
            Files.createDirectories(repo.resolve(m + "/src/main/java"));
            Files.createDirectories(repo.resolve(m + "/src/test/java"));
            Files.writeString(repo.resolve(m + "/pom.xml"), "<project/>");
            Files.writeString(repo.resolve(m + "/src/main/java/A.java"), "class A {}");
        }
        Path jdk = dir.resolve("jdk");
        Files.createDirectories(jdk.resolve("bin"));
        Files.writeString(jdk.resolve("release"), "JAVA_VERSION=\"25.0.1\"\n");
        script(jdk.resolve("bin/java"), "exit 0");

        try (var all = Files.walk(repo)) {
            for (Path f : all.toList()) {
                age(f, 7200); // sources long before the first build
            }
        }
        launch(repo, jdk);
        assertEquals(1, builds(repo), "the first launch builds");
        launch(repo, jdk);
        assertEquals(1, builds(repo), "the second does not");

        Path jar = repo.resolve("cli/target/fp8q.jar");
        age(jar, 3600); // each file below is then newer than the jar
        for (String written : List.of("bench/target/generated-sources/annotations/B_jmhTest.java",
                "converter/target/classes/x.properties", "cli/src/test/java/T.java", "bench/src/main/java/B.java",
                "cli/target/fp8q.jar.jsa", ".venv/lib/pom.xml")) {
            Path f = repo.resolve(written);
            Files.createDirectories(f.getParent());
            Files.writeString(f, "x");
            age(f, 1800);
            launch(repo, jdk);
            assertEquals(1, builds(repo), written + " does not make a launch build");
        }
        for (String source : List.of("verifier/src/main/java/A.java", "testdata/pom.xml", "pom.xml")) {
            age(jar, 3600);
            age(repo.resolve(source), 1800);
            int before = builds(repo);
            launch(repo, jdk);
            assertEquals(before + 1, builds(repo), source + " changed: a build");
        }
    }

    private static void age(Path f, long seconds) throws Exception {
        Files.setLastModifiedTime(f, FileTime.from(Instant.now().minusSeconds(seconds)));
    }

    private static void script(Path f, String body) throws Exception {
        Files.writeString(f, "#!/usr/bin/env bash\n" + body + "\n");
        Files.setPosixFilePermissions(f, PosixFilePermissions.fromString("rwxr-xr-x"));
    }

    private static void launch(Path repo, Path jdk) throws Exception {
        ProcessBuilder pb = new ProcessBuilder("bash", repo.resolve("fp8q").toString(), "--version")
                .redirectErrorStream(true).redirectOutput(repo.resolve("launch.log").toFile());
        pb.environment().put("FP8Q_JAVA_HOME", jdk.toString());
        pb.environment().remove("FP8Q_NO_BUILD");
        Process p = pb.start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        assertEquals(0, p.exitValue(), Files.readString(repo.resolve("launch.log")));
    }

    private static int builds(Path repo) throws Exception {
        Path f = repo.resolve("builds");
        return Files.exists(f) ? Files.readAllLines(f).size() : 0;
    }
}
