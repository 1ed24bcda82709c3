package dev.fp8q.verifier.check;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.fp8q.formats.testing.QuietFuzz;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.extension.ExtendWith;

/** Bounds files under Jazzer (see formats' ParserFuzzTest): the only acceptable failure is a BoundsException. */
@ExtendWith(QuietFuzz.class)
class BoundsFuzzTest {

    @FuzzTest(maxDuration = "10s")
    void boundsFile(byte[] json) throws IOException {
        Path f = Files.createTempFile("fp8q-bounds", ".json");
        try {
            Files.write(f, json);
            Bounds.defaults().withFile(f);
        } catch (Bounds.BoundsException expected) {
            // refused by name
        } finally {
            Files.delete(f);
        }
    }
}
