#!/bin/bash
# Installs the Debian packages the tests and the demo need, if they are missing.
# Needs root (apt-get). Safe to run again.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
command -v redis-cli >/dev/null || need+=(redis-tools)
[ -e /usr/lib/systemd/user/dbus.socket ] || need+=(dbus-user-session)
command -v unshare >/dev/null || need+=(util-linux)
command -v script >/dev/null || need+=(bsdutils)
command -v flock >/dev/null || need+=(util-linux)
command -v make >/dev/null || need+=(make)
command -v cc >/dev/null || need+=(gcc)
command -v xz >/dev/null || need+=(xz-utils)
command -v openssl >/dev/null || need+=(openssl)
[ -e /usr/share/zoneinfo/Europe/Berlin ] || need+=(tzdata)
# A wall clock stepped under the agent (tests/edges.rs): libfaketime, monotonic clock untouched.
[ -e /usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1 ] || need+=(libfaketime)
for extra in "$@"; do
    dpkg -s "$extra" >/dev/null 2>&1 || need+=("$extra")
done
if [ ${#need[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "deps.sh: missing packages ${need[*]}; run as root to install them" >&2
        exit 1
    fi
    echo "deps.sh: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || true
    apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
# Debian's redis-server package starts a system instance; the tests never use it.
if [ -d /run/systemd/system ] && systemctl is-active -q redis-server 2>/dev/null; then
    systemctl stop redis-server >/dev/null 2>&1 || true
fi
