#!/bin/bash
# bench/fleet.sh SOCK SECS — the fleet's heartbeat script under 100 hosts beating every second
# against one Redis (on the unix socket SOCK), SECS seconds a row: server time per call and
# the server's CPU, with payloads of 10 and of 100 groups of 11 consumers a host. Side by side
# with the script of an earlier build when QW_BENCH_BASE_SRC names its source tree. Prints a
# table; asserts nothing. Run by bench/inside.sh (section 9), or by hand.
set -euo pipefail
SOCK=$1 SECS=${2:-20}
R="redis-cli -s $SOCK"
here=$(cd "$(dirname "$0")" && pwd)
script_of() { sed -n '/^pub const FLEET_LUA: &str = r#"/,/^"#;/p' "$1/src/adapters/redis/scripts.rs" | sed '1d;$d'; }
payload() { python3 -c '
import json, sys
n = int(sys.argv[1])
g = [{"stream": f"s{i}", "group": "g", "live": [f"c{i}-{k}" for k in range(11)], "dead": []} for i in range(n)]
print(json.dumps({"host": "sim", "version": "0.1.0", "interval_ms": 1000, "as_of_ms": 0, "groups": g}))' "$1"; }
cpu_ms() { $R INFO cpu | awk -F: '/^used_cpu_(sys|user):/ {s += $2} END {printf "%.0f", s * 1000}'; }
evalstat() { $R INFO commandstats | awk -F'[=,:]' '/^cmdstat_(eval|evalsha):/ {c += $3; u += $5} END {print c+0, u+0}'; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
# One row: 100 hosts beat each second for SECS with SCRIPT, as an agent of that build calls it.
row() { # label source groups
    local label=$1 src=$2 groups=$3 sha pl f
    $R FLUSHALL >/dev/null
    sha=$($R SCRIPT LOAD "$(script_of "$src")")
    pl=$(payload "$groups")
    f=$(mktemp)
    # The call as each build makes it: 2 keys (a01d1ab and before), or 3 (the meta hash) with
    # the heartbeat sent whole once and then as unchanged (`=`, its digest in the meta).
    if grep -q 'KEYS\[3\]' <(script_of "$src"); then
        calls() { local since=$(( $(now_ms) - 1500 )) body=${1:-=}; for h in $(seq -w 1 100); do
            echo "EVALSHA $sha 3 {quantum-watchdog}:hosts {quantum-watchdog}:host:sim-$h {quantum-watchdog}:meta sim-$h '$body' 3000 604800000 {quantum-watchdog}:host: 1048576 'i$h 0' $since d$groups"; done; }
    else
        calls() { for h in $(seq -w 1 100); do
            echo "EVALSHA $sha 2 {quantum-watchdog}:hosts {quantum-watchdog}:host:sim-$h sim-$h '$pl' 3000 604800000 {quantum-watchdog}:host:"; done; }
    fi
    calls "$pl" > "$f"; $R < "$f" >/dev/null   # every host's first beat, whole
    sleep 2   # then every reader has read them: from here on, only what changes is copied
    $R CONFIG RESETSTAT >/dev/null
    local c0 t0 i
    c0=$(cpu_ms); t0=$(date +%s%N)
    for i in $(seq "$SECS"); do calls > "$f"; $R < "$f" >/dev/null; sleep 1; done
    local cpu el n us
    cpu=$(( $(cpu_ms) - c0 )); el=$(( ($(date +%s%N) - t0) / 1000000 ))
    read -r n us < <(evalstat)
    rm -f "$f"
    python3 -c 'import sys; l, g, n, us, cpu, el = sys.argv[1:]; n = max(int(n), 1)
print(f"| {l} | {g} | {float(us)/n:.0f} µs | {float(cpu)/float(el)*100:.2f} % |")' "$label" "$groups" "$n" "$us" "$cpu" "$el"
}
echo "| script | groups a host (11 consumers each) | server time per call | server CPU, 100 hosts beating each second |"
echo "|---|---:|---:|---:|"
for g in 10 100; do
    [ -n "${QW_BENCH_BASE_SRC:-}" ] && row "baseline ($(git -C "$QW_BENCH_BASE_SRC" rev-parse --short HEAD 2>/dev/null || echo base))" "$QW_BENCH_BASE_SRC" "$g"
    row this "$here/.." "$g"
done
