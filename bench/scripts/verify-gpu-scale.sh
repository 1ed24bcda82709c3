#!/usr/bin/env bash
# Issue 4's scale figure: all blocks of a T2V-A14B-shaped checkpoint (40 blocks, dim 5120, BF16, ~28 GB) verified
# on the GPU at 1024 video tokens (grid 4x16x16), all runs, weights read from the mapped files. Prints whole-process
# wall time, peak RSS and verify's phase times. Needs ~45 GB of disk in $FP8Q_BENCH_DIR (default /tmp).
# Usage: bench/scripts/verify-gpu-scale.sh [LAYERS] [DEVICE] [BLOCKS]   (BLOCKS: verify blocks 0..BLOCKS-1, default
# all; FP8Q_COLD=1 drops the page cache first, which needs root)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
layers="${1:-40}"; device="${2:-cuda}"; nblocks="${3:-$layers}"
work="${FP8Q_BENCH_DIR:-/tmp}/fp8q-verify-scale"; mkdir -p "$work"
export FP8Q_NO_BUILD="${FP8Q_NO_BUILD:-1}"
fp8q="$here/fp8q"
if ! ls "$work"/src/*.index.json >/dev/null 2>&1; then
  rm -rf "$work/src" "$work/fp8"
  t0=$(date +%s)
  "$fp8q" testdata make "$work/src" --variant t2v-a14b --size full --layers "$layers" --shard-size 5GB 2>&1 | grep -v incubator
  echo "made in $(( $(date +%s) - t0 )) s"
fi
[ -d "$work/fp8" ] || "$fp8q" convert --quiet "$work/src" "$work/fp8" 2>&1 | grep -v incubator | head -2
blocks=$(seq -s, 0 $((nblocks - 1)))
if [ -n "${FP8Q_COLD:-}" ]; then sync; echo 3 > /proc/sys/vm/drop_caches && echo "page cache dropped"; fi
python3 - "$work" "$fp8q" "$blocks" "$device" <<'PY'
import json, resource, subprocess, sys, time
work, fp8q, blocks, device = sys.argv[1:5]
t = time.time()
r = subprocess.run([fp8q, "verify", f"{work}/src", f"{work}/fp8", "--device", device, "--blocks", blocks,
                    "--weights", "none", "--grid", "4,16,16", "--json", f"{work}/report.json"],
                   capture_output=True, text=True)
wall = time.time() - t
print("\n".join(l for l in r.stderr.splitlines() if "incubator" not in l and "block " not in l)[-2000:])
rep = json.load(open(f"{work}/report.json"))
s = rep["summary"]
print(f"verify --device {device}, {len(blocks.split(','))} blocks: exit {r.returncode}, wall {wall:.1f} s, "
      f"peak RSS {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6:.2f} GB, {s['gflop']:.0f} GFLOP, "
      f"phases {s['phase_seconds'] if 'phase_seconds' in s else s.get('phaseSeconds')}")
print("device:", rep["settings"]["device"], "| checks", s["checks"], "failed", s["failed"])
PY
