#!/bin/bash
# The package test: builds the .deb with the one canonical command (dpkg-buildpackage), runs
# lintian, and installs it in a booted Debian 12 (systemd-nspawn -b, systemd as PID 1) where
# tests/install/checks.sh checks it as an operator would. Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
T0=$SECONDS
tests/support/deps.sh debhelper dpkg-dev lintian fakeroot systemd-container debootstrap
OUT=target/deb
rm -rf "$OUT"; mkdir -p "$OUT"
echo "== dpkg-buildpackage -b -us -uc"
dpkg-buildpackage -b -us -uc >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
mv ../quantum-watchdog_*.deb ../quantum-watchdog_*.changes ../quantum-watchdog_*.buildinfo "$OUT"/
echo "== lintian"
lrc=0
lintian --fail-on error,warning "$OUT"/quantum-watchdog_*.changes >"$OUT/lintian.log" 2>&1 || lrc=$?
grep -v '^running with root privileges' "$OUT/lintian.log" || true
echo "lintian: $(grep -c '^E:' "$OUT/lintian.log" || true) errors, $(grep -c '^W:' "$OUT/lintian.log" || true) warnings"
[ "$lrc" = 0 ] || { echo "lintian failed (exit $lrc)"; exit 1; }
ls -l "$OUT"/*.deb
cargo build --quiet --locked --example qw-consumer
cp target/debug/examples/qw-consumer "$OUT"/
ROOTFS=$(tests/install/rootfs.sh)
echo "== install test in a booted container"
T1=$SECONDS
QW_DEBS=$PWD/$OUT tests/support/nspawn-boot.sh "$ROOTFS" env QW_DEBS="$PWD/$OUT" tests/install/checks.sh
echo "package test: $((SECONDS - T0)) s in all, install test $((SECONDS - T1)) s"
