package dev.fp8q.formats.fuzz;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.fp8q.formats.testing.QuietFuzz;
import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.manifest.Manifest;
import dev.fp8q.formats.pth.Unpickler;
import dev.fp8q.formats.safetensors.Header;
import dev.fp8q.formats.safetensors.ShardIndex;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.api.extension.ExtendWith;

/**
 * Coverage-guided fuzzing of every parser in formats (Jazzer). Without JAZZER_FUZZ these run once per input of
 * the committed seed corpus (src/test/resources/dev/fp8q/formats/fuzz/ParserFuzzTestInputs/METHOD/) as
 * regression tests; with JAZZER_FUZZ=1 Jazzer mutates inputs for each target's maxDuration. The only
 * acceptable failure is the project's own FormatException: anything else, a hang or an out-of-memory fails.
 */
@ExtendWith(QuietFuzz.class)
class ParserFuzzTest {

    /** JUnit removes it with its files after the class (deleteOnExit left the folder: it was never empty). */
    @TempDir
    static Path scratch;

    @FuzzTest(maxDuration = "10s")
    void safetensorsHeader(byte[] header) {
        try {
            Header.parse(header, header.length + 1024L);
        } catch (FormatException expected) {
            // refused by name: the contract
        }
    }

    @FuzzTest(maxDuration = "10s")
    void safetensorsFile(byte[] file) throws IOException {
        open(file, "f.safetensors");
    }

    @FuzzTest(maxDuration = "10s")
    void pickle(byte[] pickle) {
        try {
            Unpickler.load(ByteBuffer.wrap(pickle));
        } catch (FormatException expected) {
            // refused by name
        }
    }

    @FuzzTest(maxDuration = "10s")
    void pthArchive(byte[] file) throws IOException {
        open(file, "f.pth");
    }

    @FuzzTest(maxDuration = "10s")
    void shardIndex(byte[] json) throws IOException {
        Path f = scratch.resolve("m" + ShardIndex.SUFFIX);
        Files.write(f, json);
        try {
            ShardIndex.read(f);
        } catch (FormatException expected) {
            // refused by name
        }
    }

    @FuzzTest(maxDuration = "10s")
    void manifest(byte[] json) throws IOException {
        Path f = scratch.resolve(Manifest.FILE);
        Files.write(f, json);
        try {
            Manifest.read(f);
        } catch (FormatException expected) {
            // refused by name
        }
    }

    private static void open(byte[] bytes, String name) throws IOException {
        Path f = scratch.resolve(name);
        Files.write(f, bytes);
        try (Checkpoint cp = Checkpoint.open(f)) {
            for (Checkpoint.Tensor t : cp.tensors()) {
                t.data().byteSize(); // a read outside the file would throw here
                if (t.data().byteSize() > 0) {
                    t.data().get(java.lang.foreign.ValueLayout.JAVA_BYTE, t.data().byteSize() - 1);
                }
            }
        } catch (FormatException expected) {
            // refused by name
        }
    }
}
