package dev.fp8q.formats.safetensors;

import dev.fp8q.formats.Crc32c;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentLinkedQueue;

/**
 * Streams a safetensors file whose bytes equal the reference writer's for the same tensors and metadata.
 * The layout (order, offsets, header) is fixed up front, so tensors may be written in any order and from
 * several threads at once; the file is written to a temporary sibling and renamed into place by
 * {@link #commit()}. Closing without commit deletes the temporary file.
 */
public final class SafetensorsWriter implements AutoCloseable {

    /** The reference order: dtype descending, then name by Unicode code point (UTF-8 byte order). */
    public static final Comparator<TensorSpec> REFERENCE_ORDER = Comparator
            .comparing(TensorSpec::dtype, Comparator.reverseOrder())
            .thenComparing(TensorSpec::name, SafetensorsWriter::compareCodePoints);

    static final java.util.Set<java.nio.file.attribute.PosixFilePermission> FILE_PERMISSIONS =
            java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--");

    /** fsync before the rename; off with -Dfp8q.fsync=false (the temp-then-rename already survives a kill). */
    static final boolean SYNC = !"false".equals(System.getProperty("fp8q.fsync"));

    /** Whether outputs are synced before they are published (-Dfp8q.fsync). */
    public static boolean syncs() {
        return SYNC;
    }
    /**
     * Direct I/O (where the file system has it) on a machine whose cores are the limit: there the page cache's copy
     * and fresh pages cost more than the conversion (2 cores: 1.1 s direct against 1.8 s buffered with fsync and
     * 2.1-2.3 s without). With cores to spare the page cache with background flushes is faster, the kernel's
     * writeback keeping more writes in flight than one writer per file (16 cores: 3.5-3.8 s against 4.2-4.6 s
     * with fsync, 2.35 s against 3.83 s without). -Dfp8q.direct=true|false overrides the choice.
     */
    static final boolean DIRECT = Boolean.parseBoolean(System.getProperty("fp8q.direct",
            String.valueOf(Runtime.getRuntime().availableProcessors() < 8)));

    private final Path target;
    private final Path temp;
    private final Output output;
    private final List<TensorEntry> layout;
    private final Map<String, Integer> index = new HashMap<>();
    /** Per tensor: {offset, length, crc} of each write done, summed for the commit's check and combined into the CRC32C. */
    private final List<ConcurrentLinkedQueue<long[]>> pieces;
    private final long dataStart;
    private boolean committed;

    private SafetensorsWriter(Path target, Map<String, String> metadata, List<TensorEntry> layout, boolean direct)
            throws IOException {
        this.target = target;
        this.layout = layout;
        this.pieces = new ArrayList<>(layout.size());
        for (int i = 0; i < layout.size(); i++) {
            index.put(layout.get(i).name(), i);
            pieces.add(new ConcurrentLinkedQueue<>());
        }
        byte[] header = HeaderEncoder.encode(metadata, layout);
        this.dataStart = 8 + header.length;
        Path dir = target.toAbsolutePath().getParent();
        this.temp = Files.createTempFile(dir, "." + target.getFileName() + ".", ".tmp");
        Output out = null;
        try {
            out = direct ? DirectOutput.open(temp, fileSize()) : null;
            out = out != null ? out : new BufferedOutput(temp, SYNC);
            ByteBuffer head = ByteBuffer.allocate(8 + header.length).order(ByteOrder.LITTLE_ENDIAN);
            head.putLong(header.length).put(header).flip();
            out.write(0, MemorySegment.ofBuffer(head));
        } catch (IOException | RuntimeException e) {
            if (out != null) {
                out.close();
            }
            Files.deleteIfExists(temp);
            throw e;
        }
        this.output = out;
    }

    /**
     * Starts a file. {@code metadata} may be null (no {@code __metadata__}); the reference writes map keys
     * in hash order, so pass a sorted map when byte equality with it matters for more than one key.
     */
    public static SafetensorsWriter create(Path target, Map<String, String> metadata, List<TensorSpec> tensors)
            throws FormatException {
        return create(target, metadata, tensors, DIRECT);
    }

    /** direct: try direct I/O (falling back to buffered where the file system has none). */
    static SafetensorsWriter create(Path target, Map<String, String> metadata, List<TensorSpec> tensors, boolean direct)
            throws FormatException {
        List<TensorEntry> layout = layout(target, tensors);
        try {
            return new SafetensorsWriter(target, metadata, layout, direct);
        } catch (IOException e) {
            throw new FormatException(Rule.IO, target, null, e.toString(), e);
        }
    }

