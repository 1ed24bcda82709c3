#!/usr/bin/env bash
# Issue 6's side-by-side: in ONE run on one machine and one checkpoint, the whole-process wall time of
#   cp -r SRC (the I/O floor), fp8q convert (fsync, the default, and -Dfp8q.fsync=false), and the Python peer
#   ../shared/bench/torch_fp8_convert.py on CPU and, when torch sees a GPU, on CUDA;
# RUNS runs of each, interleaved, warm page cache, each after a sync (no writeback of the last one pending); prints medians, ratios and peak RSS (max over runs).
# Usage: bench/scripts/side-by-side.sh SRC [RUNS]
#   FP8Q_CMD   how to start fp8q (default: the ./fp8q launcher, which reads FP8Q_JAVA_OPTS; on a machine without a JDK
#              carry a jlink'ed .jre and cli/target/fp8q.jar and set FP8Q_NO_BUILD=1)
#   FP8Q_PEER  the peer script (default: ../shared/bench/torch_fp8_convert.py); FP8Q_BENCH_DIR scratch space (/tmp/fp8q-bench)
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
src="$1"; runs="${2:-3}"
work="${FP8Q_BENCH_DIR:-/tmp/fp8q-bench}"
fp8q="${FP8Q_CMD:-$repo/fp8q}"
peer="${FP8Q_PEER:-$repo/../shared/bench/torch_fp8_convert.py}"
mkdir -p "$work"; rm -f "$work"/*.t
cat "$src"/*.safetensors > /dev/null   # warm the page cache
# wall seconds and the child's peak RSS (KiB), measured by Python around the command
measure() { python3 - "$@" <<'PY'
import resource, subprocess, sys, time
t = time.perf_counter(); r = subprocess.run(sys.argv[2:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
dt = time.perf_counter() - t
if r.returncode: sys.stderr.write(r.stderr.decode()); sys.exit(r.returncode)
open(sys.argv[1], "a").write(f"{dt:.3f} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\n")
PY
}
gpu=$(python3 -c "import torch; print(int(torch.cuda.is_available()))" 2>/dev/null || echo 0)
peer_ok=$(python3 -c "import torch, safetensors" 2>/dev/null && [ -f "$peer" ] && echo 1 || echo 0)
for i in $(seq "$runs"); do
  rm -rf "$work/out"; sync; measure "$work/cp.t" cp -r "$src" "$work/out"
  rm -rf "$work/out"; sync; measure "$work/fp8q.t" $fp8q convert --quiet "$src" "$work/out"
  rm -rf "$work/out"; sync; measure "$work/fp8q-nosync.t" env FP8Q_JAVA_OPTS=-Dfp8q.fsync=false $fp8q convert --quiet "$src" "$work/out"
  if [ "$peer_ok" = 1 ]; then
    rm -rf "$work/out"; sync; measure "$work/peer-cpu.t" python3 "$peer" "$src" "$work/out" --device cpu
    if [ "$gpu" = 1 ]; then rm -rf "$work/out"; sync; measure "$work/peer-gpu.t" python3 "$peer" "$src" "$work/out" --device cuda; fi
  fi
done
rm -rf "$work/out"
med() { cut -d' ' -f1 "$1" | sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
rss() { cut -d' ' -f2 "$1" | sort -n | tail -1 | awk '{printf "%.2f GB", $1 * 1024 / 1e9}'; }
cpm=$(med "$work/cp.t"); fm=$(med "$work/fp8q.t")
echo "source: $(du -sh "$src" | cut -f1) ($src), $(nproc) cores, $runs runs each, interleaved; medians of whole-process wall"
printf "%-34s %8s s  %-28s peak RSS %s\n" "cp -r" "$cpm" "1.00x cp" "$(rss "$work/cp.t")"
for t in fp8q fp8q-nosync peer-cpu peer-gpu; do
  [ -s "$work/$t.t" ] || continue
  m=$(med "$work/$t.t")
  printf "%-34s %8s s  %-28s peak RSS %s\n" "$t" "$m" "$(awk -v a="$m" -v b="$cpm" -v c="$fm" 'BEGIN {printf "%.2fx cp, %.2fx fp8q", a / b, a / c}')" "$(rss "$work/$t.t")"
done
echo "(fp8q = fsync of every shard before publishing; peer-* = python3 $peer, which imports torch and does not fsync)"
