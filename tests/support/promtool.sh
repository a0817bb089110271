#!/bin/bash
# Prints the path of promtool, taken once from Debian's prometheus package without installing
# it (installing would start a Prometheus server), cached in ${QW_CACHE:-$HOME/.cache/quantum-watchdog}.
set -euo pipefail
if command -v promtool >/dev/null; then command -v promtool; exit 0; fi
CACHE=${QW_CACHE:-$HOME/.cache/quantum-watchdog}
out=$CACHE/promtool/usr/bin/promtool
mkdir -p "$CACHE"
exec 9>"$CACHE/promtool.lock"; flock 9
if [ ! -x "$out" ]; then
    tmp=$(mktemp -d "$CACHE/dl.XXXXXX")
    (cd "$tmp" && apt-get download prometheus >&2) || { apt-get update -qq >&2; (cd "$tmp" && apt-get download prometheus >&2); }
    rm -rf "$CACHE/promtool"
    dpkg-deb -x "$tmp"/prometheus_*.deb "$CACHE/promtool"
    rm -rf "$tmp"
fi
echo "$out"
