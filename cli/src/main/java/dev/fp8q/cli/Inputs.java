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
        // deleteOnExit deletes in reverse order of registration: the folder first would fail, not yet empty.
        dir.toFile().deleteOnExit();
        Path file = dir.resolve("wan-tiny-t2v-bf16.safetensors");
        file.toFile().deleteOnExit();
        dev.fp8q.formats.Interrupts.scratch(dir);
        return WanCheckpoints.extractEmbedded(file);
    }
}
