#!/usr/bin/env bash
# Completes the jlink'ed image IMAGE (IMAGE/runtime) with the jar, bin/fp8q and a class-data archive, then packs it.
set -euo pipefail
image="$1" jar="$2" tarball="$3"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
mkdir -p "$image/bin" "$image/lib"
cp "$jar" "$image/lib/fp8q.jar"
install -m 755 "$here/fp8q" "$image/bin/fp8q"
# The archive holds the classes a conversion of the embedded checkpoint loads (as ./fp8q's does), made by the
# bundled runtime itself: an archive only maps into the runtime that wrote it.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
(cd "$scratch" && "$image/runtime/bin/java" "-XX:ArchiveClassesAtExit=$image/lib/fp8q.jsa" -Xlog:cds=off \
  -Xlog:cds+dynamic=off -Xlog:aot=off --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  -jar "$image/lib/fp8q.jar" convert --quiet --force >/dev/null 2>&1)
test -s "$image/lib/fp8q.jsa"
rm -f "$tarball"
tar -C "$(dirname "$image")" -czf "$tarball" "$(basename "$image")"
echo "fp8q: $tarball ($(du -k "$tarball" | cut -f1) KiB; unpacked $(du -sk "$image" | cut -f1) KiB)"
