#!/usr/bin/env bash
# Issue 23's LoRA speed target: convert with and without a LoRA on every attention/FFN Linear of a generated
# Wan-shaped BF16 checkpoint, runs interleaved, -Xmx1g; prints each run's wall time and the median ratios.
# Usage: bench/scripts/lora-convert.sh [DIM FFN LAYERS] [RUNS] [RANKS]   (default 1536 8960 12, 3 runs, ranks "64 128";
# RUNS 0: write the files only)
# FP8Q: the fp8q command (default: ./fp8q of this checkout); FP8Q_BENCH_DIR: where to work (default /tmp).
# The LoRA files are written by plain python3 (no numpy): ComfyUI keys, BF16 factors of magnitude 2^-9..2^-8
# with random signs, alpha = rank.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
fp8q="${FP8Q:-$here/fp8q}"
dim="${1:-1536}"; ffn="${2:-8960}"; layers="${3:-12}"; runs="${4:-3}"; ranks="${5:-64 128}"
work="${FP8Q_BENCH_DIR:-/tmp}/fp8q-lora-bench"; mkdir -p "$work"
export FP8Q_NO_BUILD="${FP8Q_NO_BUILD:-1}" FP8Q_JAVA_OPTS="${FP8Q_JAVA_OPTS:--Xmx1g}"
src="$work/wan-$dim-$ffn-$layers.safetensors"
[ -f "$src" ] || "$fp8q" testdata make "$src" --dim "$dim" --ffn "$ffn" --layers "$layers" 2>&1 | grep -v incubator
for r in $ranks; do
  [ -f "$work/r$r-$dim-$layers.safetensors" ] || python3 - "$src" "$work/r$r-$dim-$layers.safetensors" "$r" <<'PY'
import json, os, struct, sys
src, out, rank = sys.argv[1], sys.argv[2], int(sys.argv[3])
with open(src, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]; header = json.loads(f.read(n))
sign = bytes((0xBB if b & 0x80 else 0x3B) for b in range(256))  # high byte of a BF16 in [2^-9, 2^-8), random sign
def bf16(count):
    b = bytearray(2 * count); b[0::2] = os.urandom(count); b[1::2] = os.urandom(count).translate(sign); return bytes(b)
tensors = {}
for k, v in header.items():
    if k.endswith(".weight") and len(v.get("shape", [])) == 2 and ("attn" in k or "ffn" in k):
        o, i = v["shape"]; m = "diffusion_model." + k[:-len(".weight")]
        tensors[m + ".lora_down.weight"] = ("BF16", [rank, i], bf16(rank * i))
        tensors[m + ".lora_up.weight"] = ("BF16", [o, rank], bf16(o * rank))
        tensors[m + ".alpha"] = ("F32", [], struct.pack("<f", rank))
meta, off = {}, 0
for k in sorted(tensors):
    dt, shape, data = tensors[k]; meta[k] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + len(data)]}; off += len(data)
h = json.dumps(meta, separators=(",", ":")).encode(); h += b" " * (-len(h) % 8)
with open(out, "wb") as f:
    f.write(struct.pack("<Q", len(h))); f.write(h)
    for k in sorted(tensors):
        f.write(tensors[k][2])
PY
done
[ "$runs" -gt 0 ] || exit 0 # 0 runs: only the checkpoint and the LoRA files
declare -A times
for i in $(seq "$runs"); do
  for l in none $ranks; do
    arg=(); [ "$l" = none ] || arg=(--lora "$work/r$l-$dim-$layers.safetensors")
    t0=$(date +%s.%N)
    "$fp8q" convert "$src" "$work/out-$l.safetensors" --force --quiet "${arg[@]}" 2>&1 | grep -v incubator || true
    t=$(awk "BEGIN {print $(date +%s.%N) - $t0}"); times[$l]="${times[$l]:-} $t"
    echo "run $i lora=$l: $t s"
  done
done
median() { printf '%s\n' $1 | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
base=$(median "${times[none]}")
echo "median without LoRA: $base s ($(nproc) cores)"
for r in $ranks; do
  m=$(median "${times[$r]}"); echo "median rank $r: $m s, ratio $(awk "BEGIN {printf \"%.2f\", $m / $base}")"
done
rm -f "$work"/out-*
