#!/bin/bash
# Runs inside tests/support/sd-harness.sh (see bench/run). Prints tables; asserts nothing.
set -euo pipefail
B=$QW_BASE
SOCK=$B/redis.sock
R="redis-cli -s $SOCK"
HOST=$(hostname)
STEADY=${BENCH_STEADY_SECS:-300}
now_ns() { date +%s%N; }
ms_since() { echo $(( ($(now_ns) - $1) / 1000000 )); }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
pct() { sort -n | awk -v p="$1" '{a[NR]=$1} END {i=int(NR*p/100+0.999); if(i<1)i=1; print a[i]}'; }
QW() { "$QW_BIN" --user --config "$1" "${@:2}"; }

redis-server --port 0 --unixsocket "$SOCK" --save '' --appendonly no --dir "$B" --daemonize yes \
    --pidfile "$B/redis.pid" --logfile "$B/redis.log" >/dev/null
for _ in $(seq 100); do $R ping 2>/dev/null | grep -q PONG && break; sleep 0.05; done

unit_sleep() { # name
    printf '[Service]\nExecStart=/bin/sleep infinity\n' > "$QW_UNIT_DIR/$1.service"
}
mainpid() { systemctl --user show -p MainPID --value "$1"; }
dead_pid() { sh -c 'true & p=$!; wait; echo $p'; }

echo "quantum-watchdog $("$QW_BIN" --version | cut -d' ' -f2) (release), Redis $(redis-server --version | sed 's/.*v=\([^ ]*\).*/\1/') on a unix socket, $(nproc) cores, $(date -u +%F)"

# ------------------------------------------------------------------------------------------
ONLY=${BENCH_ONLY:-123456789}
if [[ $ONLY == *1* ]]; then
echo
echo "## 1. Reclaim: a dead consumer holding 100 000 pending entries"
S=bench:reclaim
N=100000
python3 - "$S" "$N" <<'PY' | $R --pipe >/dev/null
import sys
s, n = sys.argv[1], int(sys.argv[2])
out = sys.stdout
for i in range(n):
    v = str(i)
    out.write(f"*5\r\n$4\r\nXADD\r\n${len(s)}\r\n{s}\r\n$1\r\n*\r\n$1\r\nn\r\n${len(v)}\r\n{v}\r\n")
PY
unit_sleep quantum-bench-recl
systemctl --user daemon-reload
systemctl --user start quantum-bench-recl.service
LIVE=$(mainpid quantum-bench-recl.service)
DEAD=$(dead_pid)
for g in g-ours g-seed g-loop g-floor; do
    $R XGROUP CREATE $S $g 0 >/dev/null
    $R XREADGROUP GROUP $g "recl-$HOST-$DEAD" COUNT $N STREAMS $S '>' >/dev/null
done
$R XGROUP CREATECONSUMER $S g-ours "recl-$HOST-$LIVE" >/dev/null
cat > "$B/recl.toml" <<C
mode = "enforce"
redis.url = "unix://$SOCK"
redis.timeout = "5s"
units = []
[[watch]]
unit = "quantum-bench-recl.service"
stream = "$S"
group = "g-ours"
consumer = "recl-{hostname}-{pid}"
C
echo "(the incident hook claims with XAUTOCLAIM … 60000: waiting 61 s so the entries are idle long enough)" >&2
sleep 61

t=$(now_ns)
QW "$B/recl.toml" recover 2>"$B/recl.log"
OURS_MS=$(ms_since "$t")
OURS_LINE=$(grep -o 'claimed [0-9]* to [^ ]* in [0-9]* ms, [0-9]*/s' "$B/recl.log" | head -1 || true)
OURS_LEFT=$($R XPENDING $S g-ours - + 1 "recl-$HOST-$DEAD" | grep -c . || true)

# The incident hook as deployed: one XAUTOCLAIM … COUNT 200 per timer run (every 2 minutes).
: > "$B/seed-calls"
for _ in $(seq 20); do
    t=$(now_ns); $R XAUTOCLAIM $S g-seed "recover-$$" 60000 0 COUNT 200 JUSTID >/dev/null; echo $(( ($(now_ns) - t) / 1000 )) >> "$B/seed-calls"
done
SEED_CALL_US=$(median < "$B/seed-calls")
# Its best case: the same call looped until the cursor is 0.
t=$(now_ns); cursor=0; calls=0
while :; do
    cursor=$($R XAUTOCLAIM $S g-loop "recover-$$" 60000 "$cursor" COUNT 200 JUSTID | head -1)
    calls=$((calls + 1))
    [ "$cursor" = "0-0" ] && break
done
LOOP_MS=$(ms_since "$t")
LOOP_LEFT=$($R XPENDING $S g-loop - + 1 "recl-$HOST-$DEAD" | grep -c . || true)

