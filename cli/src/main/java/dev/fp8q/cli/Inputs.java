package dev.fp8q.cli;

import dev.fp8q.testdata.WanCheckpoints;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Resolves what the user named: a checkpoint, a release folder of components, or the embedded default. */
final class Inputs {

    private Inputs() {}

    /** The embedded tiny Wan-shaped checkpoint, extracted to a temporary file removed at exit. */
    static Path embeddedDefault() throws IOException {
        Path dir = Files.createTempDirectory("fp8q-default");
        Path file = WanCheckpoints.extractEmbedded(dir.resolve("wan-tiny-t2v-bf16.safetensors"));
        file.toFile().deleteOnExit();
        dir.toFile().deleteOnExit();
        return file;
    }
}
