package dev.fp8q.cli;

import dev.fp8q.formats.Checkpoint;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import dev.fp8q.testdata.WanCheckpoints;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** Resolves what the user named: a checkpoint, a release folder of components, or the embedded default. */
final class Inputs {

    /** One checkpoint of a release: "" when the path is itself the checkpoint. */
    record Component(String name, Path path) {}

    private Inputs() {}

    /** The embedded tiny Wan-shaped checkpoint, extracted to a temporary file removed at exit. */
    static Path embeddedDefault() throws IOException {
        Path dir = Files.createTempDirectory("fp8q-default");
        Path file = WanCheckpoints.extractEmbedded(dir.resolve("wan-tiny-t2v-bf16.safetensors"));
        file.toFile().deleteOnExit();
        dir.toFile().deleteOnExit();
        return file;
    }

    static List<Component> components(Path path) throws FormatException {
        if (!Files.exists(path)) {
            throw new FormatException(Rule.IO, path, null, "no such file or folder");
        }
        if (!Files.isDirectory(path) || Checkpoint.isCheckpointFolder(path)) {
            return List.of(new Component("", path));
        }
        List<Component> out = new ArrayList<>();
        try (Stream<Path> s = Files.list(path)) {
            for (Path child : s.sorted().toList()) {
                if (Files.isDirectory(child) && Checkpoint.isCheckpointFolder(child)) {
                    out.add(new Component(child.getFileName().toString(), child));
                }
            }
        } catch (IOException e) {
            throw new FormatException(Rule.IO, path, null, e.toString(), e);
        }
        if (out.isEmpty()) {
            throw new FormatException(Rule.NO_CHECKPOINT, path, null,
                    "no .safetensors files, shard index or checkpoint sub-folders here");
        }
        return out;
    }

    /** Files a release folder holds that fp8q does not read yet (.pth: T5 encoder, VAE). */
    static List<Path> unreadable(Path path) {
        if (!Files.isDirectory(path)) {
            return List.of();
        }
        try (Stream<Path> s = Files.list(path)) {
            return s.filter(p -> p.toString().endsWith(".pth") || p.toString().endsWith(".pt")).sorted().toList();
        } catch (IOException e) {
            return List.of();
        }
    }
}
