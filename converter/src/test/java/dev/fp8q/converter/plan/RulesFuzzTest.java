package dev.fp8q.converter.plan;

import com.code_intelligence.jazzer.junit.FuzzTest;
import dev.fp8q.formats.testing.QuietFuzz;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.extension.ExtendWith;

/** Rules files under Jazzer (see formats' ParserFuzzTest): the only acceptable failure is a PlanException. */
@ExtendWith(QuietFuzz.class)
class RulesFuzzTest {

    @FuzzTest(maxDuration = "10s")
    void rulesFile(byte[] json) throws IOException {
        Path f = Files.createTempFile("fp8q-rules", ".json");
        try {
            Files.write(f, json);
            UserRules.read(f, List.of(), List.of());
        } catch (PlanException expected) {
            // refused by name
        } finally {
            Files.delete(f);
        }
    }
}
