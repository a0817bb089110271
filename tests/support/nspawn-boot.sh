#!/bin/bash
# nspawn-boot.sh ROOTFS CMD... — boots ROOTFS with `systemd-nspawn -b` (systemd as PID 1 of the
# container, rootfs kept pristine by a tmpfs overlay), waits until it is up, runs CMD on the
# host with a function `run` exported that executes a command inside the container, then
# powers the container off. QW_DEBS=DIR is bind-mounted read-only at /debs inside.
# Runs in a private mount namespace and a private cgroup subtree; no machined registration.
set -u
if [ -z "${QW_NSB_NS:-}" ]; then export QW_NSB_NS=1; exec unshare --mount --propagation private -- "$0" "$@"; fi
ROOTFS=$1; shift
ID=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
W=${TMPDIR:-/tmp}/qw-nspawn.$ID; mkdir -p "$W"
mount -t tmpfs tmpfs /run/systemd          # nspawn keeps its propagation dirs under /run/systemd/nspawn
CG="qwn-$ID.slice/container.scope"; HIER=""
for h in unified systemd; do [ -d /sys/fs/cgroup/$h ] && HIER="$HIER $h"; done
[ -f /sys/fs/cgroup/cgroup.controllers ] && HIER=" ."
for h in $HIER; do mkdir -p "/sys/fs/cgroup/$h/$CG"; done
T0=$(date +%s.%N)
(
  for h in $HIER; do echo $BASHPID > "/sys/fs/cgroup/$h/$CG/cgroup.procs"; done
  exec systemd-nspawn -q -D "$ROOTFS" --register=no --keep-unit --machine="qw$ID" --console=passive \
       --volatile=overlay ${QW_DEBS:+--bind-ro=$QW_DEBS:/debs} -b
) >"$W/nspawn.log" 2>&1 &
NSPID=$!
LEADER=""
for _ in $(seq 200); do
    kill -0 $NSPID 2>/dev/null || break
    LEADER=$(ps -o pid= --ppid $NSPID | head -1 | tr -d ' ')
    [ -n "$LEADER" ] && break
    sleep 0.05
done
run() { nsenter -t "$LEADER" -m -u -i -n -p -C -r -w -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin TERM=dumb LANG=C.UTF-8 "$@"; }
st=""
for _ in $(seq 600); do
    { [ -n "$LEADER" ] && kill -0 $NSPID 2>/dev/null; } || break
    st=$(run systemctl is-system-running 2>/dev/null)
    case $st in running|degraded) break ;; esac
    sleep 0.1
done
echo "[nspawn] booted to '$st' in $(echo "$(date +%s.%N) - $T0" | bc) s" >&2
rc=1
if [ -n "$LEADER" ] && kill -0 $NSPID 2>/dev/null; then
    export -f run; export LEADER
    "$@"; rc=$?
else
    echo "[nspawn] the container did not boot:" >&2; tail -30 "$W/nspawn.log" >&2
fi
run systemctl poweroff --no-block >/dev/null 2>&1 || kill -TERM $NSPID
for _ in $(seq 300); do kill -0 $NSPID 2>/dev/null || break; sleep 0.1; done
kill -0 $NSPID 2>/dev/null && kill -KILL $NSPID
wait $NSPID 2>/dev/null
for h in $HIER; do
    for p in $(find "/sys/fs/cgroup/$h/qwn-$ID.slice" -name cgroup.procs -exec cat {} + 2>/dev/null); do kill -KILL "$p"; done
    sleep 0.1; find "/sys/fs/cgroup/$h/qwn-$ID.slice" -depth -type d -exec rmdir {} \; 2>/dev/null
done
[ $rc = 0 ] || { echo "--- container console (tail)" >&2; tail -20 "$W/nspawn.log" >&2; }
rm -rf "$W"
exit $rc
