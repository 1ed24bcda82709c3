package dev.fp8q.formats;

import dev.fp8q.formats.safetensors.TensorEntry;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Optional;

/** One mapped file of tensors: a safetensors file or shard, or a PyTorch .pth. */
public interface TensorFile extends AutoCloseable {

    Path path();

    /** String metadata (safetensors "__metadata__"); null when there is none. */
    Map<String, String> metadata();

    /** Tensors in file order. */
    List<TensorEntry> tensors();

    Optional<TensorEntry> tensor(String name);

    /** The tensor's bytes, contiguous and little-endian, valid until close. */
    MemorySegment data(TensorEntry t);

    @Override
    void close();
}
