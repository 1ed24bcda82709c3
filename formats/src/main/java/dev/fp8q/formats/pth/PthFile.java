package dev.fp8q.formats.pth;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import dev.fp8q.formats.TensorFile;
import dev.fp8q.formats.safetensors.TensorEntry;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import org.apache.commons.compress.archivers.zip.ZipArchiveEntry;
import org.apache.commons.compress.archivers.zip.ZipFile;

/**
 * A PyTorch zip checkpoint (torch.save since 1.6; FORMATS.md section 4), mapped once. The zip's central
 * directory gives each storage's data offset, so contiguous tensors are slices of the mapping, never copies;
 * a non-contiguous view is gathered into a contiguous buffer when read. data.pkl goes through the
 * allow-listed {@link Unpickler}. The state dict is the top-level dict, the dict under {@code key}, or the
 * only top-level dict holding tensors; nested dicts are flattened with "." as torch names modules.
 */
public final class PthFile implements TensorFile {

    /** data.pkl larger than this is refused (a state dict's pickle is kilobytes to a few megabytes). */
    static final long MAX_PICKLE = 256L << 20;

    private record View(Pickled.Tensor tensor, long storageStart, boolean contiguous) {}

    private final Path path;
    private final Arena arena;
    private final MemorySegment mapping;
    private final List<TensorEntry> entries;
    private final Map<String, TensorEntry> byName;
    private final Map<String, View> views;
    private final List<String> skipped;

    private PthFile(Path path, Arena arena, MemorySegment mapping, Map<String, TensorEntry> byName,
            Map<String, View> views, List<String> skipped) {
        this.path = path;
        this.arena = arena;
        this.mapping = mapping;
        this.byName = byName;
        this.entries = List.copyOf(byName.values());
        this.views = views;
        this.skipped = List.copyOf(skipped);
    }

    /** True for the names fp8q reads as PyTorch checkpoints. */
    public static boolean isPth(Path p) {
        String n = p.getFileName() == null ? "" : p.getFileName().toString();
        return n.endsWith(".pth") || n.endsWith(".pt");
    }

