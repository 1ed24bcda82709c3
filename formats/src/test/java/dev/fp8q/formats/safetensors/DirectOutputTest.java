package dev.fp8q.formats.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.fp8q.formats.Crc32c;
import dev.fp8q.formats.DType;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.IntStream;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Direct writes against buffered ones: tensors of odd sizes (the header and every boundary off the block grid,
 * tensors inside one block, tensors larger than a staging buffer), written in pieces of random size, in random
 * order, from several threads: the same bytes, the same checksums, and the checksums equal the file's.
 */
class DirectOutputTest {

    @TempDir
    Path dir;

    @BeforeEach
    void needsDirectIo() throws IOException {
        Path probe = Files.createFile(dir.resolve("probe"));
        DirectOutput d = DirectOutput.open(probe, 1);
        Assumptions.assumeTrue(d != null, "SKIPPED: the temp folder's file system has no direct I/O");
        d.close();
    }

    private static List<TensorSpec> specs(Random r) {
        List<TensorSpec> out = new ArrayList<>();
        long[] sizes = {1, 3, 4095, 4096, 4097, 100, (9L << 20) + 5, 12_345, 1 << 20, 7, (4L << 20) - 1, 0, 65_537};
        for (int i = 0; i < sizes.length; i++) {
            out.add(new TensorSpec("t" + i + "." + "x".repeat(r.nextInt(40)), DType.U8, new long[] {sizes[i]}));
        }
        return out;
    }

    private static byte[] content(TensorSpec t) {
        byte[] b = new byte[(int) t.shape()[0]];
        new Random(t.name().hashCode()).nextBytes(b);
        return b;
    }

    /** Writes every tensor in random pieces, shuffled, on 4 threads; returns the writer's checksums. */
    private static Map<String, String> write(Path target, List<TensorSpec> specs, boolean direct, long seed) throws Exception {
        Random r = new Random(seed);
        List<Object[]> pieces = new ArrayList<>(); // {name, offset, bytes}
        for (TensorSpec t : specs) {
            byte[] b = content(t);
            int at = 0;
            do {
                int n = Math.min(b.length - at, r.nextInt(3) == 0 ? r.nextInt(5000) : r.nextInt(3 << 20));
                pieces.add(new Object[] {t.name(), (long) at, java.util.Arrays.copyOfRange(b, at, at + n)});
                at += n;
            } while (at < b.length);
        }
        Collections.shuffle(pieces, r);
        Map<String, String> crcs;
        try (SafetensorsWriter w = SafetensorsWriter.create(target, Map.of("k", "v"), specs, direct)) {
            IntStream.range(0, 4).parallel().forEach(k -> {
                for (int i = k; i < pieces.size(); i += 4) {
                    Object[] p = pieces.get(i);
                    try {
                        w.write((String) p[0], (Long) p[1], MemorySegment.ofArray((byte[]) p[2]));
                    } catch (IOException e) {
                        throw new java.io.UncheckedIOException(e);
                    }
                }
            });
            w.commit();
            crcs = w.checksums();
        }
        return crcs;
    }

    @Test
    void sameBytesAndChecksumsAsBufferedWrites() throws Exception {
        List<TensorSpec> specs = specs(new Random(1));
        Path direct = dir.resolve("direct.safetensors");
        Path buffered = dir.resolve("buffered.safetensors");
        Map<String, String> d = write(direct, specs, true, 2);
        Map<String, String> b = write(buffered, specs, false, 3);
        assertArrayEquals(Files.readAllBytes(buffered), Files.readAllBytes(direct));
        assertEquals(b, d);
        try (SafetensorsFile f = SafetensorsFile.open(direct)) {
            for (TensorSpec t : specs) {
                MemorySegment data = f.data(t.name());
                assertArrayEquals(content(t), data.toArray(ValueLayout.JAVA_BYTE), t.name());
                assertEquals(Crc32c.hex(Crc32c.of(data)), d.get(t.name()), t.name());
            }
        }
    }

    @Test
    void aFileSmallerThanABlock() throws Exception {
        List<TensorSpec> specs = List.of(new TensorSpec("a", DType.U8, new long[] {10}));
        Path direct = dir.resolve("direct.safetensors");
        Path buffered = dir.resolve("buffered.safetensors");
        write(direct, specs, true, 4);
        write(buffered, specs, false, 5);
        assertArrayEquals(Files.readAllBytes(buffered), Files.readAllBytes(direct));
    }

    @Test
    void anUnfinishedFileIsRefusedAndRemoved() throws Exception {
        Path p = dir.resolve("x.safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.create(p, null, List.of(new TensorSpec("a", DType.U8, new long[] {10_000})), true)) {
            w.write("a", 0, MemorySegment.ofArray(new byte[6000]));
            assertThrows(IOException.class, w::commit);
        }
        try (Stream<Path> s = Files.list(dir)) {
            assertEquals(List.of(dir.resolve("probe")), s.toList());
        }
        assertFalse(Files.exists(p));
    }

    @Test
    void aPieceWrittenTwiceIsABug() throws Exception {
        Path p = dir.resolve("x.safetensors");
        try (SafetensorsWriter w = SafetensorsWriter.create(p, null, List.of(new TensorSpec("a", DType.U8, new long[] {10})), true)) {
            w.write("a", 0, MemorySegment.ofArray(new byte[6]));
            assertThrows(IllegalStateException.class, () -> w.write("a", 0, MemorySegment.ofArray(new byte[6])));
        }
        assertFalse(Files.exists(p));
    }
}
