#!/usr/bin/env bash
# When does convert --part pay? Measures on one machine: convert throughput by thread count, each of N parts
# alone, and merge by hard link (parts on DST's file system) and by copy (parts on another one), medians of RUNS.
# Usage: part-scale.sh FP8Q WORKDIR [LAYERS=20] [RUNS=3] [PARTS=4] [COPYDIR=/dev/shm]
set -uo pipefail
fp8q="$1" work="$2" layers="${3:-20}" runs="${4:-3}" n="${5:-4}" copydir="${6:-/dev/shm}"
mkdir -p "$work" && cd "$work" || exit 3
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
timed() { local t0 t1; t0=$(date +%s%N); "$@" >/dev/null || { echo "FAILED: $*" >&2; exit 1; }; t1=$(date +%s%N); awk "BEGIN {printf \"%.2f\n\", ($t1 - $t0) / 1e9}"; }
rate() { awk "BEGIN {printf \"%.2f\", $1 / $2}"; } # bc is missing on some machines
[ -d src ] || "$fp8q" testdata make src --size full --layers "$layers" --shard-size 2GB >/dev/null || exit 3
gb=$(du -sb --apparent-size src | awk '{printf "%.2f", $1/1e9}')
echo "source: $gb GB, $(ls src/*.safetensors | wc -l) shards, $(nproc) cores"
cat src/*.safetensors >/dev/null # warm page cache
for t in 1 2 4 8 16; do
  [ "$t" -le "$(nproc)" ] || continue
  m=$(for r in $(seq "$runs"); do timed "$fp8q" convert --quiet --force --threads "$t" src single; done | median)
  echo "convert --threads $t: median $m s, $(rate "$gb" "$m") GB/s of source"
done
for i in $(seq "$n"); do
  rm -rf "part$i"
  s=$(timed "$fp8q" convert --quiet src "part$i" --part "$i/$n")
  echo "part $i/$n (all cores): $s s, $(du -sb --apparent-size "part$i" | awk '{printf "%.2f", $1/1e9}') GB"
done
parts=$(seq -f "part%g" "$n" | tac)
m=$(for r in $(seq "$runs"); do rm -rf merged; timed "$fp8q" merge --quiet $parts merged; done | median)
echo "merge, hard links (parts on DST's file system): median $m s"
cmp -s single/fp8-manifest.json merged/fp8-manifest.json; echo "manifest equal to the single run's, but for the command line: $(diff single/fp8-manifest.json merged/fp8-manifest.json | grep -c '^[<>]' ) differing lines"
for f in $(cd single && find . -name '*.safetensors*'); do cmp -s "single/$f" "merged/$f" || echo "DIFFERS: $f"; done
if [ -d "$copydir" ] && [ "$(stat -c %d "$copydir")" != "$(stat -c %d .)" ]; then
  cdir=$(mktemp -d "$copydir/fp8q-parts.XXXX")
  for i in $(seq "$n"); do cp -r "part$i" "$cdir/"; done
  cparts=$(for i in $(seq "$n" -1 1); do echo "$cdir/part$i"; done)
  m=$(for r in $(seq "$runs"); do rm -rf merged; timed "$fp8q" merge --quiet $cparts merged; done | median)
  echo "merge, copies (parts on $copydir, another file system): median $m s for $(du -sb --apparent-size merged | awk '{printf "%.2f", $1/1e9}') GB"
  rm -rf "$cdir"
fi
