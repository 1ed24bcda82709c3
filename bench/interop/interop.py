"""fp8q against the runtimes' own loaders (not in CI; CPU torch is enough).

Builds a tiny LlamaForCausalLM and a tiny Qwen2_5_VLForConditionalGeneration (transformers) and a tiny
WanTransformer3DModel (diffusers) with the libraries' own classes, saves them in BF16 with save_pretrained,
converts each with fp8q in every layout, scaling and scale dtype fp8q accepts, loads the result with the real loaders and checks: no missing or unexpected keys, no warning
about weights not used, and output SQNR against BF16 within 1 dB of the same model run with fp8q's weights
dequantized by this script (an independent reader of each layout's names and scale shapes).

    bench/interop/.venv/bin/python bench/interop/interop.py [--out DIR] [--json FILE]
"""
import argparse
import contextlib
import io
import json
import logging
import math
import os
import subprocess
import sys
import tempfile
import warnings

import numpy as np
import torch
from safetensors import safe_open

FP8Q = os.environ.get("FP8Q", os.path.join(os.path.dirname(__file__), "..", "..", "fp8q"))
LAYOUTS = ["comfy", "comfy-legacy", "compressed-tensors", "hf-fp8", "vllm-fp8", "modelopt"]
SCALINGS = ["tensor", "channel", "block", "mx"]
MX_BLOCK = 32
SCALE_DTYPES = ["f32", "bf16"]
BLOCK = 128


def sqnr_db(ref, x):
    ref = ref.double()
    noise = (ref - x.double()).pow(2).sum().item()
    return math.inf if noise == 0 else 10 * math.log10(ref.pow(2).sum().item() / noise)


DEVICE = "cpu"
NO_CONVERT = False


def convert(src, dst, layout, scaling, scale_dtype):
    """fp8q convert; with --no-convert (a machine without a JDK) the outputs of an earlier run are read instead."""
    refusals = os.path.join(os.path.dirname(dst), "refusals.json")
    known = json.load(open(refusals)) if os.path.exists(refusals) else {}
    if NO_CONVERT:
        return (2, known[dst.rsplit("/", 1)[-1]]) if dst.rsplit("/", 1)[-1] in known else (0, "")
    cmd = [FP8Q, "convert", src, dst, "--layout", layout, "--scaling", scaling, "--scale-dtype", scale_dtype,
           "--force", "--quiet"]
    p = subprocess.run(cmd, capture_output=True, text=True)
    msg = (p.stderr.strip().splitlines() or [""])[-1]
    if p.returncode != 0:
        known[dst.rsplit("/", 1)[-1]] = msg
        json.dump(known, open(refusals, "w"), indent=1)
    return p.returncode, msg


def read_all(folder):
    out, meta = {}, {}
    for f in sorted(os.listdir(folder)):
        if f.endswith(".safetensors"):
            with safe_open(os.path.join(folder, f), "pt") as s:
                meta.update(s.metadata() or {})
                for k in s.keys():
                    out[k] = s.get_tensor(k)
    return out, meta


def scale_of(tensors, name):
    """The scale beside an FP8 weight, by the layouts' names (this script's own reading of FORMATS.md)."""
    stem = name[: -len("weight")]
    for c in (name + "_scale", name + "_scale_inv", stem + "scale_weight"):
        if c in tensors:
            return c, tensors[c]
    raise KeyError("no scale for " + name)


