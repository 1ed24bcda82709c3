package dev.fp8q.formats.pth;

import dev.fp8q.formats.DType;
import dev.fp8q.formats.FormatException;
import dev.fp8q.formats.FormatException.Rule;
import java.math.BigInteger;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A weights-only unpickler (FORMATS.md section 4): the opcodes of protocols 2 to 4 that torch.save emits, and
 * GLOBAL resolved only from an allow-list (torch's tensor rebuild functions, its storage types and dtypes, OrderedDict);
 * any other global is refused by name before anything is built. Nothing is ever instantiated: the result is
 * plain Java values ({@link Pickled}, String, Long, BigInteger, Double, Boolean, ArrayList, LinkedHashMap).
 * Every length is checked against the bytes left, so no input allocates more than its own size.
 */
public final class Unpickler {

    /** Storage classes and the dtypes of their elements. */
    private static final Map<String, DType> STORAGES = Map.ofEntries(Map.entry("torch.BFloat16Storage", DType.BF16),
            Map.entry("torch.HalfStorage", DType.F16), Map.entry("torch.FloatStorage", DType.F32),
            Map.entry("torch.DoubleStorage", DType.F64), Map.entry("torch.LongStorage", DType.I64),
            Map.entry("torch.IntStorage", DType.I32), Map.entry("torch.ShortStorage", DType.I16),
            Map.entry("torch.CharStorage", DType.I8), Map.entry("torch.ByteStorage", DType.U8),
            Map.entry("torch.BoolStorage", DType.BOOL), Map.entry("torch.storage.UntypedStorage", DType.U8));
    /** dtype objects that _rebuild_tensor_v3 names (torch writes FP8 tensors that way). */
    private static final Map<String, DType> DTYPES = Map.ofEntries(Map.entry("torch.bfloat16", DType.BF16),
            Map.entry("torch.float16", DType.F16), Map.entry("torch.float32", DType.F32), Map.entry("torch.float64", DType.F64),
            Map.entry("torch.int64", DType.I64), Map.entry("torch.int32", DType.I32), Map.entry("torch.int16", DType.I16),
            Map.entry("torch.int8", DType.I8), Map.entry("torch.uint8", DType.U8), Map.entry("torch.bool", DType.BOOL),
            Map.entry("torch.float8_e4m3fn", DType.F8_E4M3), Map.entry("torch.float8_e5m2", DType.F8_E5M2),
            Map.entry("torch.uint16", DType.U16), Map.entry("torch.uint32", DType.U32), Map.entry("torch.uint64", DType.U64));
    private static final String REBUILD_TENSOR = "torch._utils._rebuild_tensor_v2";
    private static final String REBUILD_TENSOR_V3 = "torch._utils._rebuild_tensor_v3";
    private static final String REBUILD_PARAMETER = "torch._utils._rebuild_parameter";
    private static final String ORDERED_DICT = "collections.OrderedDict";
    /** Tensor ranks beyond this are refused (torch allows 64 dimensions). */
    private static final int MAX_RANK = 64;

    private static final Object MARK = new Object();

    private final ByteBuffer in;
    private final List<Object> stack = new ArrayList<>();
    private final List<Integer> marks = new ArrayList<>();
    private final Map<Long, Object> memo = new HashMap<>();

    private Unpickler(ByteBuffer in) {
        this.in = in.duplicate().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** The object the pickle describes. */
    public static Object load(ByteBuffer pickle) throws FormatException {
        try {
            return new Unpickler(pickle).run();
        } catch (java.nio.BufferUnderflowException e) {
            throw invalid("truncated: no STOP before the end");
        } catch (ClassCastException | IndexOutOfBoundsException e) {
            throw invalid("an opcode found the wrong kind of value on the stack");
        }
    }

    private Object run() throws FormatException {
        while (true) {
            int pos = in.position();
            int op = in.get() & 0xFF;
            switch (op) {
                case 0x80 -> { // PROTO
                    int v = in.get() & 0xFF;
                    if (v < 2 || v > 5) {
                        throw invalid("protocol " + v + " (torch writes 2)");
                    }
                }
                case 0x95 -> in.getLong(); // FRAME: a length hint
                case '.' -> { // STOP
                    if (stack.size() != 1 || !marks.isEmpty()) {
                        throw invalid("STOP with " + stack.size() + " values on the stack");
                    }
                    return stack.getFirst();
                }
                case 'c' -> push(global(line(), line()));
                case 0x93 -> { // STACK_GLOBAL
                    String name = (String) pop();
                    push(global((String) pop(), name));
                }
                case 'q' -> memo.put((long) (in.get() & 0xFF), top());
                case 'r' -> memo.put(in.getInt() & 0xFFFF_FFFFL, top());
                case 0x94 -> memo.put((long) memo.size(), top()); // MEMOIZE
                case 'h' -> push(memoGet(in.get() & 0xFF));
                case 'j' -> push(memoGet(in.getInt() & 0xFFFF_FFFFL));
                case '(' -> marks.add(stack.size());
                case 't' -> push(new Pickled.Tuple(popMark()));
                case ')' -> push(new Pickled.Tuple(List.of()));
                case 0x85 -> push(new Pickled.Tuple(List.of(pop())));
                case 0x86 -> {
                    Object b = pop();
                    push(new Pickled.Tuple(List.of(pop(), b)));
                }
                case 0x87 -> {
                    Object c = pop();
                    Object b = pop();
                    push(new Pickled.Tuple(List.of(pop(), b, c)));
                }
                case ']' -> push(new ArrayList<>());
                case '}' -> push(new LinkedHashMap<>());
                case 'X' -> push(string(in.getInt() & 0xFFFF_FFFFL, StandardCharsets.UTF_8));
                case 0x8c -> push(string(in.get() & 0xFF, StandardCharsets.UTF_8));
                case 0x8d -> push(string(in.getLong(), StandardCharsets.UTF_8));
                case 'U' -> push(string(in.get() & 0xFF, StandardCharsets.ISO_8859_1));
                case 'T' -> push(string(in.getInt(), StandardCharsets.ISO_8859_1));
                case 'J' -> push((long) in.getInt());
                case 'K' -> push((long) (in.get() & 0xFF));
                case 'M' -> push((long) (in.getShort() & 0xFFFF));
                case 0x8a -> push(longN(in.get() & 0xFF));
                case 0x8b -> push(longN(in.getInt()));
                case 'G' -> push(Double.longBitsToDouble(Long.reverseBytes(in.getLong()))); // big-endian
                case 0x88 -> push(Boolean.TRUE);
                case 0x89 -> push(Boolean.FALSE);
                case 'N' -> push(Pickled.None.NONE);
                case 'Q' -> push(storage(pop()));
                case 'R', 0x81 -> { // REDUCE, NEWOBJ: the same for the allow-listed callables
                    Pickled.Tuple args = (Pickled.Tuple) pop();
                    push(call((Pickled.Global) pop(), args));
                }
                case 'b' -> pop(); // BUILD: instance state (an OrderedDict's _metadata); nothing to set
                case 'a' -> {
                    Object v = pop();
                    list(top()).add(v);
                }
                case 'e' -> {
                    List<Object> items = popMark();
                    list(top()).addAll(items);
                }
                case 's' -> {
                    Object v = pop();
                    Object k = key(pop());
                    dict(top()).put(k, v);
                }
                case 'u' -> {
                    List<Object> items = popMark();
                    if (items.size() % 2 != 0) {
                        throw invalid("SETITEMS with an odd number of values");
                    }
                    Map<Object, Object> d = dict(top());
                    for (int i = 0; i < items.size(); i += 2) {
                        d.put(key(items.get(i)), items.get(i + 1));
                    }
                }
                default -> throw invalid(String.format("opcode 0x%02x at offset %d is not one a weights-only pickle uses", op, pos));
            }
        }
    }

    private void push(Object o) {
        stack.add(o);
    }

    private Object pop() throws FormatException {
        if (stack.isEmpty() || (!marks.isEmpty() && marks.getLast() == stack.size())) {
            throw invalid("stack underflow");
        }
        return stack.removeLast();
    }

    private Object top() throws FormatException {
        if (stack.isEmpty()) {
            throw invalid("stack underflow");
        }
        return stack.getLast();
    }

    private List<Object> popMark() throws FormatException {
        if (marks.isEmpty()) {
            throw invalid("no MARK");
        }
        int m = marks.removeLast();
        List<Object> sub = new ArrayList<>(stack.subList(m, stack.size()));
        stack.subList(m, stack.size()).clear();
        return sub;
    }

    private Object memoGet(long i) throws FormatException {
        Object o = memo.get(i);
        if (o == null) {
            throw invalid("memo " + i + " was never stored");
        }
        return o;
    }

    @SuppressWarnings("unchecked")
    private static List<Object> list(Object o) throws FormatException {
        if (o instanceof List<?> l && !(o instanceof Pickled.Tuple)) {
            return (List<Object>) l;
        }
        throw invalid("APPEND to a " + kind(o));
    }

    @SuppressWarnings("unchecked")
    private static Map<Object, Object> dict(Object o) throws FormatException {
        if (o instanceof Map<?, ?> m) {
            return (Map<Object, Object>) m;
        }
        throw invalid("SETITEM on a " + kind(o));
    }

    /**
     * A dict key: a scalar, as in any state dict. Python cannot hash lists or dicts either; refusing tuples too
     * means no key's hashCode can recurse into a structure that contains itself.
     */
    private static Object key(Object k) throws FormatException {
        if (k instanceof String || k instanceof Long || k instanceof BigInteger || k instanceof Double
                || k instanceof Boolean || k instanceof Pickled.None) {
            return k;
        }
        throw invalid("dict key of type " + kind(k) + " (state dicts have string or number keys)");
    }

    private static String kind(Object o) {
        return o.getClass().getSimpleName();
    }

    private String line() throws FormatException {
        StringBuilder sb = new StringBuilder();
        while (true) {
            byte b = in.get();
            if (b == '\n') {
                return sb.toString();
            }
            if (sb.length() > 256 || b < 0x20 || b > 0x7E) {
                throw invalid("GLOBAL name is not a short printable line");
            }
            sb.append((char) b);
        }
    }

    private String string(long length, java.nio.charset.Charset cs) throws FormatException {
        if (length < 0 || length > in.remaining()) {
            throw invalid("string of " + length + " bytes with " + in.remaining() + " left");
        }
        byte[] b = new byte[(int) length];
        in.get(b);
        return new String(b, cs);
    }

    private Object longN(int n) throws FormatException {
        if (n < 0 || n > in.remaining() || n > 4096) {
            throw invalid("integer of " + n + " bytes");
        }
        byte[] le = new byte[n];
        in.get(le);
        if (n == 0) {
            return 0L;
        }
        byte[] be = new byte[n];
        for (int i = 0; i < n; i++) {
            be[i] = le[n - 1 - i];
        }
        BigInteger v = new BigInteger(be);
        return v.bitLength() < 64 ? (Object) v.longValue() : v;
    }

    private static Pickled.Global global(String module, String name) throws FormatException {
        String q = module + "." + name;
        if (q.equals(REBUILD_TENSOR) || q.equals(REBUILD_TENSOR_V3) || q.equals(REBUILD_PARAMETER) || q.equals(ORDERED_DICT)
                || STORAGES.containsKey(q) || DTYPES.containsKey(q)) {
            return new Pickled.Global(module, name);
        }
        throw new FormatException(Rule.PICKLE_FORBIDDEN, null, null, "global '" + q + "'");
    }

    private static Object call(Pickled.Global g, Pickled.Tuple args) throws FormatException {
        List<Object> a = args.items();
        return switch (g.qualified()) {
            case ORDERED_DICT -> {
                if (!a.isEmpty()) {
                    throw invalid("OrderedDict called with arguments");
                }
                yield new LinkedHashMap<>();
            }
            case REBUILD_PARAMETER -> {
                if (a.isEmpty() || !(a.getFirst() instanceof Pickled.Tensor t)) {
                    throw invalid("_rebuild_parameter without a tensor");
                }
                yield t;
            }
            case REBUILD_TENSOR -> tensor(a);
            case REBUILD_TENSOR_V3 -> tensorV3(a);
            default -> throw invalid("'" + g.qualified() + "' is a type, not a function to call");
        };
    }

    private static Pickled.Tensor tensor(List<Object> a) throws FormatException {
        if (a.size() < 4 || !(a.get(0) instanceof Pickled.Storage s) || !(a.get(1) instanceof Long offset)
                || !(a.get(2) instanceof Pickled.Tuple size) || !(a.get(3) instanceof Pickled.Tuple stride)) {
            throw invalid("_rebuild_tensor_v2 needs (storage, offset, size, stride, ...)");
        }
        if (size.items().size() != stride.items().size() || size.items().size() > MAX_RANK) {
            throw invalid("size and stride of different or excessive rank");
        }
        return new Pickled.Tensor(s, offset, longs(size), longs(stride));
    }

    /** _rebuild_tensor_v3(untyped storage, offset, size, stride, requires_grad, hooks, dtype, ...): bytes retyped. */
    private static Pickled.Tensor tensorV3(List<Object> a) throws FormatException {
        Pickled.Tensor raw = tensor(a);
        if (a.size() < 7 || !(a.get(6) instanceof Pickled.Global g) || !DTYPES.containsKey(g.qualified())) {
            throw invalid("_rebuild_tensor_v3 without a known dtype");
        }
        DType dt = DTYPES.get(g.qualified());
        Pickled.Storage s = raw.storage();
        if (s.dtype() == dt) {
            return raw;
        }
        if (s.dtype() != DType.U8 || s.numel() % dt.byteSize() != 0) {
            throw invalid("a " + dt + " view of a " + s.dtype() + " storage of " + s.numel() + " elements");
        }
        return new Pickled.Tensor(new Pickled.Storage(s.key(), dt, s.numel() / dt.byteSize()), raw.offset(),
                raw.shape(), raw.stride());
    }

    private static long[] longs(Pickled.Tuple t) throws FormatException {
        long[] out = new long[t.items().size()];
        for (int i = 0; i < out.length; i++) {
            if (!(t.items().get(i) instanceof Long v) || v < 0) {
                throw invalid("tensor size or stride of type " + kind(t.items().get(i)) + " is not a non-negative integer");
            }
            out[i] = v;
        }
        return out;
    }

    private static Pickled.Storage storage(Object pid) throws FormatException {
        if (!(pid instanceof Pickled.Tuple t) || t.items().size() != 5 || !"storage".equals(t.items().get(0))
                || !(t.items().get(1) instanceof Pickled.Global type) || !(t.items().get(2) instanceof String key)
                || !(t.items().get(4) instanceof Long numel) || numel < 0) {
            throw invalid("persistent id is not ('storage', type, key, location, numel)");
        }
        DType dt = STORAGES.get(type.qualified());
        if (dt == null) {
            throw invalid("'" + type.qualified() + "' is not a storage type");
        }
        return new Pickled.Storage(key, dt, numel);
    }

    private static FormatException invalid(String detail) {
        return new FormatException(Rule.PICKLE_INVALID, null, null, detail);
    }
}
