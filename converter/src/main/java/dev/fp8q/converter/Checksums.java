package dev.fp8q.converter;

import dev.fp8q.converter.quant.ChunkBuffers;
import dev.fp8q.formats.safetensors.SafetensorsFile;
import java.lang.foreign.MemorySegment;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ForkJoinPool;
import java.util.zip.CRC32C;

/** CRC32C of each tensor's bytes in a file, as the manifest records them (8 hex digits). */
public final class Checksums {

    private Checksums() {}

    public static String crc32c(MemorySegment bytes) {
        CRC32C crc = new CRC32C();
        long chunk = 1L << 30;
        for (long off = 0; off < bytes.byteSize(); off += chunk) {
            crc.update(bytes.asSlice(off, Math.min(chunk, bytes.byteSize() - off)).asByteBuffer());
        }
        return String.format("%08x", crc.getValue());
    }

    public static Map<String, String> crc32c(SafetensorsFile f, ForkJoinPool pool) throws Exception {
        Map<String, String> out = new ConcurrentHashMap<>();
        ChunkBuffers.forEach(pool, f.tensors(), t -> {
            MemorySegment data = f.data(t);
            out.put(t.name(), crc32c(data));
            Converter.release(data);
        });
        return new HashMap<>(out);
    }

}
