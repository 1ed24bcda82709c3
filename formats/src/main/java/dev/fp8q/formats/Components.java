package dev.fp8q.formats;

import dev.fp8q.formats.FormatException.Rule;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** What a path holds: one checkpoint, or a release folder of component checkpoints (one per sub-folder). */
public final class Components {

    /** One checkpoint of a release; name "" when the path is itself the checkpoint. */
    public record Component(String name, Path path) {}

    private Components() {}

    public static List<Component> of(Path path) throws FormatException {
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
    public static List<Path> unreadable(Path path) {
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
