#!/usr/bin/env bash
# Regenerates the shipped PTX from fp8q.cu (needs nvcc 12.4+); an argument writes it elsewhere (the test does). The first line records the source's SHA-256,
# which CudaKernelsTest checks, so the PTX in the jar cannot drift from the source.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../resources/dev/fp8q/verifier/cuda/fp8q.ptx}"
mkdir -p "$(dirname "$out")"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
# sm_89 is the first architecture with FP8 tensor-core MMA; the driver JIT-compiles this PTX for newer GPUs.
nvcc -arch=sm_89 -ptx -O3 -o "$tmp/fp8q.ptx" "$here/fp8q.cu"
{ echo "// fp8q-source-sha256: $(sha256sum "$here/fp8q.cu" | cut -d' ' -f1)"; cat "$tmp/fp8q.ptx"; } > "$out"
echo "wrote $out"
