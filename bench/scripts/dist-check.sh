#!/usr/bin/env bash
# Runs the distribution tarball alone (no JDK, PATH=/usr/bin:/bin, no JAVA_HOME): convert and verify the embedded
# checkpoint and a Wan-shaped TI2V-5B-width one. Usage: dist-check.sh TARBALL [DEVICE=cuda]
set -uo pipefail
tarball="$(readlink -f "$1")" device="${2:-cuda}"
work="$(mktemp -d)"
cd "$work" && tar xzf "$tarball" || exit 3
fp8q="$(ls -d "$work"/fp8q-*/bin/fp8q)"
run() { echo "+ fp8q $*"; local t0=$SECONDS; env -u JAVA_HOME PATH=/usr/bin:/bin "$fp8q" "$@"; local rc=$?; echo "rc=$rc wall=$((SECONDS - t0))s"; return $rc; }
echo "java on PATH: $(PATH=/usr/bin:/bin command -v java || echo none); JAVA_HOME=${JAVA_HOME:-unset}"
fail=0
run --version || fail=1
run convert --force --quiet || fail=1
run testdata make embedded.safetensors || fail=1
run verify embedded.safetensors fp8q-out.safetensors --device "$device" --junit embedded.xml --markdown embedded.md || fail=1
run testdata make ti2v.safetensors --variant ti2v-5b --dim 3072 --ffn 14336 --layers 2 || fail=1
run convert ti2v.safetensors ti2v-fp8.safetensors --quiet || fail=1
run verify ti2v.safetensors ti2v-fp8.safetensors --device "$device" --blocks 0,1 || fail=1
rm -rf "$work"
exit $fail