# The floor Redis allows: one server-side Lua loop of XPENDING + XCLAIM JUSTID, 1 000 a chunk.
FLOOR_LUA='local t = 0
while true do
  local p = redis.call("XPENDING", KEYS[1], ARGV[1], "-", "+", 1000, ARGV[2])
  if #p == 0 then break end
  local a = {"XCLAIM", KEYS[1], ARGV[1], ARGV[3], 0}
  for _, e in ipairs(p) do a[#a + 1] = e[1] end
  a[#a + 1] = "JUSTID"
  t = t + #redis.call(unpack(a))
end
return t'
t=$(now_ns)
FLOOR_N=$($R EVAL "$FLOOR_LUA" 1 $S g-floor "recl-$HOST-$DEAD" "floor")
FLOOR_MS=$(ms_since "$t")

python3 - "$N" "$OURS_MS" "$OURS_LEFT" "$SEED_CALL_US" "$LOOP_MS" "$calls" "$LOOP_LEFT" "$FLOOR_MS" "$FLOOR_N" "$OURS_LINE" <<'PY'
import sys
n, ours_ms, ours_left, seed_us, loop_ms, calls, loop_left, floor_ms, floor_n = (float(x) for x in sys.argv[1:10])
line = sys.argv[10]
rate = lambda ms: n / (ms / 1000) if ms > 0 else float("inf")
floor = rate(floor_ms)
deployed_s = n / 200 * 120
rows = [
    ("quantum-watchdog recover (handoff, whole process)", ours_ms, rate(ours_ms), f"{ours_left:.0f} left"),
    ("incident hook, one call (XAUTOCLAIM COUNT 200)", seed_us / 1000, 200 / (seed_us / 1e6), "per call"),
    ("incident hook as deployed (200 per 2-min timer)", deployed_s * 1000, n / deployed_s, f"{deployed_s/3600:.1f} h for 100 000"),
    ("incident hook looped to cursor 0 (best case)", loop_ms, rate(loop_ms), f"{calls:.0f} calls, {loop_left:.0f} left"),
    ("floor: one server-side Lua loop, chunks of 1000", floor_ms, floor, f"{floor_n:.0f} moved"),
]
print("| approach | time | entries/s | vs floor | note |")
print("|---|---:|---:|---:|---|")
for name, ms, r, note in rows:
    t = f"{ms/1000/3600:.1f} h" if ms > 3.6e6 else f"{ms:.0f} ms" if ms >= 1 else f"{ms:.2f} ms"
    print(f"| {name} | {t} | {r:,.0f} | {floor / r:.2f}x | {note} |")
print(f"\nquantum-watchdog's own log: {line}")
PY

fi
if [[ $ONLY == *2* ]]; then
# ------------------------------------------------------------------------------------------
echo
echo "## 2. Hook latency (ExecStartPre=): wall time per call, median of 50"
HS=bench:hook
unit_sleep quantum-bench-hook
systemctl --user daemon-reload
systemctl --user start quantum-bench-hook.service
HP=$(mainpid quantum-bench-hook.service)
$R XGROUP CREATE $HS gh 0 MKSTREAM >/dev/null
for i in $(seq 10); do $R XADD $HS '*' n "$i" >/dev/null; done
$R XREADGROUP GROUP gh "hook-$HOST-$HP" COUNT 10 STREAMS $HS '>' >/dev/null
$R XACK $HS gh $($R XRANGE $HS - + | grep -E '^[0-9]+-[0-9]+$') >/dev/null
cat > "$B/hook.toml" <<C
mode = "enforce"
redis.url = "unix://$SOCK"
units = []
[[watch]]
unit = "quantum-bench-hook.service"
stream = "$HS"
group = "gh"
consumer = "hook-{hostname}-{pid}"
C
mkdir -p "$B/etc-quantum"; touch "$B/etc-quantum/testnet.env"
: > "$B/ours-hook"; : > "$B/seed-hook"
for _ in $(seq 50); do
    t=$(now_ns); QW "$B/hook.toml" recover --unit quantum-bench-hook.service 2>/dev/null; echo $(( ($(now_ns) - t) / 1000 )) >> "$B/ours-hook"
    t=$(now_ns); SOCK=$SOCK STREAM=$HS GROUP=gh TESTNET_FILE="$B/etc-quantum/testnet.env" LOG="$B/seed.log" "$QW_BENCH/seed-recover.sh"
    echo $(( ($(now_ns) - t) / 1000 )) >> "$B/seed-hook"
done
O=$(median < "$B/ours-hook"); Sd=$(median < "$B/seed-hook")
echo "| hook | median | p90 |"
echo "|---|---:|---:|"
printf '| quantum-watchdog recover --unit X | %.1f ms | %.1f ms |\n' "$(echo "$O/1000" | bc -l)" "$(echo "$(pct 90 < "$B/ours-hook")/1000" | bc -l)"
printf '| incident hook (bash + redis-cli) | %.1f ms | %.1f ms |\n' "$(echo "$Sd/1000" | bc -l)" "$(echo "$(pct 90 < "$B/seed-hook")/1000" | bc -l)"

fi
if [[ $ONLY == *3* ]]; then
# ------------------------------------------------------------------------------------------
echo
echo "## 3. Steady state: 100 bindings, 1 100 consumers, interval 1 s, ${STEADY} s"
{
    echo "mode = \"enforce\""
    echo "interval = \"1s\""
    echo "units = [\"quantum-s-*.service\"]"
    echo "redis.url = \"unix://$SOCK\""
    echo "[metrics]"
    echo "listen = \"unix:$B/metrics.sock\""
} > "$B/steady.toml"
for i in $(seq -w 0 99); do unit_sleep "quantum-s-$i"; done
systemctl --user daemon-reload
for i in $(seq -w 0 99); do systemctl --user start --no-block "quantum-s-$i.service"; done
sleep 2
for i in $(seq -w 0 99); do
    p=$(mainpid "quantum-s-$i.service")
    {
        echo "XADD bench:s:$i * n 1"
        echo "XGROUP CREATE bench:s:$i g \$"
        echo "XGROUP CREATECONSUMER bench:s:$i g s$i-$HOST-$p"
        for k in $(seq 0 9); do echo "XGROUP CREATECONSUMER bench:s:$i g other-$i-$k"; done
    } | $R >/dev/null
    printf '[[watch]]\nunit = "quantum-s-%s.service"\nstream = "bench:s:%s"\ngroup = "g"\nconsumer = "s%s-{hostname}-{pid}"\n' "$i" "$i" "$i" >> "$B/steady.toml"
done
QUANTUM_WATCHDOG_LOG=debug "$QW_BIN" --user --config "$B/steady.toml" agent 2>"$B/steady.log" &
AG=$!
sleep 5
scrape() { python3 - "$B/metrics.sock" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
t = time.perf_counter()
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
data = b""
while True:
    b = s.recv(65536)
    if not b: break
    data += b
print(f"{(time.perf_counter() - t) * 1e6:.0f} {len(data)}")
PY
}
cmds() { $R INFO commandstats | awk -F'[=,:]' '/^cmdstat_/ {s += $3} END {print s}'; }
rt() { scrape_body | awk '/^quantum_watchdog_redis_round_trips_total/ {print $2}'; }
scrape_body() { python3 - "$B/metrics.sock" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"GET /metrics HTTP/1.1\r\n\r\n")
d = b""
while True:
    b = s.recv(65536)
    if not b: break
    d += b
print(d.decode().split("\r\n\r\n", 1)[1])
PY
}
cyc() { scrape_body | awk '/^quantum_watchdog_cycle_duration_seconds_count/ {print $2, 0}'; }
read -r C0 _ < <(cyc); CMD0=$(cmds); RT0=$(rt)
read -r U0 S0 < <(awk '{print $14, $15}' /proc/$AG/stat)
T0=$(now_ns)
: > "$B/cycle-ms"
end=$((SECONDS + STEADY))
sleep "$STEADY"
read -r C1 _ < <(cyc); CMD1=$(cmds); RT1=$(rt)
read -r U1 S1 < <(awk '{print $14, $15}' /proc/$AG/stat)
EL=$(( ($(now_ns) - T0) / 1000000 ))
# Every cycle's own duration, from the agent's debug log.
sed -E 's/\x1b\[[0-9;]*m//g' "$B/steady.log" | sed -n 's/.*cycle \([0-9.]*\) ms: decide.*/\1/p' | tail -n +6 > "$B/cycle-ms"
HZ=$(getconf CLK_TCK)
HWM=$(awk '/VmHWM/ {print $2}' /proc/$AG/status)
: > "$B/scrapes"
for _ in $(seq 50); do scrape >> "$B/scrapes"; done
SIZE=$(tail -1 "$B/scrapes" | cut -d' ' -f2)
python3 - "$C0" "$C1" "$CMD0" "$CMD1" "$RT0" "$RT1" "$U0" "$S0" "$U1" "$S1" "$EL" "$HZ" "$HWM" "$B/cycle-ms" "$B/scrapes" "$SIZE" <<'PY'
import sys
a = sys.argv[1:]
c0, c1, cmd0, cmd1, rt0, rt1, u0, s0, u1, s1, el, hz, hwm = (float(x) for x in a[:13])
cyc = sorted(float(x) for x in open(a[13]) if x.strip())
sc = sorted(float(l.split()[0]) for l in open(a[14]) if l.strip())
q = lambda v, p: v[min(len(v) - 1, int(len(v) * p))]
cycles = c1 - c0
cpu = ((u1 - u0) + (s1 - s0)) / hz / (el / 1000) * 100
print("| figure | value | target |")
print("|---|---:|---|")
print(f"| cycles | {cycles:.0f} in {el/1000:.0f} s | |")
print(f"| CPU (of one core) | {cpu:.2f} % | < 1 % |")
print(f"| peak RSS (VmHWM) | {hwm/1024:.1f} MiB | < 20 MiB |")
print(f"| cycle time p50 / p99 | {q(cyc, .5):.2f} / {q(cyc, .99):.2f} ms | p99 < 10 ms |")
print(f"| Redis commands per cycle | {(cmd1 - cmd0 - 2) / cycles:.1f} | |")
print(f"| Redis round trips per cycle | {(rt1 - rt0) / cycles:.2f} | 1 |")
print(f"| /metrics scrape, median of 50 | {q(sc, .5)/1000:.2f} ms, {float(a[15])/1024:.0f} KiB | |")
PY
echo
echo "where a cycle's time goes (last cycle, debug log):"
grep -E "snapshot: systemd|cycle [0-9.]+ ms" "$B/steady.log" | tail -2 | sed -E 's/\x1b\[[0-9;]*m//g; s/^.*(snapshot|cycle)/  \1/'
kill $AG; wait $AG 2>/dev/null || true
for i in $(seq -w 0 99); do systemctl --user stop --no-block "quantum-s-$i.service"; done

fi
if [[ $ONLY == *4* ]]; then
# ------------------------------------------------------------------------------------------
echo
echo "## 4. Detection latency: SIGSTOP while entries arrive, to the new MainPID active"
DS=bench:det
printf '[Service]\nExecStart=%s unix://%s %s gd det %s/det.acks\n' "$QW_CONSUMER" "$SOCK" "$DS" "$B" > "$QW_UNIT_DIR/quantum-bench-det.service"
systemctl --user daemon-reload
systemctl --user start quantum-bench-det.service
cat > "$B/det.toml" <<C
mode = "enforce"
interval = "1s"
units = []
redis.url = "unix://$SOCK"
[defaults]
hung_after = "5s"
startup_grace = "2s"
confirm = 2
restart_budget = { max = 5, within = "30m" }
[[watch]]
unit = "quantum-bench-det.service"
stream = "$DS"
group = "gd"
consumer = "det-{hostname}-{pid}"
C
( while :; do $R XADD $DS '*' n 1 >/dev/null; sleep 0.1; done ) &
PROD=$!
"$QW_BIN" --user --config "$B/det.toml" agent 2>"$B/det.log" &
AG=$!
sleep 5
: > "$B/det-ms"
for _ in 1 2 3; do
    old=$(mainpid quantum-bench-det.service)
    kill -STOP "$old"; t=$(now_ns)
    while :; do
        p=$(mainpid quantum-bench-det.service)
        [ "$p" != "$old" ] && [ "$p" != 0 ] && [ "$(systemctl --user is-active quantum-bench-det.service)" = active ] && break
        sleep 0.05
    done
    ms_since "$t" >> "$B/det-ms"
    sleep 4
done
kill $AG $PROD 2>/dev/null || true
echo "| run | SIGSTOP → new MainPID active | bound (hung_after + 2 × interval + startup_grace) |"
echo "|---|---:|---:|"
n=0; while read -r v; do n=$((n + 1)); echo "| $n | $v ms | 9000 ms |"; done < "$B/det-ms"
fi
if [[ $ONLY == *5* ]]; then
# ------------------------------------------------------------------------------------------
IMPACT_N=${BENCH_IMPACT_N:-1000000}
IMPACT_STEADY=${BENCH_IMPACT_STEADY_SECS:-300}
echo
echo "## 5. Redis impact: $IMPACT_N entries pending on one consumer"
S=bench:impact
python3 - "$S" "$IMPACT_N" <<'PY' | $R --pipe >/dev/null
import sys
s, n = sys.argv[1], int(sys.argv[2])
out = sys.stdout
for i in range(n):
    v = str(i)
    out.write(f"*5\r\n$4\r\nXADD\r\n${len(s)}\r\n{s}\r\n$1\r\n*\r\n$1\r\nn\r\n${len(v)}\r\n{v}\r\n")
PY
unit_sleep quantum-bench-impact
systemctl --user daemon-reload
systemctl --user start quantum-bench-impact.service
LIVE=$(mainpid quantum-bench-impact.service)
DEAD=$(dead_pid)
for g in g-ours g-prev; do
    $R XGROUP CREATE $S $g 0 >/dev/null
    $R XREADGROUP GROUP $g "impact-$HOST-$DEAD" COUNT "$IMPACT_N" STREAMS $S '>' >/dev/null
done
$R XGROUP CREATECONSUMER $S g-ours "impact-$HOST-$LIVE" >/dev/null
cat > "$B/impact.toml" <<C
mode = "enforce"
interval = "1s"
redis.url = "unix://$SOCK"
redis.timeout = "5s"
units = []
metrics.listen = ""
[[watch]]
unit = "quantum-bench-impact.service"
stream = "$S"
group = "g-ours"
consumer = "impact-{hostname}-{pid}"
C
$R CONFIG SET slowlog-log-slower-than 0 >/dev/null
$R CONFIG SET slowlog-max-len 2000000 >/dev/null
lat_start() { rm -f "$B/stop"; python3 "$QW_BENCH/latency.py" "$SOCK" "$B/stop" "$B/lat-$1" & LP=$!; }
lat_end() { touch "$B/stop"; wait $LP; }
slow() { python3 "$QW_BENCH/slowlog.py" "$SOCK" "$1"; }
$R SLOWLOG RESET >/dev/null; lat_start idle; sleep 10; lat_end
$R SLOWLOG RESET >/dev/null; lat_start ours
t=$(now_ns); QW "$B/impact.toml" recover 2>"$B/impact-recover.log"; OURS_MS=$(ms_since "$t")
lat_end; OURS_SLOW=$(slow quantum-watchdog)
OURS_LEFT=$($R XPENDING $S g-ours - + 1 "impact-$HOST-$DEAD" | grep -c . || true)
$R SLOWLOG RESET >/dev/null; lat_start prev
PREV=$(python3 "$QW_BENCH/previous.py" "$SOCK" $S g-prev "impact-$HOST-$DEAD" previous-target)
lat_end; PREV_SLOW=$(slow previous-approach)
# Steady state: the backlog now pending on the live consumer, the agent cycling (observe).
sed -i 's/^mode = "enforce"/mode = "observe"/' "$B/impact.toml"
$R SLOWLOG RESET >/dev/null; lat_start steady
"$QW_BIN" --user --config "$B/impact.toml" agent 2>"$B/impact-agent.log" &
AG=$!
sleep "$IMPACT_STEADY"
kill $AG; wait $AG 2>/dev/null || true
lat_end; STEADY_SLOW=$(slow quantum-watchdog)
$R CONFIG SET slowlog-log-slower-than 10000 >/dev/null
OURS_LINE=$(sed -E 's/\x1b\[[0-9;]*m//g' "$B/impact-recover.log" | grep -o 'claimed [0-9]* to [^ ]* in [0-9]* ms, [0-9]*/s' | head -1 || true)
python3 - "$IMPACT_N" "$IMPACT_STEADY" "$OURS_MS" "$OURS_LEFT" "$OURS_SLOW" "$PREV" "$PREV_SLOW" "$STEADY_SLOW" "$B" "$OURS_LINE" <<'PY'
import sys
n, steady = int(sys.argv[1]), int(sys.argv[2])
ours_ms, ours_left = float(sys.argv[3]), sys.argv[4]
ours_slow = sys.argv[5].split()
prev_moved, prev_ms = (float(x) for x in sys.argv[6].split())
prev_slow = sys.argv[7].split()
steady_slow = sys.argv[8].split()
b, line = sys.argv[9], sys.argv[10]
lat = lambda k: open(f"{b}/lat-{k}").read().split()
def row(name, slow, k, rate):
    c, p50, p99, mx = lat(k)
    longest = "-" if slow is None else f"{int(slow[0]) / 1000:.2f} ms"
    over = "-" if slow is None else slow[1]
    print(f"| {name} | {longest} | {over} | {p50} / {p99} / {mx} ms ({c} calls) | {rate} |")
print("| phase | longest server-side call of ours | calls ≥ 5 ms | concurrent client p50 / p99 / max | reclaim |")
print("|---|---:|---:|---|---:|")
row("no agent (baseline, 10 s)", None, "idle", "")
row(f"quantum-watchdog recover: reclaim {n:,} (whole process)", ours_slow, "ours", f"{n / ours_ms * 1000:,.0f}/s, {ours_left} left")
row("previous approach: 1 000 per script, 8 scripts a round trip", prev_slow, "prev", f"{prev_moved / prev_ms * 1000:,.0f}/s")
row(f"steady state: agent cycling, {n:,} pending, {steady} s", steady_slow, "steady", "")
print(f"\nquantum-watchdog's own log: {line}")
PY
systemctl --user stop quantum-bench-impact.service
fi
if [[ $ONLY == *6* ]]; then
# ------------------------------------------------------------------------------------------
DEPLOY=${BENCH_DEPLOY_SECS:-60}
echo
echo "## 6. Deployments: 100 bindings, interval 1 s, ${DEPLOY} s each; the Sentinel failover gap"
D=$B/deploy; mkdir -p "$D"
freeport() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# A CA and a server certificate for 127.0.0.1 (openssl), as a production TLS setup has.
(cd "$D" && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
    -out ca.pem -days 2 -subj /CN=bench-ca -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
 printf 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n' > srv.ext
 openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout srv.key -out srv.csr \
    -subj /CN=127.0.0.1 2>/dev/null
 openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out srv.pem -days 2 \
    -extfile srv.ext 2>/dev/null)
TCP=$(freeport); TLS=$(freeport)
redis-server --port "$TCP" --tls-port "$TLS" --tls-cert-file "$D/srv.pem" --tls-key-file "$D/srv.key" \
    --tls-ca-cert-file "$D/ca.pem" --tls-auth-clients no --save '' --appendonly no --dir "$D" \
    --daemonize yes --pidfile "$D/single.pid" --logfile "$D/single.log" >/dev/null
NODES=()
for i in 0 1 2; do
    p=$(freeport); bus=$(freeport); mkdir -p "$D/n$i"
    redis-server --port "$p" --cluster-enabled yes --cluster-port "$bus" \
        --cluster-config-file "$D/n$i/nodes.conf" --save '' --appendonly no --dir "$D/n$i" \
        --daemonize yes --pidfile "$D/n$i/pid" --logfile "$D/n$i/log" >/dev/null
    NODES+=("127.0.0.1:$p")
done
sleep 0.5
redis-cli -p "$TCP" ping >/dev/null
redis-cli --cluster create "${NODES[@]}" --cluster-replicas 0 --cluster-yes >/dev/null
for _ in $(seq 100); do redis-cli -p "${NODES[0]#*:}" cluster info | grep -q cluster_state:ok && break; sleep 0.1; done
for i in $(seq -w 0 99); do unit_sleep "quantum-d-$i"; done
systemctl --user daemon-reload
for i in $(seq -w 0 99); do systemctl --user start --no-block "quantum-d-$i.service"; done
sleep 2
: > "$D/watches"
for i in $(seq -w 0 99); do
    p=$(mainpid "quantum-d-$i.service")
    {
        echo "XADD bench:d:$i * n 1"
        echo "XGROUP CREATE bench:d:$i g \$"
        echo "XGROUP CREATECONSUMER bench:d:$i g d$i-$HOST-$p"
        for k in $(seq 0 9); do echo "XGROUP CREATECONSUMER bench:d:$i g other-$i-$k"; done
    } > "$D/seed-$i"
    redis-cli -p "$TCP" < "$D/seed-$i" >/dev/null
    redis-cli -c -p "${NODES[0]#*:}" < "$D/seed-$i" >/dev/null
    printf '[[watch]]\nunit = "quantum-d-%s.service"\nstream = "bench:d:%s"\ngroup = "g"\nconsumer = "d%s-{hostname}-{pid}"\n' "$i" "$i" "$i" >> "$D/watches"
done
quoted() { local IFS=,; local a=(); for n in "$@"; do a+=("\"$n\""); done; echo "${a[*]}"; }
# run_variant NAME REDIS-LINES: the agent for DEPLOY s; cycle and Redis-read times from its log.
run_variant() {
    { echo 'mode = "observe"'; echo 'interval = "1s"'; echo 'units = ["quantum-d-*.service"]'
      echo 'metrics.listen = ""'; echo "$2"; cat "$D/watches"; } > "$D/$1.toml"
    QUANTUM_WATCHDOG_LOG=debug "$QW_BIN" --user --config "$D/$1.toml" agent 2>"$D/$1.log" &
    local ag=$!
    sleep $((DEPLOY + 3))
    kill $ag; wait $ag 2>/dev/null || true
    local cyc red
    cyc=$(sed -n 's/.*cycle \([0-9.]*\) ms: decide.*/\1/p' "$D/$1.log" | tail -n +4)
    red=$(sed -n 's/.*redis \([0-9.]*\) ms (read).*/\1/p' "$D/$1.log" | tail -n +4)
    local unread; unread=$(grep -c '(not read)' "$D/$1.log" || true)
    echo "| $1 | $(echo "$cyc" | pct 50) / $(echo "$cyc" | pct 99) ms | $(echo "$red" | pct 50) / $(echo "$red" | pct 99) ms | $(echo "$cyc" | grep -c .) | $unread |"
}
echo "| deployment | cycle p50 / p99 | Redis read p50 / p99 | cycles | cycles not read |"
echo "|---|---:|---:|---:|---:|"
run_variant "standalone TCP" "redis.url = \"redis://127.0.0.1:$TCP\""
run_variant "standalone TLS" "redis.url = \"rediss://127.0.0.1:$TLS\"
redis.tls.ca_file = \"$D/ca.pem\""
run_variant "cluster of 3" "redis.cluster = [$(quoted "${NODES[@]}")]"
for i in $(seq -w 0 99); do systemctl --user stop --no-block "quantum-d-$i.service"; done
redis-cli -p "$TCP" shutdown nosave >/dev/null 2>&1 || true
for n in "${NODES[@]}"; do redis-cli -p "${n#*:}" shutdown nosave >/dev/null 2>&1 || true; done

# Sentinel: one master, one replica, three Sentinels; three failovers under a running agent.
M=$(freeport); RP=$(freeport)
redis-server --port "$M" --save '' --appendonly no --dir "$D" --daemonize yes \
    --pidfile "$D/m.pid" --logfile "$D/m.log" >/dev/null
redis-server --port "$RP" --replicaof 127.0.0.1 "$M" --save '' --appendonly no --dir "$D" \
    --daemonize yes --pidfile "$D/r.pid" --logfile "$D/r.log" >/dev/null
SENT=()
for i in 0 1 2; do
    p=$(freeport)
    printf 'port %s\nbind 127.0.0.1\ndir %s\nsentinel monitor mymaster 127.0.0.1 %s 2\nsentinel down-after-milliseconds mymaster 2000\nsentinel failover-timeout mymaster 5000\n' \
        "$p" "$D" "$M" > "$D/s$i.conf"
    redis-server "$D/s$i.conf" --sentinel --daemonize yes --pidfile "$D/s$i.pid" --logfile "$D/s$i.log" >/dev/null
    SENT+=("127.0.0.1:$p")
done
S0=${SENT[0]#*:}
for _ in $(seq 300); do
    [ "$(redis-cli -p "$S0" sentinel replicas mymaster 2>/dev/null | grep -c '^name$')" = 1 ] &&
        [ "$(redis-cli -p "$S0" sentinel sentinels mymaster 2>/dev/null | grep -c '^name$')" = 2 ] && break
    sleep 0.1
done
cat > "$D/sentinel.toml" <<C
mode = "observe"
interval = "1s"
units = []
metrics.listen = ""
redis.sentinel = { master = "mymaster", nodes = [$(quoted "${SENT[@]}")] }
[[watch]]
unit = "quantum-d-00.service"
stream = "bench:sentinel"
group = "g"
consumer = "d00-{hostname}-{pid}"
C
redis-cli -p "$M" XGROUP CREATE bench:sentinel g '$' MKSTREAM >/dev/null
QUANTUM_WATCHDOG_LOG=debug "$QW_BIN" --user --config "$D/sentinel.toml" agent 2>"$D/sentinel.log" &
AG=$!
sleep 3
echo
echo "| failover | SENTINEL FAILOVER → a Sentinel names the new master | last read of the old master → first of the new |"
echo "|---|---:|---:|"
for n in 1 2 3; do
    old=$(redis-cli -p "$S0" sentinel get-master-addr-by-name mymaster | paste -sd:)
    redis-cli -p "${old#*:}" WAIT 1 5000 >/dev/null
    t=$(now_ns)
    redis-cli -p "$S0" sentinel failover mymaster >/dev/null
    for _ in $(seq 300); do
        new=$(redis-cli -p "$S0" sentinel get-master-addr-by-name mymaster | paste -sd:)
        [ "$new" != "$old" ] && break; sleep 0.02
    done
    named=$(ms_since "$t")
    for _ in $(seq 300); do grep -q "is now served by $new" "$D/sentinel.log" && break; sleep 0.1; done
    sleep 3
    gap=$(python3 - "$D/sentinel.log" "$new" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
def at(l):
    h, m, s = l.split()[0].split("T")[1].rstrip("Z").split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)
sw = max(i for i, l in enumerate(lines) if f"is now served by {sys.argv[2]}" in l)
old = [at(l) for l in lines[:sw] if "(read)" in l][-1]
new = [at(l) for l in lines[sw:] if "(read)" in l][0]
print(f"{(new - old) * 1000:.0f}")
PY
)
    echo "| $n ($old → $new) | $named ms | $gap ms |"
    # The demoted master resyncs as a replica before the next round.
    for _ in $(seq 300); do redis-cli -p "${old#*:}" info replication | grep -q master_link_status:up && break; sleep 0.1; done
    sleep 2
done
kill $AG; wait $AG 2>/dev/null || true
for f in "$D"/s?.pid "$D/m.pid" "$D/r.pid"; do kill "$(cat "$f")" 2>/dev/null || true; done
fi

# ------------------------------------------------------------------------------------------
if [[ $ONLY == *7* ]]; then
echo
EXEC_SECS=${BENCH_EXEC_SECS:-60}
echo "## 7. quantum-watchdog exec: its cost, and detection by systemd's watchdog vs by the agent"
# Each unit its own stream and group, as each service of the pipeline has.
for u in plain wrapped; do $R XGROUP CREATE "bench:exec:$u" g 0 MKSTREAM >/dev/null; done
cat > "$B/exec.toml" <<T
mode = "enforce"
interval = "1s"
units = ["bench-*.service"]
redis.url = "unix://$SOCK"
[defaults]
hung_after = "5s"
startup_grace = "2s"
confirm = 2
[[watch]]
unit = "bench-plain.service"
stream = "bench:exec:plain"
group = "g"
consumer = "plain-{hostname}-{pid}"
[[watch]]
unit = "bench-exec.service"
stream = "bench:exec:wrapped"
group = "g"
consumer = "wrapped-{hostname}-{pid}"
T
consumer_cmd() { echo "$QW_CONSUMER unix://$SOCK bench:exec:$1 g $1 $B/$1.acks"; }
printf '[Service]\nEnvironment=QW_WORK_MS=5\nExecStart=%s\n' "$(consumer_cmd plain)" > "$QW_UNIT_DIR/bench-plain.service"
printf '[Service]\nType=notify\nNotifyAccess=main\nWatchdogSec=2s\nRestart=on-failure\nRestartSec=1\nEnvironment=QW_WORK_MS=5\nExecStart=%s --user --config %s exec -- %s\n' \
    "$QW_BIN" "$B/exec.toml" "$(consumer_cmd wrapped)" > "$QW_UNIT_DIR/bench-exec.service"
systemctl --user daemon-reload
# A steady producer, 50 entries a second.
( while [ ! -e "$B/exec.stop" ]; do for u in plain wrapped; do $R XADD "bench:exec:$u" '*' n 1 >/dev/null; done; sleep 0.04; done ) &
PR=$!
t=$(now_ns); systemctl --user start bench-plain.service; plain_start=$(ms_since "$t")
t=$(now_ns); systemctl --user start bench-exec.service; exec_start=$(ms_since "$t")
"$QW_BIN" --user --config "$B/exec.toml" agent 2>"$B/exec-agent.log" &
AGP=$!
sleep 3
W=$(mainpid bench-exec.service)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
anon() { awk '/^RssAnon/ {print $2}' "/proc/$1/status"; }
pss() { awk '/^Pss:/ {print $2}' "/proc/$1/smaps_rollup"; }
c0=$(ticks "$W"); a0=$(ticks "$AGP"); t=$(now_ns)
sleep "$EXEC_SECS"
secs=$(( ($(now_ns) - t) / 1000000 ))
hz=$(getconf CLK_TCK)
pc() { echo "scale=3; ($2 - $1) * 100000 / $hz / $secs" | bc; }
echo
echo "| over ${EXEC_SECS} s at interval 1 s | CPU (% of a core) | RSS | of it anonymous | PSS (shared file pages divided among their users) |"
echo "|---|---|---|---|---|"
for p in "exec (1 binding):$W" "agent (2 bindings, for reference):$AGP"; do
    n=${p%%:*}; q=${p##*:}
    c=$c0; [ "$q" = "$AGP" ] && c=$a0
    echo "| quantum-watchdog $n | $(pc "$c" "$(ticks "$q")") | $(rss "$q") KiB | $(anon "$q") KiB | $(pss "$q") KiB |"
done
echo
echo "| systemctl start | plain consumer (Type=simple) | under exec (Type=notify, READY once its consumer is listed) |"
echo "|---|---|---|"
echo "| time to return | $plain_start ms | $exec_start ms |"
# Detection: SIGSTOP → a new process of the unit consuming (its consumer listed, reading).
detect() { # prefix pid-to-stop
    local t
    kill -STOP "$2"; t=$(now_ns)
    for _ in $(seq 1200); do
        $R XINFO CONSUMERS "bench:exec:$1" g | grep -E "^$1-$HOST-[0-9]+$" | grep -vqx "$1-$HOST-$2" && break
        sleep 0.05
    done
    ms_since "$t"
}
child_of() { awk '{print $1}' "/proc/$1/task/$1/children"; }
d_agent=$(detect plain "$(mainpid bench-plain.service)")
d_exec=$(detect wrapped "$(child_of "$(mainpid bench-exec.service)")")
echo
echo "| SIGSTOP → a new process consuming (hung_after 5 s, confirm 2, interval 1 s) | ms |"
echo "|---|---|"
echo "| the agent restarts the plain unit over D-Bus | $d_agent |"
echo "| systemd's watchdog restarts the unit under exec (WatchdogSec=2s) | $d_exec |"
touch "$B/exec.stop"; wait $PR 2>/dev/null || true
kill $AGP; wait $AGP 2>/dev/null || true
systemctl --user stop bench-plain.service bench-exec.service
fi

if [[ $ONLY == *8* ]]; then
# ------------------------------------------------------------------------------------------
SCALE_SECS=${BENCH_SCALE_SECS:-60}
echo
echo "## 8. Scale: 10 / 100 / 1 000 bindings, 11 consumers a group, units running, observe, ${SCALE_SECS} s each"
# scale_run BINARY LABEL N INTERVAL: one row of the table.
scale_run() {
    local bin=$1 label=$2 n=$3 iv=$4 i p cmd0
    {
        echo "mode = \"observe\""
        echo "interval = \"$iv\""
        echo "units = [\"quantum-z-*.service\"]"
        echo "redis.url = \"unix://$SOCK\""
        echo "[metrics]"
        echo "listen = \"unix:$B/scale.sock\""
    } > "$B/scale.toml"
    for i in $(seq -w 0 $((n - 1))); do
        [ -e "$QW_UNIT_DIR/quantum-z-$i.service" ] || unit_sleep "quantum-z-$i"
    done
    systemctl --user daemon-reload
    for i in $(seq -w 0 $((n - 1))); do systemctl --user start --no-block "quantum-z-$i.service"; done
    sleep 3
    for i in $(seq -w 0 $((n - 1))); do
        p=$(mainpid "quantum-z-$i.service")
        {
            echo "DEL bench:z:$i"
            echo "XADD bench:z:$i * n 1"
            echo "XGROUP CREATE bench:z:$i g \$"
            echo "XGROUP CREATECONSUMER bench:z:$i g z$i-$HOST-$p"
            for k in $(seq 0 9); do echo "XGROUP CREATECONSUMER bench:z:$i g other-$i-$k"; done
        } | $R >/dev/null
        printf '[[watch]]\nunit = "quantum-z-%s.service"\nstream = "bench:z:%s"\ngroup = "g"\nconsumer = "z%s-{hostname}-{pid}"\n' "$i" "$i" "$i" >> "$B/scale.toml"
    done
    $R CONFIG RESETSTAT >/dev/null
    QUANTUM_WATCHDOG_LOG=debug "$bin" --user --config "$B/scale.toml" agent 2>"$B/scale.log" &
    local ag=$! t0 u0 s0 u1 s1 el cmd hwm rt f0 f1 peak
    sleep 5
    # The start's peak (the first look reads every unit and every consumer), then the peak
    # from here on, without it (clear_refs 5).
    local start_peak
    start_peak=$(awk '/VmHWM/ {print $2}' /proc/$ag/status)
    echo 5 > /proc/$ag/clear_refs 2>/dev/null || true
    read -r f0 u0 s0 < <(awk '{print $10, $14, $15}' /proc/$ag/stat)
    local c0 c1
    c0=$(grep -c "ms: decide" "$B/scale.log" || true)
    cmd0=$($R INFO commandstats | awk -F'[=,:]' '/^cmdstat_/ {s += $3} END {print s}')
    t0=$(now_ns)
    if [ -n "${BENCH_PERF:-}" ]; then
        # A profile of the agent meanwhile (perf record; `perf report -i $BENCH_PERF`).
        perf record -q --call-graph dwarf,16384 -F ${BENCH_PERF_HZ:-499} -p "$ag" -o "$BENCH_PERF" -- sleep "$SCALE_SECS" 2>/dev/null || sleep "$SCALE_SECS"
    else
        sleep "$SCALE_SECS"
    fi
    read -r f1 u1 s1 < <(awk '{print $10, $14, $15}' /proc/$ag/stat)
    el=$(( ($(now_ns) - t0) / 1000000 ))
    c1=$(grep -c "ms: decide" "$B/scale.log" || true)
    cmd1=$($R INFO commandstats | awk -F'[=,:]' '/^cmdstat_/ {s += $3} END {print s}')
    # The server's own time for the agent's commands (commandstats usec), a cycle.
    srv=$($R INFO commandstats | awk -F'[=,:]' '/^cmdstat_/ {s += $5} END {print s}')
    hwm=$(awk '/VmRSS/ {print $2}' /proc/$ag/status)
    anon=$(awk '/RssAnon/ {print $2}' /proc/$ag/status)
    peak=$(awk '/VmHWM/ {print $2}' /proc/$ag/status)
    kill $ag; wait $ag 2>/dev/null || true
    # Each row's agent log (debug: every cycle's times) is kept for a closer look.
    mkdir -p "$QW_BENCH/../target/bench-logs"
    cp "$B/scale.log" "$QW_BENCH/../target/bench-logs/scale-$label-$n-$iv.log"
    sed -E 's/\x1b\[[0-9;]*m//g' "$B/scale.log" | sed -n 's/.*cycle \([0-9.]*\) ms: decide.*/\1/p' | tail -n +6 > "$B/scale-ms"
    python3 - "$label" "$n" "$iv" "$u0" "$s0" "$u1" "$s1" "$el" "$(getconf CLK_TCK)" "$hwm" "$c0" "$c1" "$cmd0" "$cmd1" "$B/scale-ms" "$anon" "$srv" "$(grep -c 'ms: decide' "$B/scale.log" || true)" "$peak" "$f0" "$f1" "$start_peak" <<'PY'
import sys
a = sys.argv[1:]
label, n, iv = a[0], a[1], a[2]
u0, s0, u1, s1, el, hz, rss, c0, c1, cmd0, cmd1 = (float(x) for x in a[3:14])
cyc = sorted(float(x) for x in open(a[14]) if x.strip())
q = lambda v, p: v[min(len(v) - 1, int(len(v) * p))]
cycles = max(c1 - c0, 1)
cpu = ((u1 - u0) + (s1 - s0)) / hz / (el / 1000) * 100
anon = float(a[15])
srv = float(a[16]) / max(float(a[17]), 1) / 1000
peak, f0, f1, start = (float(x) for x in a[18:22])
print(f"| {label} | {n} | {iv} | {q(cyc, .5):.2f} / {q(cyc, .99):.2f} ms | {cpu:.2f} % | {rss/1024:.1f} MiB ({anon/1024:.1f}) | {peak/1024:.1f} MiB | {start/1024:.1f} MiB | {(f1 - f0) / cycles:.0f} | {(cmd1 - cmd0) / cycles:.0f} | {srv:.2f} ms |")
PY
    for i in $(seq -w 0 $((n - 1))); do systemctl --user stop --no-block "quantum-z-$i.service"; done
}
echo "| binary | bindings | interval | cycle p50 / p99 | CPU (of one core) | RSS between looks (of it anonymous) | peak RSS in the run (VmHWM) | peak RSS of the start (the first look) | page faults a cycle | Redis commands a cycle (one round trip) | server time a cycle |"
echo "|---|---:|---|---|---:|---:|---:|---:|---:|---:|---:|"
# The baseline (QW_BIN_BASE, an earlier build) beside this one, size by size.
IFS=, read -r -a SIZES <<< "${BENCH_SCALE_SIZES:-10 1s,100 1s,1000 1s,1000 5s}"
for sz in "${SIZES[@]}"; do
    [ -n "${QW_BIN_BASE:-}" ] && scale_run "$QW_BIN_BASE" baseline $sz
    scale_run "$QW_BIN" this $sz
done
echo
echo "where the last cycle's time went (this binary, the last size):"
grep -E "snapshot: systemd|cycle [0-9.]+ ms" "$B/scale.log" | tail -2 | sed -E 's/\x1b\[[0-9;]*m//g; s/^.*(snapshot|cycle)/  \1/'
echo "the slowest cycle (after the first five):"
sed -E 's/\x1b\[[0-9;]*m//g' "$B/scale.log" | grep -E "snapshot: systemd|cycle [0-9.]+ ms" | awk '
    /snapshot:/ { snap = $0; next }
    { n++; ms = $0; sub(/.*cycle /, "", ms); sub(/ ms.*/, "", ms)
      if (n > 5 && ms + 0 > max) { max = ms + 0; line = snap "\n" $0 } }
    END { print line }' | sed -E 's/^.*(snapshot|cycle)/  \1/'
echo "  looks in which no systemd signal came and the unit list was reused: $(grep -c 'no signal since the last list' "$B/scale.log" || true) of $(grep -c 'ms: decide' "$B/scale.log" || true)"
fi

if [[ $ONLY == *9* ]]; then
# ------------------------------------------------------------------------------------------
FLEET_SECS=${BENCH_FLEET_SECS:-30}
echo
echo "## 9. Fleet: 100 hosts' heartbeats against one Redis, ${FLEET_SECS} s a row"
# 100 simulated hosts beat every second with the agent's own script, as its agent calls it
# (beside an earlier build's script with QW_BENCH_BASE_SRC=<its source tree>).
"$QW_BENCH/fleet.sh" "$SOCK" "$FLEET_SECS"
fi
