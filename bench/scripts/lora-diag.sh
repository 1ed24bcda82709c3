#!/usr/bin/env bash
# Device diagnosis for issue 23's speed: interleaved runs (none / --lora / --scaling mx), then a --lora run with the
# phase trace and the JIT's compilations of the merge and quantization kernels. RUNS, DIM, FFN, LAYERS, MX=0|1,
# TRACE=0|1.
set -uo pipefail
mkdir -p /tmp/f && tar xzf dist/fp8q-*.tar.gz -C /tmp/f
export FP8Q=$(echo /tmp/f/fp8q-*/bin/fp8q)
dim=${DIM:-5120}; ffn=${FFN:-13824}; layers=${LAYERS:-8}
FP8Q_BENCH_DIR=/tmp bash bench/scripts/lora-convert.sh $dim $ffn $layers 0 "64" >/dev/null # files only
S=/tmp/fp8q-lora-bench/wan-$dim-$ffn-$layers.safetensors; L=/tmp/fp8q-lora-bench/r64-$dim-$layers.safetensors
run() { # name opts args...
  local n=$1 o=$2; shift 2
  rm -f /tmp/o.safetensors /tmp/o.fp8-manifest.json # a large expert's output twice would not fit the disk
  FP8Q_JAVA_OPTS="$o" /usr/bin/time -f "$n %e s wall %U+%S cpu %M KB" $FP8Q convert --quiet --force $S /tmp/o.safetensors "$@" > /tmp/$n.out 2> /tmp/$n.err
  tail -1 /tmp/$n.err
}
for i in $(seq ${RUNS:-3}); do
  run none$i "-Xmx1g"; run lora$i "-Xmx1g" --lora $L
  if [ "${MX:-1}" = 1 ]; then run tensor$i "-Xmx1g" --scaling tensor; run mx$i "-Xmx1g" --scaling mx; fi
done
[ "${TRACE:-1}" = 1 ] || exit 0
FP8Q_JAVA_OPTS="-Xmx1g -Dfp8q.trace=true -XX:+PrintCompilation" $FP8Q convert --quiet --force $S /tmp/o.safetensors --lora $L > $OUT/jit.txt 2> $OUT/trace.txt
grep -E 'fp8q-trace .*(open|start|written|published)' $OUT/trace.txt
python3 bench/scripts/trace-summary.py < $OUT/trace.txt
grep -E 'DeltaMerger::(block4x2|lowRank|merge)|VectorQuantKernel::(encode|block|maxMag)' $OUT/jit.txt | head -30
