package dev.fp8q.formats.safetensors;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The {@code <prefix>.safetensors.index.json} of a sharded checkpoint: tensor name to shard file name.
 * Every shard name must be a plain file name in the index's own folder; anything else is refused.
 */
public record ShardIndex(Path file, long totalSize, Map<String, String> weightMap) {

    public static final String SUFFIX = ".safetensors.index.json";
    private static final ObjectMapper JSON = new ObjectMapper()
            .enable(SerializationFeature.INDENT_OUTPUT);

    public ShardIndex {
        weightMap = java.util.Collections.unmodifiableMap(new LinkedHashMap<>(weightMap));
    }

    /** The distinct shard file names, in first-use order. */
    public Set<String> shardNames() {
        return new LinkedHashSet<>(weightMap.values());
    }

    public static ShardIndex read(Path file) throws FormatException {
        JsonNode root;
        try {
            root = JSON.readTree(file.toFile());
        } catch (JsonProcessingException e) {
            throw new FormatException(Rule.INDEX_INVALID, file, null, e.getOriginalMessage());
        } catch (IOException e) {
            throw new FormatException(Rule.IO, file, null, e.toString(), e);
        }
        if (root == null || !root.isObject()) {
            throw new FormatException(Rule.INDEX_INVALID, file, null, "not a JSON object");
        }
        JsonNode map = root.get("weight_map");
        if (map == null || !map.isObject()) {
            throw new FormatException(Rule.INDEX_INVALID, file, null, "no weight_map object");
        }
        long total = -1;
        JsonNode meta = root.get("metadata");
        if (meta != null && meta.has("total_size")) {
            JsonNode t = meta.get("total_size");
            if (!t.canConvertToExactIntegral() || !t.canConvertToLong() || t.asLong() < 0) {
                throw new FormatException(Rule.INDEX_INVALID, file, null, "metadata.total_size is not a size");
            }
            total = t.asLong();
        }
        Map<String, String> weights = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw new FormatException(Rule.INDEX_INVALID, file, e.getKey(), "weight_map value is not a file name");
            }
            String shard = e.getValue().asText();
            checkShardName(file, e.getKey(), shard);
            weights.put(e.getKey(), shard);
        }
        return new ShardIndex(file, total, weights);
    }

    /** A shard must be a plain file name: no separator, no parent or current folder, nothing empty. */
    static void checkShardName(Path indexFile, String tensor, String shard) throws FormatException {
        if (shard.isEmpty() || shard.equals(".") || shard.equals("..") || shard.contains("/")
                || shard.contains("\\") || shard.contains("..") || shard.indexOf('\0') >= 0
                || shard.contains(":")) {
            throw new FormatException(Rule.INDEX_HOSTILE_PATH, indexFile, tensor, "'" + shard + "'");
        }
    }

    /** Resolves a shard beside the index, refusing one whose real location leaves the folder (symlinks). */
    public Path resolve(String shard) throws FormatException {
        checkShardName(file, null, shard);
        Path dir = file.toAbsolutePath().getParent();
        Path p = dir.resolve(shard);
        if (!Files.exists(p)) {
            throw new FormatException(Rule.INDEX_MISSING_SHARD, file, null, "'" + shard + "'");
        }
        try {
            Path real = p.toRealPath();
            if (!real.getParent().equals(dir.toRealPath())) {
                throw new FormatException(Rule.INDEX_HOSTILE_PATH, file, null, "'" + shard + "' resolves to " + real);
            }
        } catch (IOException e) {
            throw new FormatException(Rule.IO, p, null, e.toString(), e);
        }
        return p;
    }

    /** Writes an index as the hub tooling does: sorted keys, indent 2, atomically. */
    public static void write(Path file, long totalSize, Map<String, String> weightMap) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        root.putObject("metadata").put("total_size", totalSize);
        ObjectNode wm = root.putObject("weight_map");
        new TreeMap<>(weightMap).forEach(wm::put);
        Path tmp = Files.createTempFile(file.toAbsolutePath().getParent(), "." + file.getFileName() + ".", ".tmp");
        try {
            Files.writeString(tmp, JSON.writeValueAsString(root) + "\n");
            Files.setPosixFilePermissions(tmp, SafetensorsWriter.FILE_PERMISSIONS);
            Files.move(tmp, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }
}
