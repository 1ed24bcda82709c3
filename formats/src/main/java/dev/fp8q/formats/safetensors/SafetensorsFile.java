package dev.fp8q.formats.safetensors;

import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.TensorFile;
import dev.fp8q.formats.FormatException.Rule;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/**
 * A safetensors file mapped once into memory; tensors are handed out as slices of that mapping, never
 * copied to the heap. The mapping lives until {@link #close()} and may be read from any thread.
 */
public final class SafetensorsFile implements TensorFile {

    private final Path path;
    private final Header header;
    private final Arena arena;
    private final MemorySegment mapping;
    private final Map<String, TensorEntry> byName;

    private SafetensorsFile(Path path, Header header, Arena arena, MemorySegment mapping) {
        this.path = path;
        this.header = header;
        this.arena = arena;
        this.mapping = mapping;
        this.byName = new HashMap<>();
        for (TensorEntry t : header.tensors()) {
            byName.put(t.name(), t);
        }
    }

    /** Reads and validates the header, then maps the file. */
    public static SafetensorsFile open(Path path) throws FormatException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            long size = ch.size();
            Header header = readHeader(ch, size, path);
            Arena arena = Arena.ofShared();
            try {
                MemorySegment mapping = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
                return new SafetensorsFile(path, header, arena, mapping);
            } catch (IOException | RuntimeException e) {
                arena.close();
                throw e;
            }
        } catch (IOException e) {
            throw new FormatException(Rule.IO, path, null, e.toString(), e);
        }
    }

    /** Reads only the header (no mapping): enough for inspect, plan and report. */
    public static Header readHeader(Path path) throws FormatException {
        try (FileChannel ch = FileChannel.open(path, StandardOpenOption.READ)) {
            return readHeader(ch, ch.size(), path);
        } catch (IOException e) {
            throw new FormatException(Rule.IO, path, null, e.toString(), e);
        }
    }

    private static Header readHeader(FileChannel ch, long size, Path path) throws IOException, FormatException {
        if (size < 8) {
            throw new FormatException(Rule.HEADER_TOO_SMALL, path, null, size + " bytes");
        }
        ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
        readFully(ch, len, 0);
        long n = len.getLong(0);
        if (Long.compareUnsigned(n, Header.MAX_HEADER_SIZE) > 0) {
            throw new FormatException(Rule.HEADER_TOO_LARGE, path, null, "N = " + Long.toUnsignedString(n)
                    + " > " + Header.MAX_HEADER_SIZE);
        }
        if (8 + n > size) {
            throw new FormatException(Rule.INVALID_HEADER_LENGTH, path, null, "8 + N = " + (8 + n)
                    + " exceeds the file size " + size);
        }
        ByteBuffer bytes = ByteBuffer.allocate((int) n);
        readFully(ch, bytes, 8);
        try {
            return Header.parse(bytes.array(), size);
        } catch (FormatException e) {
            throw e.withFile(path);
        }
    }

    private static void readFully(FileChannel ch, ByteBuffer buf, long position) throws IOException {
        while (buf.hasRemaining()) {
            int r = ch.read(buf, position + buf.position());
            if (r < 0) {
                throw new IOException("unexpected end of file");
            }
        }
    }

    public Path path() {
        return path;
    }

    public Header header() {
        return header;
    }

    public Map<String, String> metadata() {
        return header.metadata();
    }

    /** Tensors in data order. */
    public List<TensorEntry> tensors() {
        return header.tensors();
    }

    public Optional<TensorEntry> tensor(String name) {
        return Optional.ofNullable(byName.get(name));
    }

    /** The tensor's bytes, a read-only slice of the mapping. */
    public MemorySegment data(TensorEntry t) {
        return mapping.asSlice(header.dataStart() + t.begin(), t.byteSize());
    }

    public MemorySegment data(String name) throws FormatException {
        TensorEntry t = byName.get(name);
        if (t == null) {
            throw new FormatException(Rule.TENSOR_NOT_FOUND, path, name, null);
        }
        return data(t);
    }

    /** The whole mapped file. */
    public MemorySegment mapping() {
        return mapping;
    }

    @Override
    public void close() {
        arena.close();
    }
}