def expand(scale, shape):
    """A scale tensor as a multiplier of the [rows, cols] weight: tensor, channel, 128x128 block, or MX: E8M0
    exponents (uint8 or float8_e8m0fnu, 2^(e - 127)) per 32 values along the input side, [rows, cols / 32]."""
    rows, cols = shape[0], int(np.prod(shape[1:]))
    if scale.dtype in (torch.uint8, getattr(torch, "float8_e8m0fnu", torch.uint8)):
        e = scale.view(torch.uint8).to(torch.int32)
        groups = cols // MX_BLOCK
        if scale.dtype != torch.uint8:  # ComfyUI's mxfp8: F8_E8M0 in cuBLAS's blocked (swizzled) order
            e = unblocked(e.flatten(), rows, groups)
        if tuple(e.shape) != (rows, groups):
            raise ValueError(f"MX scale {tuple(e.shape)} is not [{rows}, {groups}]")
        return torch.pow(2.0, (e - 127).double()).float().repeat_interleave(MX_BLOCK, 1)
    s = scale.float()
    if s.numel() == 1:
        return s.reshape(1, 1)
    if s.numel() == rows and (s.dim() == 1 or s.shape[-1] == 1):
        return s.reshape(rows, 1)
    if s.dim() == 4:
        s = s[:, 0, :, 0]
    return s.repeat_interleave(BLOCK, 0)[:rows].repeat_interleave(BLOCK, 1)[:, :cols]