    public static PthFile open(Path path, String key) throws FormatException {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            MemorySegment mapping = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            checkMagic(path, mapping);
            Archive a = Archive.read(path, size);
            Object root = Unpickler.load(ByteBuffer.wrap(a.pickle));
            Map<?, ?> dict = stateDict(path, root, key);
            Map<String, TensorEntry> byName = new LinkedHashMap<>();
            Map<String, View> views = new HashMap<>();
            List<String> skipped = new ArrayList<>();
            flatten(path, "", dict, a, byName, views, skipped, Collections.newSetFromMap(new IdentityHashMap<>()), 0);
            return new PthFile(path, arena, mapping, byName, views, skipped);
        } catch (FormatException e) {
            arena.close();
            throw e.file() == null ? e.withFile(path) : e;
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw new FormatException(Rule.IO, path, null, e.toString(), e);
        }
    }

    private static void checkMagic(Path path, MemorySegment m) throws FormatException {
        if (m.byteSize() >= 2 && (m.get(ValueLayout.JAVA_BYTE, 0) & 0xFF) == 0x80) {
            throw new FormatException(Rule.PTH_LEGACY, path, null, null); // a bare pickle: torch < 1.6 or _use_new_zipfile_serialization=False
        }
        if (m.byteSize() < 4 || m.get(ValueLayout.JAVA_INT_UNALIGNED, 0) != 0x04034b50) {
            throw new FormatException(Rule.PTH_INVALID, path, null, "not a zip archive");
        }
    }

    /** The zip's entries as torch lays them out: one root folder, data.pkl, byteorder, data/<key>. */
    private record Archive(byte[] pickle, Map<String, long[]> storages) {

        static Archive read(Path path, long fileSize) throws IOException, FormatException {
            try (ZipFile zip = ZipFile.builder().setPath(path).get()) {
                String root = null;
                ZipArchiveEntry pkl = null;
                ZipArchiveEntry order = null;
                Map<String, long[]> storages = new HashMap<>();
                for (ZipArchiveEntry e : Collections.list(zip.getEntries())) {
                    String name = e.getName();
                    if (name.startsWith("/") || name.contains("\\") || List.of(name.split("/")).contains("..")) {
                        throw new FormatException(Rule.PTH_HOSTILE_PATH, path, null, "'" + name + "'");
                    }
                    int slash = name.indexOf('/');
                    if (slash <= 0) {
                        throw new FormatException(Rule.PTH_INVALID, path, null, "entry '" + name + "' outside a root folder");
                    }
                    String r = name.substring(0, slash);
                    if (root != null && !root.equals(r)) {
                        throw new FormatException(Rule.PTH_INVALID, path, null, "two root folders: " + root + ", " + r);
                    }
                    root = r;
                    String rest = name.substring(slash + 1);
                    if (e.getMethod() != ZipArchiveEntry.STORED && e.getMethod() != java.util.zip.ZipEntry.DEFLATED) {
                        throw new FormatException(Rule.PTH_INVALID, path, null, "entry '" + name + "' uses compression method "
                                + e.getMethod() + " (torch stores entries uncompressed)");
                    }
                    if (rest.equals("data.pkl")) {
                        pkl = e;
                    } else if (rest.equals("byteorder")) {
                        order = e;
                    } else if (rest.startsWith("data/") && !e.isDirectory()) {
                        if (e.getMethod() != ZipArchiveEntry.STORED) {
                            throw new FormatException(Rule.PTH_INVALID, path, null, "storage '" + name
                                    + "' is compressed; torch stores them uncompressed so they can be mapped");
                        }
                        long off = e.getDataOffset();
                        long len = e.getSize();
                        if (off < 0 || len < 0 || off > fileSize || len > fileSize - off) {
                            throw new FormatException(Rule.PTH_INVALID, path, null, "storage '" + name + "' leaves the file");
                        }
                        storages.put(rest.substring("data/".length()), new long[] {off, len});
                    }
                }
                if (pkl == null) {
                    throw new FormatException(Rule.PTH_INVALID, path, null, "no data.pkl");
                }
                if (order != null && !"little".equals(new String(readAll(zip, order, path, 16)).strip())) {
                    throw new FormatException(Rule.PTH_INVALID, path, null, "big-endian storages are not supported");
                }
                return new Archive(readAll(zip, pkl, path, MAX_PICKLE), storages);
            }
        }

        private static byte[] readAll(ZipFile zip, ZipArchiveEntry e, Path path, long limit) throws IOException, FormatException {
            if (e.getSize() > limit) {
                throw new FormatException(Rule.PTH_INVALID, path, null, "'" + e.getName() + "' is larger than " + limit + " bytes");
            }
            try (InputStream in = zip.getInputStream(e)) {
                byte[] b = in.readNBytes((int) limit + 1);
                if (b.length > limit) {
                    throw new FormatException(Rule.PTH_INVALID, path, null, "'" + e.getName() + "' is larger than " + limit + " bytes");
                }
                return b;
            }
        }
    }

    private static Map<?, ?> stateDict(Path path, Object root, String key) throws FormatException {
        if (!(root instanceof Map<?, ?> top)) {
            throw new FormatException(Rule.PTH_INVALID, path, null, "the pickle holds a " + root.getClass().getSimpleName()
                    + ", not a dict of tensors");
        }
        if (key != null) {
            if (top.get(key) instanceof Map<?, ?> m) {
                return m;
            }
            throw new FormatException(Rule.PTH_INVALID, path, null, "no dict under key '" + key + "' (top-level keys: "
                    + keys(top) + ")");
        }
        if (top.values().stream().anyMatch(v -> v instanceof Pickled.Tensor)) {
            return top;
        }
        List<?> candidates = top.entrySet().stream().filter(e -> e.getValue() instanceof Map<?, ?> m
                && m.values().stream().anyMatch(v -> v instanceof Pickled.Tensor)).map(Map.Entry::getKey).toList();
        if (candidates.size() == 1) {
            return (Map<?, ?>) top.get(candidates.getFirst());
        }
        throw new FormatException(Rule.PTH_INVALID, path, null, "no tensors at the top level; choose the state dict with "
                + "--key (candidates: " + (candidates.isEmpty() ? keys(top) : candidates) + ")");
    }

    private static String keys(Map<?, ?> m) {
        return m.keySet().stream().limit(20).map(String::valueOf).toList().toString();
    }

    private static void flatten(Path path, String prefix, Map<?, ?> dict, Archive a, Map<String, TensorEntry> byName,
            Map<String, View> views, List<String> skipped, Set<Object> seen, int depth) throws FormatException {
        if (!seen.add(dict) || depth > 32) {
            throw new FormatException(Rule.PTH_INVALID, path, null, "dicts nested in themselves or deeper than 32 levels");
        }
        for (Map.Entry<?, ?> e : dict.entrySet()) {
            String name = prefix + e.getKey();
            if (e.getValue() instanceof Pickled.Tensor t) {
                if (byName.containsKey(name)) {
                    throw new FormatException(Rule.DUPLICATE_TENSOR, path, name, "twice after flattening nested dicts");
                }
                View v = view(path, name, t, a);
                byName.put(name, new TensorEntry(name, t.storage().dtype(), t.shape(), v.storageStart(),
                        v.storageStart() + numel(t.shape()) * t.storage().dtype().byteSize()));
                views.put(name, v);
            } else if (e.getValue() instanceof Map<?, ?> m && e.getKey() instanceof String) {
                flatten(path, name + ".", m, a, byName, views, skipped, seen, depth + 1);
            } else {
                skipped.add(name);
            }
        }
    }

    /** Checks that the view lies inside its storage, which lies inside its zip entry. */
    private static View view(Path path, String name, Pickled.Tensor t, Archive a) throws FormatException {
        long[] entry = a.storages().get(t.storage().key());
        if (entry == null) {
            throw new FormatException(Rule.PTH_INVALID, path, name, "storage '" + t.storage().key() + "' is not in the archive");
        }
        int es = t.storage().dtype().byteSize();
        try {
            if (Math.multiplyExact(t.storage().numel(), es) > entry[1]) {
                throw new FormatException(Rule.PTH_INVALID, path, name, "storage '" + t.storage().key() + "' holds "
                        + entry[1] + " bytes, less than its " + t.storage().numel() + " elements");
            }
            long n = numel(t.shape());
            if (n > 0) {
                long last = t.offset();
                for (int i = 0; i < t.shape().length; i++) {
                    last = Math.addExact(last, Math.multiplyExact(t.shape()[i] - 1, t.stride()[i]));
                }
                if (last >= t.storage().numel()) {
                    throw new FormatException(Rule.PTH_INVALID, path, name, "the view reaches element " + last
                            + " of a storage of " + t.storage().numel());
                }
            }
            Math.multiplyExact(n, es);
        } catch (ArithmeticException e) {
            throw new FormatException(Rule.VALIDATION_OVERFLOW, path, name, "shape, strides and offset overflow");
        }
        boolean contiguous = true;
        long expect = 1;
        for (int i = t.shape().length - 1; i >= 0; i--) {
            if (t.shape()[i] != 1 && t.stride()[i] != expect) {
                contiguous = false;
            }
            expect *= t.shape()[i];
        }
        return new View(t, entry[0] + t.offset() * es, contiguous || numel(t.shape()) == 0);
    }

    private static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    /** Names of non-tensor values in the state dict (counters, strings), which are not carried over. */
    public List<String> skipped() {
        return skipped;
    }

    @Override
    public Path path() {
        return path;
    }

    @Override
    public Map<String, String> metadata() {
        return null;
    }

    @Override
    public List<TensorEntry> tensors() {
        return entries;
    }

    @Override
    public Optional<TensorEntry> tensor(String name) {
        return Optional.ofNullable(byName.get(name));
    }

    @Override
    public MemorySegment data(TensorEntry e) {
        View v = views.get(e.name());
        if (v.contiguous()) {
            return mapping.asSlice(e.begin(), e.byteSize());
        }
        return gather(v, e.byteSize());
    }

    /** A non-contiguous view copied element by element, in row-major order, into a buffer of its own. */
    private MemorySegment gather(View v, long bytes) {
        Pickled.Tensor t = v.tensor();
        int es = t.storage().dtype().byteSize();
        long storageBase = v.storageStart() - t.offset() * es;
        MemorySegment out = Arena.ofAuto().allocate(bytes, 8);
        int rank = t.shape().length;
        long[] idx = new long[rank];
        long n = bytes / es;
        for (long i = 0; i < n; i++) {
            long src = t.offset();
            for (int d = 0; d < rank; d++) {
                src += idx[d] * t.stride()[d];
            }
            MemorySegment.copy(mapping, storageBase + src * es, out, i * es, es);
            for (int d = rank - 1; d >= 0 && ++idx[d] == t.shape()[d]; d--) {
                idx[d] = 0;
            }
        }
        return out.asReadOnly();
    }

    @Override
    public void close() {
        arena.close();
    }
}
