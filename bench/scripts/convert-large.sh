#!/usr/bin/env bash
# Issue 6's large conversion: a T2V-A14B-shaped F32 expert (40 blocks = 57 GB; LAYERS picks fewer to fit the disk)
# converted with a 1 GiB heap. Prints wall time, throughput (source bytes / wall) and peak RSS of each run.
# Usage: bench/scripts/convert-large.sh [LAYERS] [RUNS]   (FP8Q_BENCH_DIR: where to work, default /tmp)
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
layers="${1:-40}"; runs="${2:-2}"
work="${FP8Q_BENCH_DIR:-/tmp}/fp8q-convert-large"; mkdir -p "$work"
export FP8Q_NO_BUILD="${FP8Q_NO_BUILD:-1}"
if ! ls "$work"/src/*.index.json >/dev/null 2>&1; then
  rm -rf "$work/src"
  t0=$(date +%s)
  "$here/fp8q" testdata make "$work/src" --variant t2v-a14b --size full --dtype f32 --layers "$layers" --shard-size 5GB \
    2>&1 | grep -v incubator
  echo "made in $(( $(date +%s) - t0 )) s"
fi
for i in $(seq "$runs"); do
  for sync in true false; do
    rm -rf "$work/out"
    python3 - "$here/fp8q" "$work" "$sync" <<'PY'
import os, resource, subprocess, sys, time
fp8q, work, sync = sys.argv[1:4]
src = sum(os.path.getsize(os.path.join(work, "src", f)) for f in os.listdir(os.path.join(work, "src")))
env = dict(os.environ, FP8Q_JAVA_OPTS=f"-Xmx1g -Dfp8q.fsync={sync}")
t = time.time()
r = subprocess.run([fp8q, "convert", "--quiet", f"{work}/src", f"{work}/out"], env=env, capture_output=True, text=True)
wall = time.time() - t
out = sum(os.path.getsize(os.path.join(work, "out", f)) for f in os.listdir(os.path.join(work, "out")))
print(f"convert -Xmx1g fsync={sync}: exit {r.returncode}, {src / 1e9:.1f} GB -> {out / 1e9:.1f} GB in {wall:.1f} s "
      f"({src / wall / 1e9:.2f} GB/s of source), peak RSS {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1e6:.2f} GB")
if r.returncode:
    print(r.stderr[-2000:])
PY
  done
done
rm -rf "$work/out"
