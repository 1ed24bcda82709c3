#!/usr/bin/env bash
# Times `fp8q convert` against `cp -r` of the same source folder, in one run, warm page cache.
# Usage: bench/scripts/convert-vs-copy.sh [SRC] [RUNS]   (default SRC: a ~2 GiB TI2V-5B-shaped BF16 checkpoint made here)
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="${FP8Q_BENCH_DIR:-/tmp/fp8q-bench}"
src="${1:-$work/src}"
runs="${2:-5}"
mkdir -p "$work"
if [ ! -d "$src" ]; then
  "$repo/fp8q" testdata make "$src" --variant ti2v-5b --size full --layers 6 --shard-size 1GiB >&2
fi
cat "$src"/*.safetensors > /dev/null   # warm the page cache
median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
: > "$work/cp.t"; : > "$work/cphot.t"; : > "$work/cpsync.t"; : > "$work/fp8q.t"; : > "$work/fp8q-nosync.t"; : > "$work/rss"; : > "$work/disk.t"
# Each timed command starts from the same state: no dirty pages pending (without the untimed sync, one command's
# writeback lands on the next one's clock), and memory freed by the last rm settled. On VMs with free page
# reporting (Firecracker, as here) the hypervisor takes freed pages back ~2 s after they are freed, and
# allocating page cache from them then costs 2-3x the system time: the same cp -r took 0.48 s right after an
# rm and 1.3 s five seconds later. FP8Q_SETTLE (seconds, default 3) is that pause; 0 turns it off. The copy is
# also timed without the pause ("cp -r, memory just freed"), the best case a copy gets here: the two copy rows
# bound what the machine's memory state does to the baseline (docs/BENCHMARKS.md, session 7).
settle="${FP8Q_SETTLE:-3}"
for i in $(seq "$runs"); do
  rm -rf "$work/copy"; sync; sleep "$settle"; /usr/bin/time -f %e -a -o "$work/cp.t" cp -r "$src" "$work/copy"
  rm -rf "$work/copy"; sync; /usr/bin/time -f %e -a -o "$work/cphot.t" cp -r "$src" "$work/copy"
  rm -rf "$work/copy"; sync; sleep "$settle"; /usr/bin/time -f %e -a -o "$work/cpsync.t" sh -c "cp -r '$src' '$work/copy' && sync"
  rm -rf "$work/out"; sync; sleep "$settle"; /usr/bin/time -f "%e %M" -o "$work/one" "$repo/fp8q" convert --quiet "$src" "$work/out" > /dev/null 2>&1
  cut -d' ' -f1 "$work/one" >> "$work/fp8q.t"; cut -d' ' -f2 "$work/one" >> "$work/rss"
  # The disk's share of a durable output: the output's size written past the page cache (0 where O_DIRECT is refused).
  blocks=$(( ($(du -sb "$work/out" | cut -f1) + 4194303) / 4194304 ))
  rm -rf "$work/out"; sync; sleep "$settle"; FP8Q_JAVA_OPTS=-Dfp8q.fsync=false /usr/bin/time -f %e -a -o "$work/fp8q-nosync.t" "$repo/fp8q" convert --quiet "$src" "$work/out" > /dev/null 2>&1
  rm -f "$work/disk"; sync
  t=$(dd if=/dev/zero of="$work/disk" bs=4M count="$blocks" oflag=direct 2>&1 | awk '/copied/ {print $(NF-3)}' || true)
  echo "${t:-0}" >> "$work/disk.t"
  rm -f "$work/disk"
done
cp_m=$(median < "$work/cp.t"); cph_m=$(median < "$work/cphot.t"); cps_m=$(median < "$work/cpsync.t"); f_m=$(median < "$work/fp8q.t"); fn_m=$(median < "$work/fp8q-nosync.t")
echo "source: $(du -sh "$src" | cut -f1) in $src; $runs runs each, medians (whole-process wall seconds)"
echo "cp -r                         $cp_m s"
echo "cp -r, memory just freed      $cph_m s"
echo "cp -r && sync                 $cps_m s"
echo "fp8q convert (fsync, default) $f_m s   ratio to cp -r: $(echo "$f_m / $cp_m" | bc -l | cut -c1-5), to cp -r with memory just freed: $(echo "$f_m / $cph_m" | bc -l | cut -c1-5), to cp+sync: $(echo "$f_m / $cps_m" | bc -l | cut -c1-5)"
echo "fp8q convert -Dfp8q.fsync=false $fn_m s   ratio to cp -r: $(echo "$fn_m / $cp_m" | bc -l | cut -c1-5)"
echo "dd oflag=direct of the output's size $(median < "$work/disk.t") s   (the disk alone, for a durable output)"
echo "fp8q peak RSS (KB, includes mapped page cache): $(sort -n "$work/rss" | tail -1)"
