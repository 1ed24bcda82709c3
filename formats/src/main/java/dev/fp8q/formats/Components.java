package dev.fp8q.formats;

import dev.fp8q.formats.FormatException.Rule;
import dev.fp8q.formats.pth.PthFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/**
 * What a path holds: one checkpoint, or a release folder of component checkpoints (one per sub-folder, and
 * one per .pth / .pt file, named by its stem).
 */
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
                String name = child.getFileName().toString();
                if (Files.isDirectory(child) && Checkpoint.isCheckpointFolder(child)) {
                    out.add(new Component(name, child));
                } else if (Files.isRegularFile(child) && PthFile.isPth(child) && !name.startsWith(".")) {
                    out.add(new Component(name.substring(0, name.lastIndexOf('.')), child)); // T5 encoder, VAE
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
}
