#!/bin/bash
# sd-harness.sh [--journald] -- CMD [ARGS...]
#
# Runs CMD against a private, real `systemd --user` manager in its own mount and PID
# namespace: private XDG dirs (so a private unit search path), its own cgroup subtree, the
# session bus run by the manager itself (dbus.socket/dbus.service). CMD gets
#   XDG_RUNTIME_DIR, XDG_CONFIG_HOME, DBUS_SESSION_BUS_ADDRESS,
#   QW_UNIT_DIR  (drop unit files there, then `systemctl --user daemon-reload`),
#   QW_BASE      (scratch dir, removed afterwards), QW_MANAGER_PID.
# With QW_HOSTNAME set, the namespace has its own host name too (a UTS namespace): one host
# of a fleet on this machine.
# Exit status: CMD's. Everything CMD started dies with the namespace.
#
# Needs root, util-linux (unshare, script), systemd, dbus-daemon (dbus-user-session).
set -u
if [ -z "${QW_IN_NS:-}" ]; then
    export QW_IN_NS=1
    UTS=""; [ -n "${QW_HOSTNAME:-}" ] && UTS=--uts
    exec unshare --mount --propagation private --pid --fork --kill-child --mount-proc $UTS -- "$0" "$@"
fi
[ -n "${QW_HOSTNAME:-}" ] && hostname "$QW_HOSTNAME"
JOURNALD=0
while [ $# -gt 0 ]; do
    case "$1" in
        --journald) JOURNALD=1; shift ;;
        --) shift; break ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: $0 [--journald] -- CMD..." >&2; exit 2; }

ROOT=${TMPDIR:-/tmp}/qw-harness
mkdir -p "$ROOT"
QW_BASE=$(mktemp -d "$ROOT/h.XXXXXX"); export QW_BASE
log() { echo "[harness] $*" >&2; }
ID=${QW_BASE##*/h.}
CG="qwh-$ID.slice/user@0.service"
HIER=""
for h in unified systemd; do [ -d /sys/fs/cgroup/$h ] && HIER="$HIER $h"; done
[ -f /sys/fs/cgroup/cgroup.controllers ] && HIER=" ."
MANAGER=""; JPID=""; SPID=""

teardown() {
    local rc=${RC:-$?}
    trap - EXIT INT TERM
    if [ -n "$MANAGER" ] && kill -0 "$MANAGER" 2>/dev/null; then
        systemctl --user exit 2>/dev/null || kill -TERM "$MANAGER" 2>/dev/null
        for _ in $(seq 100); do kill -0 "$MANAGER" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$MANAGER" 2>/dev/null && kill -KILL "$MANAGER"
    fi
    [ -n "$SPID" ] && wait "$SPID" 2>/dev/null
    for h in $HIER; do
        top=/sys/fs/cgroup/$h/${CG%%/*}
        [ -d "$top" ] || continue
        for p in $(find "$top" -name cgroup.procs -exec cat {} + 2>/dev/null); do
            [ "$p" = "$$" ] || kill -KILL "$p" 2>/dev/null
        done
        sleep 0.1
        find "$top" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    [ -n "$JPID" ] && kill -TERM "$JPID" 2>/dev/null
    rm -rf "$QW_BASE"
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# sd_booted() looks for /run/systemd/system; keep the host's /run/systemd out of reach.
mount -t tmpfs -o mode=755 tmpfs /run/systemd
mkdir -p /run/systemd/system
if [ "$JOURNALD" = 1 ]; then
    mount -t tmpfs -o mode=755 tmpfs /run/log
    [ -d /var/log/journal ] && mount -t tmpfs -o mode=2755 tmpfs /var/log/journal
    SYSTEMD_LOG_TARGET=console /lib/systemd/systemd-journald >"$QW_BASE/journald.log" 2>&1 &
    JPID=$!
    for _ in $(seq 100); do [ -S /run/systemd/journal/stdout ] && break; sleep 0.05; done
fi
# Remove subtrees that SIGKILLed harnesses left behind.
for h in $HIER; do
    for d in /sys/fs/cgroup/$h/qwh-*.slice; do
        [ -d "$d" ] || continue
        [ -z "$(find "$d" -name cgroup.procs -exec cat {} + 2>/dev/null)" ] && find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
    done
    mkdir -p "/sys/fs/cgroup/$h/$CG/init.scope"
done

export XDG_RUNTIME_DIR=$QW_BASE/run XDG_CONFIG_HOME=$QW_BASE/config XDG_DATA_HOME=$QW_BASE/data \
       XDG_STATE_HOME=$QW_BASE/state XDG_CACHE_HOME=$QW_BASE/cache
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
export QW_UNIT_DIR=$XDG_CONFIG_HOME/systemd/user
mkdir -p "$QW_UNIT_DIR" "$XDG_DATA_HOME" "$XDG_STATE_HOME" "$XDG_CACHE_HOME"
export DBUS_SESSION_BUS_ADDRESS=unix:path=$XDG_RUNTIME_DIR/bus
if [ ! -e /usr/lib/systemd/user/dbus.socket ]; then
    log "dbus-user-session is not installed (apt-get install dbus-user-session)"; exit 1
fi

# The user manager insists on a tty for /dev/console: run it under script(1), bind the pty.
if [ "$JOURNALD" = 1 ]; then MARGS="--log-target=journal"
else MARGS="--log-target=console --default-standard-output=inherit --default-standard-error=inherit"; fi
(
    for h in $HIER; do echo $BASHPID > "/sys/fs/cgroup/$h/$CG/init.scope/cgroup.procs"; done
    exec script -qfe -c "mount --bind \"\$(tty)\" /dev/console && echo \$\$ > $QW_BASE/manager.pid && exec systemd --user $MARGS" \
        "$QW_BASE/manager.log" </dev/null >/dev/null 2>&1
) &
SPID=$!
for _ in $(seq 200); do [ -s "$QW_BASE/manager.pid" ] && break; sleep 0.05; done
MANAGER=$(cat "$QW_BASE/manager.pid" 2>/dev/null); export QW_MANAGER_PID=$MANAGER
for _ in $(seq 200); do [ -S "$XDG_RUNTIME_DIR/systemd/private" ] && break; sleep 0.05; done
if ! timeout 30 systemctl --user is-system-running --wait >/dev/null 2>&1; then
    st=$(systemctl --user is-system-running 2>&1)
    [ "$st" = degraded ] || { log "user manager not running: $st"; tail -20 "$QW_BASE/manager.log" >&2; }
fi
systemctl --user start dbus.service
for _ in $(seq 200); do
    busctl --user call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
        NameHasOwner s org.freedesktop.systemd1 2>/dev/null | grep -q true && break
    sleep 0.05
done
"$@"
RC=$?
exit $RC
