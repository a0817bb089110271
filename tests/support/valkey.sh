#!/bin/bash
# Build (once) a Valkey 8 server from Debian 13's source tarball and print the path of its
# valkey-server binary. The build is cached outside the repository, in
# ${QW_CACHE:-$HOME/.cache/quantum-watchdog}/valkey-<version>/. Valkey 8 has the Redis 7.2+
# stream semantics (XINFO CONSUMERS `inactive`, `idle` counting every read attempt).
set -euo pipefail
CACHE=${QW_CACHE:-$HOME/.cache/quantum-watchdog}
mkdir -p "$CACHE"
found=$(ls -d "$CACHE"/valkey-*/src/valkey-server 2>/dev/null | head -1 || true)
if [ -n "$found" ] && [ -x "$found" ]; then echo "$found"; exit 0; fi

exec 9>"$CACHE/valkey.lock"; flock 9
found=$(ls -d "$CACHE"/valkey-*/src/valkey-server 2>/dev/null | head -1 || true)
if [ -n "$found" ] && [ -x "$found" ]; then echo "$found"; exit 0; fi

# deb-src for trixie on the mirror apt already uses
mirror=$("$(dirname "$0")/mirror.sh")
src=/etc/apt/sources.list.d/quantum-watchdog-trixie-src.list
if [ ! -f "$src" ]; then
    echo "deb-src $mirror trixie main" > "$src"
    apt-get update -qq >&2
fi
work=$(mktemp -d "$CACHE/build.XXXXXX")
( cd "$work" && apt-get source --download-only valkey >&2 ) || true
tarball=$(ls "$work"/valkey_*.orig.tar.* 2>/dev/null | head -1)
[ -n "$tarball" ] || { echo "valkey.sh: apt-get source valkey did not fetch an .orig tarball" >&2; exit 1; }
tar -C "$work" -xf "$tarball"
dir=$(ls -d "$work"/valkey-*/ | head -1); dir=${dir%/}
make -C "$dir" -j"$(nproc)" BUILD_TLS=no USE_SYSTEMD=no >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; exit 1; }
name=$(basename "$dir")
rm -rf "${CACHE:?}/$name"; mv "$dir" "$CACHE/$name"; rm -rf "$work"
echo "$CACHE/$name/src/valkey-server"
