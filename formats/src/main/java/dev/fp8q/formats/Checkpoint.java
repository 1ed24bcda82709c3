package dev.fp8q.formats;

import dev.fp8q.formats.FormatException.Rule;
import dev.fp8q.formats.pth.PthFile;
import dev.fp8q.formats.safetensors.SafetensorsFile;
import dev.fp8q.formats.safetensors.ShardIndex;
import dev.fp8q.formats.safetensors.TensorEntry;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.stream.Stream;

/**
 * One checkpoint: a safetensors file, the shards of a folder (through its index when it has one), or a .pth.
 * Every shard is validated and mapped on open; tensors are looked up by name across shards.
 */
public final class Checkpoint implements AutoCloseable {

    /** A tensor and the file (shard) that holds it. */
    public record Tensor(TensorEntry entry, TensorFile shard) {
        public String name() {
            return entry.name();
        }

        public MemorySegment data() {
            return shard.data(entry);
        }

        /** A tensor held in memory (data: its bytes in dtype), as a shard of its own; for checks and benchmarks. */
        public static Tensor inMemory(String name, DType dtype, long[] shape, MemorySegment data) {
            TensorEntry e = new TensorEntry(name, dtype, shape, 0, data.byteSize());
            return new Tensor(e, new InMemory(e, data));
        }
    }

    private record InMemory(TensorEntry entry, MemorySegment bytes) implements TensorFile {
        @Override
        public Path path() {
            return Path.of(entry.name());
        }

        @Override
        public Map<String, String> metadata() {
            return null;
        }

        @Override
        public List<TensorEntry> tensors() {
            return List.of(entry);
        }

        @Override
        public Optional<TensorEntry> tensor(String name) {
            return Optional.of(entry).filter(e -> e.name().equals(name));
        }

        @Override
        public MemorySegment data(TensorEntry t) {
            return bytes;
        }

        @Override
        public void close() {}
    }

    private final Path root;
    private final ShardIndex index;
    private final List<TensorFile> shards;
    private final Map<String, Tensor> tensors;

    private Checkpoint(Path root, ShardIndex index, List<? extends TensorFile> shards, Map<String, Tensor> tensors) {
        this.root = root;
        this.index = index;
        this.shards = List.copyOf(shards);
        this.tensors = Collections.unmodifiableMap(tensors);
    }

    /** Opens a .safetensors file, a folder of shards, a shard index file, or a .pth / .pt file. */
    public static Checkpoint open(Path path) throws FormatException {
        return open(path, null);
    }

    /** As {@link #open(Path)}; pthKey picks the state dict inside a .pth that nests it (null: find it). */
    public static Checkpoint open(Path path, String pthKey) throws FormatException {
        if (Files.isDirectory(path)) {
            List<Path> indexes = list(path, ShardIndex.SUFFIX);
            if (indexes.size() > 1) {
                throw new FormatException(Rule.NO_CHECKPOINT, path, null, "several shard indexes: " + names(indexes));
            }
            if (indexes.size() == 1) {
                return openIndexed(path, ShardIndex.read(indexes.getFirst()));
            }
            List<Path> files = list(path, ".safetensors");
            if (files.isEmpty()) {
                throw new FormatException(Rule.NO_CHECKPOINT, path, null, "no .safetensors files in this folder");
            }
            return openFiles(path, files);
        }
        if (!Files.exists(path)) {
            throw new FormatException(Rule.IO, path, null, "no such file or folder");
        }
        if (PthFile.isPth(path)) {
            PthFile f = PthFile.open(path, pthKey);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            f.tensors().forEach(e -> tensors.put(e.name(), new Tensor(e, f)));
            return new Checkpoint(path, null, List.of(f), tensors);
        }
        if (path.getFileName().toString().endsWith(ShardIndex.SUFFIX)) {
            return openIndexed(path.toAbsolutePath().getParent(), ShardIndex.read(path));
        }
        return openFiles(path, List.of(path));
    }

    /** True when the folder holds a checkpoint directly (shards or an index), not only sub-folders. */
    public static boolean isCheckpointFolder(Path dir) throws FormatException {
        return !list(dir, ".safetensors").isEmpty() || !list(dir, ShardIndex.SUFFIX).isEmpty();
    }

