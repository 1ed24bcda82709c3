#!/usr/bin/env bash
# The GPU checks of issue 4, on a machine with an NVIDIA GPU of compute capability 8.9+ (CI has none: the unit
# tests skip their GPU cases there). Needs cli/target/fp8q.jar and bench/target/fp8q-bench-*.jar (built, or
# carried with a .jre), python3 with safetensors and numpy for the damage step.
#   1. every kernel against the CPU, then GEMM throughput (bf16, e4m3, float32) at M N K;
#   2. verify on the GPU and on the CPU of one Wan-shaped conversion: figures side by side;
#   3. a damaged conversion (one weight scale x4) must fail verify on the GPU.
# Usage: bench/gpu-check.sh [M N K]
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$here"
export FP8Q_NO_BUILD="${FP8Q_NO_BUILD:-1}"
java_bin="$(for h in "${FP8Q_JAVA_HOME:-}" "$here/.jre" /usr/lib/jvm/temurin-25*; do [ -x "$h/bin/java" ] && { echo "$h/bin/java"; break; }; done)"
cp="cli/target/fp8q.jar:$(ls bench/target/fp8q-bench-*.jar | grep -v original | head -1)"
"$java_bin" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp "$cp" dev.fp8q.bench.GpuCheck "$@" \
  2>&1 | grep -v 'incubator modules'

work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
./fp8q testdata make "$work/src.safetensors" --variant ti2v-5b --size full --layers 3 2>&1 | grep -v incubator
./fp8q convert --quiet "$work/src.safetensors" "$work/fp8" 2>&1 | grep -v incubator
for dev in cuda cpu; do
  start=$(date +%s.%N)
  ./fp8q verify "$work/src.safetensors" "$work/fp8" --device "$dev" --weights none --quiet --json "$work/$dev.json" \
    > "$work/$dev.txt" 2>&1 || { cat "$work/$dev.txt"; echo "gpu-check: verify --device $dev failed" >&2; exit 1; }
  echo "verify --device $dev: $(python3 -c "print(round($(date +%s.%N) - $start, 2))") s"
done
python3 - "$work/cuda.json" "$work/cpu.json" <<'PY'
import json, sys
gpu, cpu = (json.load(open(p)) for p in sys.argv[1:3])
print("device:", gpu["settings"]["device"])
def rows(r):
    return {(c["scope"], c.get("block"), c.get("layer"), c["run"]): c["metrics"]["sqnr_db"] for c in r["checks"] if c.get("metrics") and c.get("run")}
g, c = rows(gpu), rows(cpu)
print(f'{"scope":13} {"block":>5} {"layer":28} {"run":15} {"GPU SQNR dB":>11} {"CPU SQNR dB":>11}')
for key in sorted(g, key=lambda k: (k[0], k[1] or 0, k[2] or "", k[3])):
    if key[0] in ("block_output", "block_update") or key[2] and key[2].endswith("ffn.2"):
        cpu_key = (key[0], key[1], key[2], "w8a8" if key[3] == "w8a8_simulated" else key[3])
        print(f'{key[0]:13} {key[1]!s:>5} {str(key[2] or ""):28} {key[3]:15} {g[key]:11.3f} {c.get(cpu_key, float("nan")):11.3f}')
PY

# Damage: one FP8 weight's scale x4 must fail the GPU's block reruns (weights are not checked here: --weights none).
python3 - "$work/fp8" <<'PY'
import glob, json, struct, sys
f = sorted(glob.glob(sys.argv[1] + "/*.safetensors"))[0]
with open(f, "r+b") as fh:  # in place: the header gives the scale's byte range
    n = struct.unpack("<Q", fh.read(8))[0]
    header = json.loads(fh.read(n))
    name = next(k for k in sorted(header) if k.startswith("blocks.0.") and k.endswith("ffn.0.weight_scale"))
    begin = 8 + n + header[name]["data_offsets"][0]
    fh.seek(begin); v = struct.unpack("<f", fh.read(4))[0]
    fh.seek(begin); fh.write(struct.pack("<f", v * 4))
print("damaged", name, v, "->", v * 4)
PY
rm -f "$work/fp8/fp8-manifest.json"
if ./fp8q verify "$work/src.safetensors" "$work/fp8" --device cuda --weights none --blocks 0 --quiet > "$work/bad.txt" 2>&1; then
  cat "$work/bad.txt"; echo "gpu-check: the damaged conversion passed verify on the GPU" >&2; exit 1
fi
grep -E 'FAIL|failed' "$work/bad.txt" | head -5
echo "gpu-check: the damaged conversion fails verify on the GPU, as it must"
