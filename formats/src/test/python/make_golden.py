"""Writes the writer's golden files with the reference safetensors library (0.8).
Run: .venv/bin/python formats/src/test/python/make_golden.py formats/src/test/resources/golden
Each tensor's byte i is (i*37 + k*11 + 5) & 0xFF, k its position in the case's list (WriterGoldenTest builds
the same). Metadata has at most one key: the reference writes several keys in hash (random) order."""
import sys, os, numpy as np
from safetensors import serialize_file, TensorSpec

CASES = {
    "mixed": ([("model.embed.weight", "bfloat16", [4, 3]), ("blocks.0.attn.q.weight", "float32", [2, 5]),
               ("blocks.0.attn.q.weight_scale", "float32", []), ("norm", "float16", [7]),
               ("fp8", "float8_e4m3fn", [3, 3]), ("fp8b", "float8_e5m2", [5]), ("ids", "int64", [3]),
               ("mask", "bool", [2, 2]), ("empty", "bfloat16", [2, 0]), ("u", "uint8", [9]),
               ("d", "float64", [1]), ("i32", "int32", [2]), ("i16", "int16", [3]), ("i8", "int8", [1])],
              {"format": "pt"}),
    "no_metadata": ([("a", "float32", [3]), ("b", "bfloat16", [1])], None),
    "empty_metadata": ([("a", "uint8", [1])], {}),
    "names_order": ([("\uffff", "uint8", [1]), ("\U00010000", "uint8", [1]), ("B", "uint8", [1]), ("a", "uint8", [2]),
                     ("aa", "uint8", [1]), ("é\n\"\\/\x01", "uint8", [1])], {"quote\"d": "line\nbreak \x02 é"}),
    "no_tensors": ([], {"only": "metadata"}),
}
SIZE = {"bfloat16": 2, "float32": 4, "float16": 2, "float8_e4m3fn": 1, "float8_e5m2": 1, "int64": 8, "bool": 1,
        "uint8": 1, "float64": 8, "int32": 4, "int16": 2, "int8": 1}

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
for case, (tensors, meta) in CASES.items():
    keep, specs = [], {}
    for k, (name, dtype, shape) in enumerate(tensors):
        n = int(np.prod(shape)) * SIZE[dtype]
        buf = ((np.arange(n, dtype=np.int64) * 37 + k * 11 + 5) & 0xFF).astype(np.uint8)
        if dtype == "bool":
            buf = buf & 1
        keep.append(buf)
        specs[name] = TensorSpec(dtype=dtype, shape=shape, data_ptr=buf.ctypes.data, data_len=n)
    serialize_file(specs, os.path.join(out, case + ".safetensors"), metadata=meta)
print("wrote", len(CASES), "files to", out)
