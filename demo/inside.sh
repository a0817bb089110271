#!/bin/bash
# Runs inside tests/support/sd-harness.sh (see demo/run).
set -euo pipefail
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
R="redis-cli -s $QW_BASE/redis.sock"
redis-server --port 0 --unixsocket "$QW_BASE/redis.sock" --save '' --appendonly no --dir "$QW_BASE" \
    --logfile "$QW_BASE/redis.log" --daemonize yes --pidfile "$QW_BASE/redis.pid" >/dev/null
for _ in $(seq 100); do $R ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done

unit() { # name stream group prefix
    cat > "$QW_UNIT_DIR/$1.service" <<U
[Unit]
Description=demo $1 (consumes $2)
[Service]
ExecStart=$QW_CONSUMER unix://$QW_BASE/redis.sock $2 $3 $4 $QW_BASE/$1.acks
Environment=QW_WORK_MS=50
TimeoutStopSec=5
U
}
unit quantum-router quantum:stream:ai.decision.made quantum:group:router:ai.decision.made router
unit quantum-execution quantum:stream:trade.intent quantum:group:execution:trade.intent execution
sed "s|@REDIS_URL@|unix://$QW_BASE/redis.sock|" "$QW_FIXTURES/demo.toml" > "$QW_BASE/config.toml"
systemctl --user daemon-reload
systemctl --user start quantum-router.service quantum-execution.service
QW="$QW_BIN --user --config $QW_BASE/config.toml"

# A producer: decisions and intents, five a second, for at most two minutes.
( for i in $(seq 1 600); do
    $R XADD quantum:stream:ai.decision.made '*' n "$i" >/dev/null
    $R XADD quantum:stream:trade.intent '*' n "$i" >/dev/null
    sleep 0.2
  done ) &
PRODUCER=$!
$QW agent 2>"$QW_BASE/agent.log" &
AGENT=$!
trap 'kill $PRODUCER $AGENT 2>/dev/null || true' EXIT
sleep 7

say "before: everything consumes"
$QW status || true

# A PID from systemd, or the demo stops here: `kill -STOP 0` would stop the demo itself.
main_pid() {
    local p; p=$(systemctl --user show -p MainPID --value "$1")
    case $p in ''|0|*[!0-9]*) echo "demo: $1 has no main process (MainPID=${p:-none}):" >&2
        systemctl --user status "$1" --no-pager >&2 || true; exit 1 ;; esac
    echo "$p"
}
OLD=$(main_pid quantum-router.service)
say "the router hangs (kill -STOP $OLD); systemd still says:"
kill -STOP "$OLD"
systemctl --user status quantum-router.service --no-pager 2>/dev/null | sed -n '1,3p'
sleep 6
say "6 s later: entries wait, the router's consumer is idle"
$QW status || true

say "waiting for the agent to restart it..."
T0=$(date +%s.%N)
for _ in $(seq 300); do
    NEW=$(systemctl --user show -p MainPID --value quantum-router.service)
    [ "$NEW" != "$OLD" ] && [ "$NEW" != 0 ] && break
    sleep 0.1
done
printf 'restarted after %.1f s more: MainPID %s -> %s\n' "$(echo "$(date +%s.%N) - $T0" | bc)" "$OLD" "$NEW"
sleep 4

say "after: the new router consumes; the old consumer's entries were handed to it and it was deleted"
$QW status || true
say "what the agent logged"
grep -E "verdict|restart|claim|delete" "$QW_BASE/agent.log" | sed -E 's/\x1b\[[0-9;]*m//g' | cut -c1-220

say "the execution service under systemd's own watchdog: quantum-watchdog exec"
cat > "$QW_UNIT_DIR/quantum-execution.service" <<U
[Unit]
Description=demo quantum-execution under quantum-watchdog exec
[Service]
Type=notify
NotifyAccess=main
WatchdogSec=4s
KillMode=mixed
Restart=on-failure
RestartSec=2
Environment=QW_WORK_MS=50
ExecStart=$QW exec -- $QW_CONSUMER unix://$QW_BASE/redis.sock quantum:stream:trade.intent quantum:group:execution:trade.intent execution $QW_BASE/quantum-execution.acks
TimeoutStopSec=5
U
systemctl --user daemon-reload
systemctl --user restart quantum-execution.service
sleep 3
systemctl --user status quantum-execution.service --no-pager 2>/dev/null | sed -n '1,4p;/Status:/p'
WRAPPER=$(main_pid quantum-execution.service)
CHILD=$(awk '{print $1}' /proc/"$WRAPPER"/task/"$WRAPPER"/children)
case $CHILD in ''|0|*[!0-9]*) echo "demo: the wrapper $WRAPPER has no child" >&2; exit 1 ;; esac
say "its consumer hangs (kill -STOP $CHILD, the wrapper's child); the wrapper stops pinging systemd"
kill -STOP "$CHILD"
T0=$(date +%s.%N)
for _ in $(seq 300); do
    [ "$(systemctl --user show -p Result --value quantum-execution.service)" = watchdog ] && break
    sleep 0.1
done
printf "systemd's watchdog fired after %.1f s: " "$(echo "$(date +%s.%N) - $T0" | bc)"
systemctl --user show -p Result -p ExecMainStatus quantum-execution.service | tr '\n' ' '; echo
for _ in $(seq 100); do
    [ "$(systemctl --user show -p NRestarts --value quantum-execution.service)" = 1 ] && break
    sleep 0.1
done
sleep 3
systemctl --user status quantum-execution.service --no-pager 2>/dev/null | sed -n '1,4p;/Status:/p'
say "the agent saw it and left the restart to systemd"
grep -E "quantum-execution" "$QW_BASE/agent.log" | grep -E "verdict|restart" | sed -E 's/\x1b\[[0-9;]*m//g' | cut -c1-220 | tail -4
