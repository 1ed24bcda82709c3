# An independent oracle for convert --lora: SRC DST MANIFEST LORA[:STRENGTH]...
# Merges every LoRA in float64 with numpy (W + strength * alpha / rank * up @ down, + strength * diff), rounds once
# (float32 for quantized weights, the output dtype for kept ones), quantizes per tensor (scale = amax / 448 in
# float32, codes by ml_dtypes) and prints how many tensors differ from DST.
import sys, json, os, struct
import numpy as np, ml_dtypes

DT = {"BF16": ml_dtypes.bfloat16, "F16": np.float16, "F32": np.float32, "F64": np.float64, "F8_E4M3": ml_dtypes.float8_e4m3fn}

def load(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); out = {}
    for k, v in h.items():
        if k != "__metadata__":
            s, e = v["data_offsets"]
            out[k] = np.frombuffer(b[8 + n + s:8 + n + e], dtype=DT[v["dtype"]]).reshape(v["shape"])
    return out

SUFFIXES = [(".lora_down.weight", "down"), (".lora_up.weight", "up"), (".lora_A.weight", "down"), (".lora_B.weight", "up"),
            (".alpha", "alpha"), (".diff_b", "diff_b"), (".diff", "diff")]
PREFIXES = ["model.diffusion_model.", "diffusion_model.", "base_model.model.", "transformer."]

src, dst, manifest = sys.argv[1:4]
w = load(src); d = load(dst); man = json.load(open(manifest))
merged = {n: t.astype(np.float64) for n, t in w.items()}
touched = set()
flat = {}
for n in w:
    m = n[:-7] if n.endswith(".weight") else n[:-5] if n.endswith(".bias") else n
    flat[m.replace(".", "_")] = m
for spec in sys.argv[4:]:
    f, _, s = spec.rpartition(":")
    if not f:
        f, s = s, "1"
    s = float(s)
    cfg = os.path.join(os.path.dirname(f), "adapter_config.json")
    cfg_alpha = json.load(open(cfg)).get("lora_alpha") if os.path.exists(cfg) else None
    mods = {}
    for k, t in load(f).items():
        for suf, part in SUFFIXES:
            if k.endswith(suf):
                mods.setdefault(k[:-len(suf)], {})[part] = t
                break
    for m, parts in mods.items():
        name = m
        changed = True
        while changed:
            changed = False
            for p in PREFIXES:
                if name.startswith(p):
                    name, changed = name[len(p):], True
        if name.startswith("lora_unet_"):
            name = flat[name[len("lora_unet_"):]]
        if "down" in parts:
            down = parts["down"].astype(np.float64); up = parts["up"].astype(np.float64)
            r = down.shape[0]
            alpha = float(parts["alpha"].astype(np.float64)) if "alpha" in parts else float(cfg_alpha) if cfg_alpha is not None else r
            key = name + ".weight"
            merged[key] = merged[key] + (s * alpha / r) * (up.reshape(up.shape[0], r) @ down.reshape(r, -1)).reshape(w[key].shape)
            touched.add(key)
        if "diff" in parts:
            key = name + ".weight" if name + ".weight" in w else name
            merged[key] = merged[key] + s * parts["diff"].astype(np.float64); touched.add(key)
        if "diff_b" in parts:
            merged[name + ".bias"] = merged[name + ".bias"] + s * parts["diff_b"].astype(np.float64); touched.add(name + ".bias")
records = {r["name"]: r for r in man["tensors"]}
bad = 0
for n, t in w.items():
    r = records[n]
    if r["action"] == "quantize":
        m32 = merged[n].astype(np.float32)
        amax = np.float32(np.abs(m32).max())
        scale = np.float32(amax / np.float32(448)) if amax > 0 else np.float32(1)
        q = np.clip(m32 / scale, -448, 448).astype(ml_dtypes.float8_e4m3fn)
        if d[r["scale_tensor"]].astype(np.float32).tobytes() != np.array(scale, dtype=np.float32).tobytes():
            print("scale differs", n); bad += 1
        elif np.count_nonzero(q.view(np.uint8) != d[n].view(np.uint8)):
            print("codes differ", n); bad += 1
    else:
        expect = merged[n].astype(d[n].dtype) if n in touched else t
        if expect.tobytes() != d[n].tobytes():
            print("kept differs", n); bad += 1
print("touched", len(touched), "bad", bad)
