package dev.fp8q.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.fp8q.converter.ConvertException;
import dev.fp8q.converter.Converter;
import dev.fp8q.converter.Progress;
import dev.fp8q.converter.plan.UserRules;
import dev.fp8q.formats.DType;
import dev.fp8q.testdata.WanNaming;
import dev.fp8q.testdata.WanVariant;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** One writer per DST, leftovers of killed runs cleaned, a source changing under the run detected. */
class OutputSafetyTest {

    static Path source(Path dir) throws Exception {
        return ConvertCommandTest.make(dir.resolve("src.safetensors"), WanVariant.T2V_A14B, WanNaming.ORIGINAL,
                DType.BF16, 0, false);
    }

    static List<String> names(Path dir) throws Exception {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void aSecondRunIntoTheSameDstIsRefused(@TempDir Path dir) throws Exception {
        Path src = source(dir);
        Path dst = dir.resolve("dst.safetensors");
        try (FileChannel ch = FileChannel.open(dir.resolve(".dst.safetensors.fp8q-lock"), StandardOpenOption.CREATE,
                StandardOpenOption.WRITE); FileLock held = ch.lock()) {
            CliRun r = CliRun.of("convert", "--quiet", src.toString(), dst.toString());
            assertEquals(ExitCodes.INPUT_ERROR, r.code());
            assertTrue(r.err().contains("another fp8q run is writing it"), r.err());
            assertFalse(Files.exists(dst));
        }
        assertEquals(0, CliRun.of("convert", "--quiet", src.toString(), dst.toString()).code());
        assertEquals(List.of("dst.fp8-manifest.json", "dst.safetensors", "src.safetensors"), names(dir),
                "the lock file is removed at the end");
    }

    @Test
    void leftoversOfKilledRunsAreRemoved(@TempDir Path dir) throws Exception {
        Path src = source(dir);
        Path stale = Files.createDirectories(dir.resolve(".dst.safetensors.fp8q-tmp-1234"));
        Files.writeString(stale.resolve("half.safetensors"), "partial");
        Files.createDirectories(dir.resolve(".dst.safetensors.fp8q-old-5678"));
        Files.createDirectories(dir.resolve(".other.fp8q-tmp-1")); // another DST's: not ours to touch
        CliRun r = CliRun.of("convert", "--quiet", src.toString(), dir.resolve("dst.safetensors").toString());
        assertEquals(0, r.code(), r.err());
        assertTrue(r.err().contains("left by an interrupted run"), r.err());
        assertEquals(List.of(".other.fp8q-tmp-1", "dst.fp8-manifest.json", "dst.safetensors", "src.safetensors"), names(dir));
    }

    @Test
    void aSourceChangedDuringTheRunFailsIt(@TempDir Path dir) throws Exception {
        Path src = source(dir);
        Path dst = dir.resolve("dst.safetensors");
        AtomicBoolean touched = new AtomicBoolean();
        Progress toucher = new Progress() {
            @Override
            public void advance(long bytes) {
                if (touched.compareAndSet(false, true)) {
                    try {
                        Files.setLastModifiedTime(src, FileTime.fromMillis(System.currentTimeMillis() + 60_000));
                    } catch (java.io.IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                }
            }
        };
        Converter c = new Converter(new Converter.Options("auto", UserRules.NONE, false, false, 2, false, List.of()), toucher);
        ConvertException e = assertThrows(ConvertException.class, () -> c.convert(src, dst));
        assertTrue(e.getMessage().contains("src.safetensors: source file changed during conversion"), e.getMessage());
        assertEquals(List.of("src.safetensors"), names(dir), "nothing written, nothing left");
    }
}
