#!/usr/bin/env bash
# Issue 23 on the GPU machine: LoRA merges on the GPU (convert --device auto, the default) against the CPU's. First
# MergeBench gpu (one 14B FFN-sized merge: time, and every value against the CPU's), then interleaved converts of a
# generated Wan-shaped checkpoint: none / --lora (RUNS times) and one --lora --device cpu, whose output must equal
# the GPU one byte for byte. Env: DIM, FFN, LAYERS (default 5120 13824 8), RUNS (3), CPU=0 skips the CPU run,
# TRACE=1 adds a traced --lora run, JOPTS more JVM options. Carry dist/*.tar.gz and bench/target/fp8q-bench-*.jar.
set -uo pipefail
mkdir -p /tmp/f && tar xzf dist/fp8q-*.tar.gz -C /tmp/f
home=$(echo /tmp/f/fp8q-*); export FP8Q=$home/bin/fp8q
"$home/runtime/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  -cp "$home/lib/fp8q.jar:$(echo bench/target/fp8q-bench-*.jar)" dev.fp8q.bench.MergeBench gpu 13824 9 2>&1 | grep -v incubator
dim=${DIM:-5120}; ffn=${FFN:-13824}; layers=${LAYERS:-8}
FP8Q_BENCH_DIR=/tmp bash bench/scripts/lora-convert.sh $dim $ffn $layers 0 "64" >/dev/null # files only
S=/tmp/fp8q-lora-bench/wan-$dim-$ffn-$layers.safetensors; L=/tmp/fp8q-lora-bench/r64-$dim-$layers.safetensors
run() { # name out args...
  local n=$1 o=$2; shift 2
  rm -f $o ${o%.safetensors}.fp8-manifest.json
  FP8Q_JAVA_OPTS="-Xmx1g ${JOPTS:-}" /usr/bin/time -f "$n %e s wall %U+%S cpu %M KB" $FP8Q convert --force $S $o "$@" > /tmp/$n.out 2> /tmp/$n.err
  echo "$(tail -1 /tmp/$n.err) $(grep -o 'LoRA merges on [^,(]*' /tmp/$n.err)"
}
for i in $(seq ${RUNS:-3}); do
  run none$i /tmp/o.safetensors; run gpu$i /tmp/o.safetensors --lora $L
done
if [ "${TRACE:-0}" = 1 ]; then
  FP8Q_JAVA_OPTS="-Xmx1g -Dfp8q.trace=true ${JOPTS:-}" $FP8Q convert --quiet --force $S /tmp/o.safetensors --lora $L 2> /tmp/trace.txt
  grep -E 'fp8q-trace .*(open|start|written|published)' /tmp/trace.txt
  python3 bench/scripts/trace-summary.py < /tmp/trace.txt | tail -25
fi
[ "${CPU:-1}" = 1 ] || exit 0
mv /tmp/o.safetensors /tmp/gpu.safetensors
run cpu /tmp/o.safetensors --lora $L --device cpu
cmp /tmp/o.safetensors /tmp/gpu.safetensors && echo "cpu and gpu outputs: identical bytes"
rm -f /tmp/o.safetensors /tmp/gpu.safetensors