    /** The reference writer's layout of these tensors: order and offsets. */
    public static List<TensorEntry> layout(Path target, List<TensorSpec> tensors) throws FormatException {
        List<TensorSpec> sorted = new ArrayList<>(tensors);
        sorted.sort(REFERENCE_ORDER);
        Set<String> names = new HashSet<>();
        List<TensorEntry> out = new ArrayList<>(sorted.size());
        long offset = 0;
        for (TensorSpec t : sorted) {
            if (!names.add(t.name())) {
                throw new FormatException(Rule.WRITE_INVALID, target, t.name(), "duplicate tensor name");
            }
            long bytes = byteSize(target, t);
            out.add(new TensorEntry(t.name(), t.dtype(), t.shape(), offset, offset + bytes));
            offset = Math.addExact(offset, bytes);
        }
        return out;
    }

    private static long byteSize(Path target, TensorSpec t) throws FormatException {
        try {
            long n = 1;
            for (long d : t.shape()) {
                if (d < 0) {
                    throw new ArithmeticException("negative dimension");
                }
                n = Math.multiplyExact(n, d);
            }
            long bits = Math.multiplyExact(n, t.dtype().bits());
            if (bits % 8 != 0) {
                throw new FormatException(Rule.MISALIGNED_SUBBYTE, target, t.name(), t.dtype().name());
            }
            return bits / 8;
        } catch (ArithmeticException e) {
            throw new FormatException(Rule.VALIDATION_OVERFLOW, target, t.name(), e.getMessage());
        }
    }

    static int compareCodePoints(String a, String b) {
        int i = 0;
        int j = 0;
        while (i < a.length() && j < b.length()) {
            int ca = a.codePointAt(i);
            int cb = b.codePointAt(j);
            if (ca != cb) {
                return Integer.compare(ca, cb);
            }
            i += Character.charCount(ca);
            j += Character.charCount(cb);
        }
        return Boolean.compare(i < a.length(), j < b.length());
    }

    /** Tensors in file order with their offsets. */
    public List<TensorEntry> layout() {
        return layout;
    }

    public long dataStart() {
        return dataStart;
    }

    public long fileSize() {
        return dataStart + (layout.isEmpty() ? 0 : layout.getLast().end());
    }

    public TensorEntry entry(String name) {
        Integer i = index.get(name);
        if (i == null) {
            throw new IllegalArgumentException("no tensor '" + name + "' in this file's layout");
        }
        return layout.get(i);
    }

    /** Writes a whole tensor. Thread-safe; each tensor once. */
    public void write(String name, MemorySegment bytes) throws IOException {
        write(name, 0, bytes);
    }

    /** Writes part of a tensor starting {@code offset} bytes into it. Thread-safe. */
    public void write(String name, long offset, MemorySegment bytes) throws IOException {
        int i = index.getOrDefault(name, -1);
        if (i < 0) {
            throw new IllegalArgumentException("no tensor '" + name + "' in this file's layout");
        }
        TensorEntry t = layout.get(i);
        if (offset < 0 || offset + bytes.byteSize() > t.byteSize()) {
            throw new IllegalArgumentException("write past the end of tensor '" + name + "'");
        }
        int crc = Crc32c.of(bytes);
        output.write(dataStart + t.begin() + offset, bytes);
        pieces.get(i).add(new long[] {offset, bytes.byteSize(), crc});
    }

    /** Each tensor's CRC32C (8 hex digits) from the bytes as they were written, without reading the file back. */
    public Map<String, String> checksums() {
        Map<String, String> out = new HashMap<>();
        for (int i = 0; i < layout.size(); i++) {
            List<long[]> parts = new ArrayList<>(pieces.get(i));
            parts.sort(Comparator.comparingLong(p -> p[0]));
            int crc = 0;
            long at = 0;
            for (long[] p : parts) {
                if (p[0] != at) {
                    throw new IllegalStateException(target + ": tensor '" + layout.get(i).name() + "' written with a gap or overlap at " + at);
                }
                crc = Crc32c.combine(crc, (int) p[2], p[1]);
                at += p[1];
            }
            out.put(layout.get(i).name(), Crc32c.hex(crc));
        }
        return out;
    }

    /** Checks every tensor was written in full, syncs, and renames the file into place. */
    public void commit() throws IOException {
        for (int i = 0; i < layout.size(); i++) {
            long got = pieces.get(i).stream().mapToLong(p -> p[1]).sum();
            if (got != layout.get(i).byteSize()) {
                throw new IOException(target + ": tensor '" + layout.get(i).name() + "' got " + got
                        + " of " + layout.get(i).byteSize() + " bytes");
            }
        }
        output.finish(SYNC);
        output.close();
        Files.setPosixFilePermissions(temp, FILE_PERMISSIONS); // temp files are created owner-only
        Files.move(temp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        committed = true;
    }

    @Override
    public void close() throws IOException {
        if (!committed) {
            output.close();
            Files.deleteIfExists(temp);
        }
    }
}
