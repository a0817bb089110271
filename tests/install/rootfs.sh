#!/bin/bash
# Prints the path of a minimal Debian 12 root file system with systemd, dbus, polkitd and
# redis-server, made once with debootstrap and cached in ${QW_CACHE:-~/.cache/quantum-watchdog}.
# Debian's monitoring stack (prometheus, prometheus-alertmanager, prometheus-node-exporter)
# is downloaded into its apt cache, not installed: each test installs what it needs, offline.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${QW_CACHE:-$HOME/.cache/quantum-watchdog}
ROOTFS=$CACHE/rootfs-bookworm
mkdir -p "$CACHE"
exec 9>"$CACHE/rootfs.lock"; flock 9
monitoring() {
    [ -f "$ROOTFS/.monitoring" ] && return 0
    chroot "$ROOTFS" apt-get install --download-only -y -q --no-install-recommends \
        prometheus prometheus-alertmanager prometheus-node-exporter >"$CACHE/monitoring.log" 2>&1 ||
        { tail -20 "$CACHE/monitoring.log" >&2; exit 1; }
    touch "$ROOTFS/.monitoring"
}
if [ -f "$ROOTFS/.complete" ]; then monitoring; echo "$ROOTFS"; exit 0; fi
rm -rf "$ROOTFS"
mirror=$("$here/support/mirror.sh")
echo "rootfs.sh: debootstrap bookworm from $mirror (once)" >&2
debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,libpam-systemd,polkitd,redis-server,procps \
    bookworm "$ROOTFS" "$mirror" >"$CACHE/debootstrap.log" 2>&1 || { tail -30 "$CACHE/debootstrap.log" >&2; exit 1; }
# No getty or other noise at boot; a fixed hostname.
echo qw-install-test > "$ROOTFS/etc/hostname"
rm -f "$ROOTFS"/etc/systemd/system/getty.target.wants/* 2>/dev/null || true
touch "$ROOTFS/.complete"
monitoring
echo "$ROOTFS"