    static List<Path> list(Path dir, String suffix) throws FormatException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(suffix) && !p.getFileName().toString().startsWith("."))
                    .sorted().toList();
        } catch (IOException e) {
            throw new FormatException(Rule.IO, dir, null, e.toString(), e);
        }
    }

    private static String names(List<Path> paths) {
        return String.join(", ", paths.stream().map(p -> p.getFileName().toString()).toList());
    }

    private static Checkpoint openFiles(Path root, List<Path> files) throws FormatException {
        List<SafetensorsFile> shards = new ArrayList<>();
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try {
            for (Path f : files) {
                SafetensorsFile sf = SafetensorsFile.open(f);
                shards.add(sf);
                for (TensorEntry e : sf.tensors()) {
                    Tensor prev = tensors.put(e.name(), new Tensor(e, sf));
                    if (prev != null) {
                        throw new FormatException(Rule.DUPLICATE_TENSOR, f, e.name(), "also in "
                                + prev.shard().path().getFileName());
                    }
                }
            }
        } catch (FormatException | RuntimeException e) {
            shards.forEach(SafetensorsFile::close);
            throw e;
        }
        return new Checkpoint(root, null, shards, tensors);
    }

    private static Checkpoint openIndexed(Path root, ShardIndex index) throws FormatException {
        List<SafetensorsFile> shards = new ArrayList<>();
        Map<String, SafetensorsFile> byShard = new HashMap<>();
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        try {
            for (String name : index.shardNames()) {
                SafetensorsFile sf = SafetensorsFile.open(index.resolve(name));
                shards.add(sf);
                byShard.put(name, sf);
            }
            for (Map.Entry<String, String> e : index.weightMap().entrySet()) {
                SafetensorsFile sf = byShard.get(e.getValue());
                TensorEntry t = sf.tensor(e.getKey()).orElseThrow(() -> new FormatException(Rule.INDEX_MISMATCH,
                        index.file(), e.getKey(), "the index puts it in " + e.getValue() + ", which lacks it"));
                tensors.put(e.getKey(), new Tensor(t, sf));
            }
            for (SafetensorsFile sf : shards) {
                for (TensorEntry t : sf.tensors()) {
                    if (tensors.get(t.name()) == null || tensors.get(t.name()).shard() != sf) {
                        throw new FormatException(Rule.INDEX_MISMATCH, sf.path(), t.name(),
                                "in this shard but the index maps it elsewhere or not at all");
                    }
                }
            }
        } catch (FormatException | RuntimeException e) {
            shards.forEach(SafetensorsFile::close);
            throw e;
        }
        return new Checkpoint(root, index, shards, tensors);
    }

    /**
     * A checkpoint over files already open (a view that computes its tensors, say), one shard each, in order; the
     * first file holding a name wins. Closing it closes them.
     */
    public static Checkpoint of(Path root, List<? extends TensorFile> files) {
        Map<String, Tensor> tensors = new LinkedHashMap<>();
        for (TensorFile f : files) {
            for (TensorEntry e : f.tensors()) {
                tensors.putIfAbsent(e.name(), new Tensor(e, f));
            }
        }
        return new Checkpoint(root, null, files, tensors);
    }

    public Path root() {
        return root;
    }

    public Optional<ShardIndex> index() {
        return Optional.ofNullable(index);
    }

    public List<TensorFile> shards() {
        return shards;
    }

    /** All tensors, shard by shard in data order. */
    public List<Tensor> tensors() {
        List<Tensor> out = new ArrayList<>(tensors.size());
        for (TensorFile sf : shards) {
            for (TensorEntry e : sf.tensors()) {
                Tensor t = tensors.get(e.name());
                if (t != null && t.shard() == sf) {
                    out.add(t);
                }
            }
        }
        return out;
    }

    public Optional<Tensor> tensor(String name) {
        return Optional.ofNullable(tensors.get(name));
    }

    public int size() {
        return tensors.size();
    }

    public long totalBytes() {
        long n = 0;
        for (Tensor t : tensors.values()) {
            n += t.entry().byteSize();
        }
        return n;
    }

    @Override
    public void close() {
        shards.forEach(TensorFile::close);
    }
}
