package dev.fp8q.formats.pth;

import dev.fp8q.formats.DType;
import java.util.List;

/** The values the allow-listed unpickler produces besides strings, numbers, booleans, lists and maps. */
public final class Pickled {

    private Pickled() {}

    /** Python's None (collections here hold no Java null). */
    public enum None { NONE }

    /** A tuple. */
    public record Tuple(List<Object> items) {}

    /** An allow-listed global: a class or function that is only ever matched by name, never loaded. */
    public record Global(String module, String name) {
        public String qualified() {
            return module + "." + name;
        }
    }

    /** A persistent id ('storage', torch.XStorage, key, location, numel): raw data in "data/key". */
    public record Storage(String key, DType dtype, long numel) {}

    /** torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...): a view into a storage. */
    public record Tensor(Storage storage, long offset, long[] shape, long[] stride) {}
}
