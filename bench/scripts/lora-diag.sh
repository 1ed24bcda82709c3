#!/usr/bin/env bash
# Device diagnosis for issue 23's speed: interleaved runs (none / --lora / --scaling mx), a phase trace and
# SIGQUIT thread dumps of a --lora convert. RUNS, DIM, FFN, LAYERS, DUMPS from the environment.
set -uo pipefail
mkdir -p /tmp/f && tar xzf dist/fp8q-*.tar.gz -C /tmp/f
export FP8Q=$(echo /tmp/f/fp8q-*/bin/fp8q)
nproc
dim=${DIM:-5120}; ffn=${FFN:-13824}; layers=${LAYERS:-8}
FP8Q_BENCH_DIR=/tmp bash bench/scripts/lora-convert.sh $dim $ffn $layers 1 "64" >/dev/null
S=/tmp/fp8q-lora-bench/wan-$dim-$ffn-$layers.safetensors; L=/tmp/fp8q-lora-bench/r64-$dim-$layers.safetensors
run() { # name opts args...
  local n=$1 o=$2; shift 2
  FP8Q_JAVA_OPTS="$o" /usr/bin/time -f "$n %e s wall %U+%S cpu %M KB" $FP8Q convert --quiet --force $S /tmp/o.safetensors "$@" > $OUT/$n.out 2> $OUT/$n.err
  tail -1 $OUT/$n.err
}
for i in $(seq ${RUNS:-3}); do
  run none$i "-Xmx1g"; run lora$i "-Xmx1g" --lora $L; run tensor$i "-Xmx1g" --scaling tensor; run mx$i "-Xmx1g" --scaling mx
done
run trace "-Xmx1g -Dfp8q.trace=true" --lora $L; grep fp8q-trace $OUT/trace.err
if [ "${DUMPS:-1}" = 1 ]; then
FP8Q_JAVA_OPTS="-Xmx1g" $FP8Q convert --quiet --force $S /tmp/o.safetensors --lora $L > $OUT/dumps.txt 2>&1 &
pid=$!; sleep 1
for i in $(seq 40); do kill -3 $pid 2>/dev/null || break; sleep 0.25; done
wait $pid
fi
rm -f $OUT/*.out