def to_blocked(m):
    """cuBLAS's block-scaling-factor layout (128 x 4 tiles, as torchao and ComfyUI write it), flattened."""
    rows, cols = m.shape
    rb, cb = -(-rows // 128), -(-cols // 4)
    padded = torch.zeros((rb * 128, cb * 4), dtype=m.dtype)
    padded[:rows, :cols] = m
    blocks = padded.view(rb, 128, cb, 4).permute(0, 2, 1, 3)
    return blocks.reshape(-1, 4, 32, 4).transpose(1, 2).reshape(-1, 32, 16).flatten()


def unblocked(flat, rows, cols):
    """The inverse of to_blocked: where each position of the [rows, cols] matrix went, read back."""
    rb, cb = -(-rows // 128), -(-cols // 4)
    if flat.numel() != rb * 128 * cb * 4:
        raise ValueError(f"swizzled MX scale of {flat.numel()} values for [{rows}, {cols}]")
    where = to_blocked(torch.arange(rb * 128 * cb * 4).view(rb * 128, cb * 4))
    out = torch.empty_like(flat)
    out[where] = flat
    return out.view(rb * 128, cb * 4)[:rows, :cols]


def dequantized(folder):
    """fp8q's output as a plain state dict: codes times scales, scale tensors and markers dropped."""
    t, _ = read_all(folder)
    out, used = {}, set()
    for k, v in t.items():
        if v.dtype == torch.float8_e4m3fn and v.numel() > 0:
            sname, s = scale_of(t, k)
            used.add(sname)
            w = v.float().reshape(v.shape[0], -1) * expand(s, v.shape)
            out[k] = w.reshape(v.shape)
    for k, v in t.items():
        if k not in out and k not in used and k != "scaled_fp8":
            out[k] = v
    return out


class Captured:
    """Warnings from Python's warnings and the libraries' loggers while loading."""

    def __enter__(self):
        self.buf = io.StringIO()
        self.handler = logging.StreamHandler(self.buf)
        self.loggers = [logging.getLogger(n) for n in ("transformers", "diffusers", "compressed_tensors")]
        try:  # compressed-tensors logs through loguru
            from loguru import logger as loguru
            self.loguru_id = loguru.add(self.buf, level="WARNING")
        except ImportError:
            self.loguru_id = None
        for lg in self.loggers:
            lg.addHandler(self.handler)
        self.w = warnings.catch_warnings(record=True)
        self.records = self.w.__enter__()
        warnings.simplefilter("always")
        return self

    def __exit__(self, *a):
        self.w.__exit__(*a)
        if self.loguru_id is not None:
            from loguru import logger as loguru
            loguru.remove(self.loguru_id)
        for lg in self.loggers:
            lg.removeHandler(self.handler)

    def lines(self):
        text = self.buf.getvalue().splitlines() + [str(r.message) for r in self.records]
        return [x for x in text if x.strip()]


def ignored_weight_warnings(lines):
    keys = ("not used", "were not initialized", "unexpected", "missing", "not initialized", "ignored",
            "strict division")
    return [x for x in lines if any(k in x.lower() for k in keys)]


def activation_scheme(dst, layout, scaling):
    """"token" or "group" when the runtime quantizes Linear inputs dynamically: compressed-tensors' scheme, and
    transformers' FP8 kernels on a GPU (per token, or per 128-group with block weights)."""
    path = os.path.join(dst, "config.json")
    qc = json.load(open(path)).get("quantization_config") if os.path.exists(path) else None
    if DEVICE != "cpu" and layout == "hf-fp8":
        return "group" if scaling == "block" else "token"
    if not qc or qc.get("quant_method") != "compressed-tensors":
        return None
    a = qc["config_groups"]["group_0"].get("input_activations")
    if a and a.get("strategy") == "group" and a.get("group_size") == MX_BLOCK:
        return "mx"
    return a and a.get("strategy")


def fp8_modules(dst):
    t, _ = read_all(dst)
    return {k[: -len(".weight")] for k, v in t.items() if v.dtype == torch.float8_e4m3fn and k.endswith(".weight")}


@contextlib.contextmanager
def fake_quant_inputs(model, names, strategy):
    """Each listed Linear's input rounded to E4M3 with a dynamic scale per token, per 128-group, or MX: a power of
    two per 32 values, as compressed-tensors makes it (generate_mx_scales: the group's amax rounded to a power of
    two, up from 1.75 x 2^e, then 2^(log2 - 8)), not OCP's floor."""
    def hook(_, args):
        x = args[0]
        group = {"group": BLOCK, "mx": MX_BLOCK}.get(strategy)
        xf = x.float().reshape(*x.shape[:-1], -1, group) if group else x.float().unsqueeze(-2)
        amax = xf.abs().amax(-1, keepdim=True)
        if strategy == "mx":
            p2 = ((amax.view(torch.int32) + (1 << 21)) & 0x7F800000).view(torch.float32)
            scale = torch.where(amax > 0, torch.pow(2.0, torch.floor(torch.log2(p2)) - 8), torch.full_like(amax, 2.0 ** -127))
        else:
            scale = torch.where(amax > 0, amax / 448, torch.ones_like(amax))
        q = (xf / scale).clamp(-448, 448).to(torch.float8_e4m3fn).float() * scale
        return (q.reshape(x.shape).to(x.dtype),) + tuple(args[1:])
    handles = [m.register_forward_pre_hook(hook) for n, m in model.named_modules() if n in names]
    try:
        yield
    finally:
        for h in handles:
            h.remove()


# ---------------------------------------------------------------- transformers: tiny Llama

def llama(work):
    from transformers import LlamaConfig, LlamaForCausalLM
    torch.manual_seed(0)
    # 320: a side that is not a multiple of 128 (partial 128x128 tiles); 256: whole tiles
    cfg = LlamaConfig(vocab_size=512, hidden_size=256, intermediate_size=320, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    m = LlamaForCausalLM(cfg).to(torch.bfloat16)
    src = os.path.join(work, "llama-bf16")
    if not NO_CONVERT:
        m.save_pretrained(src)
    return src


def llama_logits(model, ids):
    with torch.no_grad():
        return model(ids).logits.float()


def llama_checks(work, results):
    from transformers import AutoModelForCausalLM
    src = llama(work)
    ids = torch.randint(0, 512, (2, 24), generator=torch.Generator().manual_seed(1)).to(DEVICE)
    base = AutoModelForCausalLM.from_pretrained(src, dtype=torch.bfloat16).to(DEVICE)
    ref = llama_logits(base, ids)
    for layout in LAYOUTS:
        for scaling in SCALINGS:
            for sd in SCALE_DTYPES:
                dst = os.path.join(work, f"llama-{layout}-{scaling}-{sd}")
                rc, msg = convert(src, dst, layout, scaling, sd)
                row = {"model": "llama", "layout": layout, "scaling": scaling, "scale_dtype": sd}
                if rc != 0:
                    row.update(status="refused by fp8q", detail=msg)
                    results.append(row)
                    continue
                if NO_CONVERT and not os.path.isdir(dst):
                    continue
                try:
                    deq = dequantized(dst)
                except ValueError as e:  # a layout this harness cannot read itself
                    row.update(status="not read by the harness", detail=str(e))
                    results.append(row)
                    print(json.dumps(row), flush=True)
                    continue
                base.load_state_dict(deq, strict=True)  # weights as fp8q encoded them
                expect = llama_logits(base, ids)
                row["sqnr_dequantized_db"] = round(sqnr_db(ref, expect), 2)
                acts = activation_scheme(dst, layout, scaling)
                if acts:  # the config asks the runtime for W8A8: the reference quantizes the same inputs
                    with fake_quant_inputs(base, fp8_modules(dst), acts):
                        expect = llama_logits(base, ids)
                    row["sqnr_dequantized_w8a8_db"] = round(sqnr_db(ref, expect), 2)
                row.update(load_llama(dst, layout, ids, ref, expect))
                results.append(row)
                print(json.dumps(row), flush=True)


def load_llama(dst, layout, ids, ref, expect):
    from transformers import AutoModelForCausalLM
    cfg = json.load(open(os.path.join(dst, "config.json")))
    qc = cfg.get("quantization_config")
    if layout in ("vllm-fp8", "modelopt", "comfy-legacy") or (layout == "comfy" and qc is None):
        # comfy with MX: ComfyUI's swizzled scales, no quantization_config for transformers
        return {"loader": "source reading (vLLM / ComfyUI)", "status": "not run", "config": qc and qc.get("quant_method")}
    with Captured() as cap:
        try:
            m, info = AutoModelForCausalLM.from_pretrained(dst, dtype=torch.bfloat16, output_loading_info=True,
                                                           device_map=DEVICE if DEVICE != "cpu" else None)
            got = llama_logits(m, ids)
        except Exception as e:  # the runtime refused: report it
            return {"loader": "transformers", "status": "FAIL: load error", "detail": f"{type(e).__name__}: {e}"[:300]}
    bad = ignored_weight_warnings(cap.lines())
    out = {"loader": "transformers " + (qc or {}).get("quant_method", "none"),
           "missing": len(info["missing_keys"]), "unexpected": len(info["unexpected_keys"]),
           "mismatched": len(info.get("mismatched_keys", [])), "weight_warnings": bad[:3],
           "sqnr_runtime_db": round(sqnr_db(ref, got), 2), "sqnr_runtime_vs_dequantized_db": round(sqnr_db(expect, got), 2)}
    ok = (out["missing"] == 0 and out["unexpected"] == 0 and out["mismatched"] == 0 and not bad
          and abs(out["sqnr_runtime_db"] - sqnr_db(ref, expect)) <= 1.0)
    out["status"] = "pass" if ok else "FAIL"
    return out


# ---------------------------------------------------------------- transformers: tiny Qwen2.5-VL (Qwen-Image's text encoder)

def qwenvl(work):
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration
    torch.manual_seed(0)
    cfg = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=512, hidden_size=256, intermediate_size=320, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                         rope_scaling={"type": "mrope", "mrope_section": [8, 12, 12]}),
        vision_config=dict(depth=1, hidden_size=64, intermediate_size=128, num_heads=2, out_hidden_size=256,
                           patch_size=14, spatial_merge_size=2, temporal_patch_size=2, fullatt_block_indexes=[0],
                           window_size=112))
    src = os.path.join(work, "qwenvl-bf16")
    if not NO_CONVERT:
        Qwen2_5_VLForConditionalGeneration(cfg).to(torch.bfloat16).save_pretrained(src)
    return src


def module_names(state):
    """Checkpoint names to transformers 5's module names for Qwen2.5-VL (its checkpoint conversion mapping)."""
    out = {}
    for k, v in state.items():
        k = "model." + k if k.startswith("visual.") else "model.language_model." + k[6:] if k.startswith("model.") else k
        out[k] = v
    return out


def qwenvl_checks(work, results):
    """The text-only forward of a VLM whose kept vision Linears must stay unquantized in the runtime."""
    from transformers import Qwen2_5_VLForConditionalGeneration as VL
    src = qwenvl(work)
    ids = torch.randint(0, 512, (2, 24), generator=torch.Generator().manual_seed(1)).to(DEVICE)
    base = VL.from_pretrained(src, dtype=torch.bfloat16).to(DEVICE)
    ref = llama_logits(base, ids)
    for layout, sd in (("compressed-tensors", "f32"), ("compressed-tensors", "bf16"), ("comfy", "f32"),
                       ("hf-fp8", "f32"), ("hf-fp8", "bf16")):
        if layout not in LAYOUTS:
            continue
        dst = os.path.join(work, f"qwenvl-{layout}-tensor-{sd}")
        rc, msg = convert(src, dst, layout, "tensor", sd)
        row = {"model": "qwen2.5-vl", "layout": layout, "scaling": "tensor", "scale_dtype": sd}
        if rc != 0:
            row.update(status="refused by fp8q", detail=msg)
            results.append(row)
            continue
        if "quantization_config" not in json.load(open(os.path.join(dst, "config.json"))):
            row.update(loader="ComfyUI (config.json has no quantization_config)", status="not run")
            results.append(row)
            print(json.dumps(row), flush=True)
            continue
        base.load_state_dict(module_names(dequantized(dst)), strict=True)
        expect = llama_logits(base, ids)
        row["sqnr_dequantized_db"] = round(sqnr_db(ref, expect), 2)
        acts = activation_scheme(dst, layout, "tensor")
        if acts:  # compressed-tensors' scheme: the runtime quantizes the Linear inputs per token
            with fake_quant_inputs(base, set(module_names({m: 0 for m in fp8_modules(dst)})), acts):
                expect = llama_logits(base, ids)
            row["sqnr_dequantized_w8a8_db"] = round(sqnr_db(ref, expect), 2)
        with Captured() as cap:
            try:
                m, info = VL.from_pretrained(dst, dtype=torch.bfloat16, output_loading_info=True)
                got = llama_logits(m.to(DEVICE), ids)
            except Exception as e:
                known = "must have the same dtype" in str(e) and sd == "f32"  # fp8q warns at convert
                row.update(loader="transformers", status="FAIL" + (" (known: transformers 5 makes float32 weights from "
                           "float32 scales; fp8q warns and --scale-dtype bf16 runs)" if known else "") + ": "
                           + f"{type(e).__name__}: {e}"[:160])
                results.append(row)
                print(json.dumps(row), flush=True)
                base = VL.from_pretrained(src, dtype=torch.bfloat16).to(DEVICE)
                continue
        bad = ignored_weight_warnings(cap.lines())
        qc = json.load(open(os.path.join(dst, "config.json")))["quantization_config"]
        row.update(loader="transformers " + qc["quant_method"], missing=len(info["missing_keys"]),
                   unexpected=len(info["unexpected_keys"]), mismatched=len(info.get("mismatched_keys", [])),
                   weight_warnings=bad[:3], sqnr_runtime_db=round(sqnr_db(ref, got), 2))
        ok = row["missing"] == row["unexpected"] == row["mismatched"] == 0 and not bad \
            and abs(row["sqnr_runtime_db"] - sqnr_db(ref, expect)) <= 1.0
        row["status"] = "pass" if ok else "FAIL"
        results.append(row)
        print(json.dumps(row), flush=True)
        base = VL.from_pretrained(src, dtype=torch.bfloat16).to(DEVICE)


# ---------------------------------------------------------------- diffusers: tiny Wan

def wan(work):
    from diffusers import WanTransformer3DModel
    torch.manual_seed(0)
    m = WanTransformer3DModel(patch_size=(1, 2, 2), num_attention_heads=2, attention_head_dim=64, in_channels=4,
                              out_channels=4, text_dim=64, freq_dim=32, ffn_dim=384, num_layers=2,
                              rope_max_seq_len=32).to(torch.bfloat16)
    src = os.path.join(work, "wan-bf16")
    m.save_pretrained(src)
    return src


def wan_out(model):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(1, 4, 2, 8, 8, generator=g).to(torch.bfloat16)
    ctx = torch.randn(1, 8, 64, generator=g).to(torch.bfloat16)
    with torch.no_grad():
        return model(x, torch.tensor([500]), ctx, return_dict=False)[0].float()


def wan_checks(work, results):
    from diffusers import WanTransformer3DModel
    src = wan(work)
    base = WanTransformer3DModel.from_pretrained(src, dtype=torch.bfloat16)
    ref = wan_out(base)
    for layout in LAYOUTS:
        for scaling in SCALINGS:
            for sd in SCALE_DTYPES:
                dst = os.path.join(work, f"wan-{layout}-{scaling}-{sd}")
                rc, msg = convert(src, dst, layout, scaling, sd)
                row = {"model": "wan", "layout": layout, "scaling": scaling, "scale_dtype": sd}
                if rc != 0:
                    row.update(status="refused by fp8q", detail=msg)
                    results.append(row)
                    continue
                try:
                    base.load_state_dict(dequantized(dst), strict=True)
                    row["sqnr_dequantized_db"] = round(sqnr_db(ref, wan_out(base)), 2)
                except ValueError as e:  # a layout this harness cannot read itself; the loader is still tried
                    row["sqnr_dequantized_db"] = "not read by the harness: " + str(e)
                cfg = json.load(open(os.path.join(dst, "config.json")))
                qc = cfg.get("quantization_config")
                row["config_quant_method"] = qc and qc.get("quant_method")
                with Captured() as cap:
                    try:
                        WanTransformer3DModel.from_pretrained(dst, dtype=torch.bfloat16)
                        row["diffusers"] = "loaded (no quantizer: FP8 codes read without their scales)" if qc is None \
                            else "loaded"
                    except Exception as e:
                        row["diffusers"] = f"{type(e).__name__}: {e}"[:200]
                row["status"] = wan_status(layout, qc, row["diffusers"])
                results.append(row)
                print(json.dumps(row), flush=True)


def wan_status(layout, qc, diffusers):
    """diffusers reads no fp8q layout by itself; what must hold is that it never refuses the default layout."""
    if layout == "comfy":
        return "pass" if qc is None else "FAIL (diffusers refuses a compressed-tensors config)"
    if layout == "modelopt":
        return "pass" if qc and qc.get("quant_type") == "FP8" and "quant_type" not in diffusers else "FAIL"
    return "n/a (runtime is ComfyUI / vLLM)"


def main():
    global DEVICE, NO_CONVERT, LAYOUTS, SCALINGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--out")
    ap.add_argument("--json")
    ap.add_argument("--only", choices=["llama", "qwenvl", "wan"])
    ap.add_argument("--device", default="cpu", help="cuda: transformers' FP8 kernels instead of its dequantizing route")
    ap.add_argument("--no-convert", action="store_true", help="read the outputs an earlier run left in --out")
    ap.add_argument("--layouts", help="comma-separated subset of " + ",".join(LAYOUTS))
    ap.add_argument("--scalings", help="comma-separated subset of " + ",".join(SCALINGS))
    a = ap.parse_args()
    DEVICE, NO_CONVERT = a.device, a.no_convert
    LAYOUTS = a.layouts.split(",") if a.layouts else LAYOUTS
    SCALINGS = a.scalings.split(",") if a.scalings else SCALINGS
    work = a.out or tempfile.mkdtemp(prefix="fp8q-interop-")
    results = []
    if a.only in (None, "llama"):
        llama_checks(work, results)
    if a.only in (None, "qwenvl"):
        qwenvl_checks(work, results)
    if a.only in (None, "wan"):
        wan_checks(work, results)
    import transformers
    try:
        import diffusers
    except ImportError:
        diffusers = None
    versions = {"device": torch.cuda.get_device_name() if DEVICE != "cpu" else "cpu",
                "torch": torch.__version__, "transformers": transformers.__version__,
                "diffusers": diffusers and diffusers.__version__, "python": sys.version.split()[0]}
    try:
        import compressed_tensors
        from compressed_tensors.version import __version__ as ct_version
        versions["compressed_tensors"] = ct_version
    except ImportError:
        pass
    if a.json:
        json.dump({"versions": versions, "results": results}, open(a.json, "w"), indent=1)
    print(json.dumps(versions))
    fails = [r for r in results if str(r.get("status", "")).startswith("FAIL")]
    print(f"{len(results)} combinations, {len(fails)} failed")
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
