package dev.fp8q.formats;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import dev.fp8q.formats.FormatException.Rule;
import dev.fp8q.formats.pth.PthFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * What a path holds: one checkpoint, a diffusers pipeline (model_index.json: one sub-folder per component), or a
 * release folder (weights at the top, checkpoint sub-folders such as high_noise_model/, and each .pth / .pt file,
 * named by its stem).
 */
public final class Components {

    /** The file that makes a folder a diffusers pipeline. */
    public static final String MODEL_INDEX = "model_index.json";

    /**
     * One checkpoint of a release; name "" when the path is itself the checkpoint. declaredClass: the class a
     * diffusers pipeline's model_index.json names for it (e.g. WanTransformer3DModel), else null.
     */
    public record Component(String name, Path path, String declaredClass) {
        public Component(String name, Path path) {
            this(name, path, null);
        }

        public boolean isPth() {
            return Files.isRegularFile(path) && PthFile.isPth(path);
        }
    }

    private Components() {}

    public static List<Component> of(Path path) throws FormatException {
        if (!Files.exists(path)) {
            throw new FormatException(Rule.IO, path, null, "no such file or folder");
        }
        if (!Files.isDirectory(path)) {
            return List.of(new Component("", path));
        }
        List<Component> out = Files.isRegularFile(path.resolve(MODEL_INDEX)) ? pipeline(path) : release(path);
        if (out.isEmpty()) {
            throw new FormatException(Rule.NO_CHECKPOINT, path, null,
                    "no .safetensors files, shard index or checkpoint sub-folders here");
        }
        return out;
    }

    /** A diffusers pipeline: the sub-folders model_index.json names that hold weights (not tokenizer/, scheduler/). */
    private static List<Component> pipeline(Path dir) throws FormatException {
        Path index = dir.resolve(MODEL_INDEX);
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(index.toFile());
        } catch (IOException e) {
            throw new FormatException(Rule.INDEX_INVALID, index, null, "not JSON: " + e.getMessage());
        }
        if (root == null || !root.isObject()) {
            throw new FormatException(Rule.INDEX_INVALID, index, null, "not a JSON object");
        }
        List<Component> out = new ArrayList<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            JsonNode v = e.getValue();
            String name = e.getKey();
            if (!v.isArray() || v.size() != 2 || name.contains("/") || name.contains("\\") || name.startsWith(".")) {
                continue; // _class_name, boundary_ratio, ...; a component name never leaves the folder
            }
            Path sub = dir.resolve(name);
            if (Files.isDirectory(sub) && Checkpoint.isCheckpointFolder(sub)) {
                out.add(new Component(name, sub, v.get(1).asText(null)));
            }
        }
        out.sort(java.util.Comparator.comparing(Component::name));
        return out;
    }

    /** Weights at the top (name ""), checkpoint sub-folders, and .pth files at the top. */
    private static List<Component> release(Path path) throws FormatException {
        List<Component> out = new ArrayList<>();
        if (Checkpoint.isCheckpointFolder(path)) {
            out.add(new Component("", path));
        }
        try (Stream<Path> s = Files.list(path)) {
            for (Path child : s.sorted().toList()) {
                String name = child.getFileName().toString();
                if (name.startsWith(".")) {
                    continue;
                }
                if (Files.isDirectory(child) && Checkpoint.isCheckpointFolder(child)) {
                    out.add(new Component(name, child));
                } else if (Files.isRegularFile(child) && PthFile.isPth(child)) {
                    out.add(new Component(name.substring(0, name.lastIndexOf('.')), child)); // T5 encoder, VAE
                }
            }
        } catch (IOException e) {
            throw new FormatException(Rule.IO, path, null, e.toString(), e);
        }
        return out;
    }
}
