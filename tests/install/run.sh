#!/bin/bash
# The package test: builds the .deb with the one canonical command (dpkg-buildpackage), runs
# lintian, and installs it in a booted Debian 12 (systemd-nspawn -b, systemd as PID 1) where
# tests/install/checks.sh checks it as an operator would; lifecycle.sh upgrades to it from
# the previous release, removes and purges it beside Debian's node_exporter; monitoring.sh
# runs it under Debian's prometheus and alertmanager. Needs root.
set -euo pipefail
cd "$(dirname "$0")/../.."
T0=$SECONDS
tests/support/deps.sh debhelper dpkg-dev lintian fakeroot systemd-container debootstrap
OUT=target/deb
rm -rf "$OUT"; mkdir -p "$OUT"
# Build-Depends names Debian's cargo and rustc (>= 1.88); Debian 12's are older, so this
# machine builds with rustup's under the profile that says so (debian/README.source).
echo "== dpkg-checkbuilddeps: Debian's toolchain, or the rustup profile"
if dpkg-checkbuilddeps 2>"$OUT/builddeps.log"; then :; else
    grep -q 'rustc (>= 1.88)' "$OUT/builddeps.log" || { cat "$OUT/builddeps.log"; exit 1; }
fi
dpkg-checkbuilddeps -Ppkg.quantum-watchdog.rustup
echo "== dpkg-buildpackage -b -us -uc -Ppkg.quantum-watchdog.rustup"
dpkg-buildpackage -b -us -uc -Ppkg.quantum-watchdog.rustup >"$OUT/build.log" 2>&1 || { tail -40 "$OUT/build.log"; exit 1; }
mv ../quantum-watchdog_*.deb ../quantum-watchdog_*.changes ../quantum-watchdog_*.buildinfo "$OUT"/
echo "== lintian"
lrc=0
lintian --fail-on error,warning "$OUT"/quantum-watchdog_*.changes >"$OUT/lintian.log" 2>&1 || lrc=$?
grep -v '^running with root privileges' "$OUT/lintian.log" || true
echo "lintian: $(grep -c '^E:' "$OUT/lintian.log" || true) errors, $(grep -c '^W:' "$OUT/lintian.log" || true) warnings"
[ "$lrc" = 0 ] || { echo "lintian failed (exit $lrc)"; exit 1; }
ls -l "$OUT"/*.deb
# The previous release, built from its commit with the same command (cached by commit).
PREV_COMMIT=86c80e62d43b16c5469d9a44f9a0f7e8c513d032  # 0.1.0
PREV_DEB=$(tests/install/previous.sh "$PREV_COMMIT")
cp "$PREV_DEB" "$OUT/previous.deb"
cargo build --quiet --locked --example qw-consumer
cp target/debug/examples/qw-consumer "$OUT"/
cp debian/tests/smoke "$OUT"/
ROOTFS=$(tests/install/rootfs.sh)
echo "== install test in a booted container"
T1=$SECONDS
rc=0
for t in checks lifecycle monitoring; do
    echo "== $t.sh"
    QW_DEBS=$PWD/$OUT tests/support/nspawn-boot.sh "$ROOTFS" env QW_DEBS="$PWD/$OUT" "tests/install/$t.sh" || rc=1
done
[ "$rc" = 0 ] || { echo "package test failed"; exit 1; }
echo "package test: $((SECONDS - T0)) s in all, install test $((SECONDS - T1)) s"
