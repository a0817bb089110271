#!/bin/bash
# Runs on the host under tests/support/nspawn-boot.sh: `run CMD` executes CMD inside a booted
# Debian 12 container (systemd as PID 1), where /debs holds the package and the test consumer.
# Checks only what an operator would see: systemctl, journalctl, redis-cli, ps.
set -u
. "$(dirname "$0")/lib.sh"
T0=$SECONDS

DEB=$(ls "$QW_DEBS"/quantum-watchdog_*.deb | head -1)
echo "# package: $(basename "$DEB"), $(du -k "$DEB" | cut -f1) KiB"
check "redis-server is running in the container" wait_for 20 active redis-server.service

# --- 1. install: enabled, running, STATUS shown; timer installed but disabled; oneshot not run
run apt-get install -y -q "/debs/$(basename "$DEB")" >/tmp/qw-apt.log 2>&1 || { bad "apt install"; tail -20 /tmp/qw-apt.log; }
check "quantum-watchdog.service is enabled" test "$(run systemctl is-enabled quantum-watchdog.service)" = enabled
check "quantum-watchdog.service is active (running)" wait_for 15 active quantum-watchdog.service
status_line() { run systemctl status quantum-watchdog.service --no-pager 2>/dev/null | grep -q 'Status: "observe:'; }
check "systemctl status shows its STATUS line" wait_for 10 status_line
run systemctl status quantum-watchdog.service --no-pager 2>/dev/null | sed -n '1,6p' | sed 's/^/#   /'
check "the timer is installed" run test -f /lib/systemd/system/quantum-stream-recover.timer
check "the timer is disabled" test "$(run systemctl is-enabled quantum-stream-recover.timer)" = disabled
check "the timer is not active" test "$(run systemctl is-active quantum-stream-recover.timer)" = inactive
check "the oneshot did not run at install" test "$(run systemctl show -p InvocationID --value quantum-stream-recover.service)" = ""
check "debian/tests/smoke (the autopkgtest) passes" run sh /debs/smoke
AGENT=$(pid_of quantum-watchdog.service)
check "the agent runs as its own unprivileged user" test "$(run ps -o user= -p "$AGENT" | tr -d ' ')" = quantum-watchdog
check "the example config is observe mode" run grep -q '^mode = "observe"' /etc/quantum-watchdog/config.toml
check "check-config accepts the shipped configuration" bash -c "run quantum-watchdog check-config >/dev/null"
# `quantum-watchdog exec` becomes the small wrapper the package ships in /usr/libexec.
check "the exec wrapper is installed" run test -x /usr/libexec/quantum-watchdog/quantum-watchdog-exec
wrapped_by() { run quantum-watchdog exec --unit quantum-none.service --ready-timeout 1s -- sh -c 'readlink /proc/$PPID/exe' 2>/dev/null | tr -d '\r'; }
check "quantum-watchdog exec runs its command under the wrapper" test "$(wrapped_by)" = /usr/libexec/quantum-watchdog/quantum-watchdog-exec

# --- 2. two fake quantum-* units (one hangs) and one unit outside the pattern; enforce by drop-in
consumer_unit quantum-good test:good good
consumer_unit quantum-hang test:hang hang
consumer_unit other-consumer test:other other
test_config "" quantum-good quantum-hang other-consumer
run systemctl daemon-reload
run systemctl start quantum-good.service quantum-hang.service other-consumer.service
check "the test units run" wait_for 10 active quantum-hang.service
HOST=$(run hostname)
for s in good hang other; do
    for _ in $(seq 50); do R XADD "test:$s" '*' n 0 >/dev/null; sleep 0.1; R XINFO CONSUMERS "test:$s" g 2>/dev/null | grep -q "$s-" && break; done
done
check "reload switches to enforce" run systemctl reload quantum-watchdog.service
enforce_line() { run systemctl status quantum-watchdog.service --no-pager 2>/dev/null | grep -q 'Status: "enforce:'; }
check "status line says enforce" wait_for 10 enforce_line

# PID liveness from inside the sandbox (ProtectProc=invisible): a consumer
# named after a dead PID is deleted; so is one named after a live process of another user
# outside the unit (EPERM = alive, and systemd says the PID runs in redis-server.service: the
# PID was reused).
DEAD=$(run sh -c 'true & p=$!; wait; echo $p')
REDISPID=$(pid_of redis-server.service)
R XGROUP CREATECONSUMER test:good g "good-$HOST-$DEAD" >/dev/null
R XGROUP CREATECONSUMER test:good g "good-$HOST-$REDISPID" >/dev/null
gone() { ! R XINFO CONSUMERS test:good g | grep -qx "good-$HOST-$DEAD"; }
check "a consumer of a dead PID is deleted (kill(pid, 0) works in the sandbox)" wait_for 15 gone
reused_gone() { ! R XINFO CONSUMERS test:good g | grep -qx "good-$HOST-$REDISPID"; }
check "a consumer named after a live process outside the unit is dead (PID reused)" wait_for 15 reused_gone
reused_logged() { run journalctl -u quantum-watchdog.service -o cat --no-pager | grep -q "PID $REDISPID is a process of redis-server.service"; }
check "the journal says whose process the PID is" wait_for 5 reused_logged

HANG=$(pid_of quantum-hang.service)
run kill -STOP "$HANG"
T_STOP=$SECONDS
for i in $(seq 1 10); do R XADD test:hang '*' n "$i" >/dev/null; done
restarted() { local p; p=$(pid_of quantum-hang.service); [ "$p" != "$HANG" ] && [ "$p" != 0 ] && active quantum-hang.service; }
check "the hung unit is restarted by the agent" wait_for 30 restarted
echo "# restarted $((SECONDS - T_STOP)) s after SIGSTOP (hung_after 3s, interval 1s, confirm 2)"
journal_restart() { run journalctl -u quantum-watchdog.service ACTION=restart UNIT=quantum-hang.service -o cat --no-pager | grep -q "restarting quantum-hang.service"; }
check "journalctl -u quantum-watchdog ACTION=restart shows it" wait_for 5 journal_restart
run journalctl -u quantum-watchdog.service ACTION=restart UNIT=quantum-hang.service -o cat --no-pager | head -2 | cut -c1-200 | sed 's/^/#   /'
# The unit's own story: `journalctl -u quantum-hang` has only systemd's lines; history has ours.
story() { run quantum-watchdog history quantum-hang 2>&1; }
told() { story | grep -q 'agent    restart     restarting quantum-hang.service' && story | grep -q 'systemd .*Started' && story | grep -q 'agent    verdict .*-> hung'; }
check "quantum-watchdog history tells the hang, the restart and the new start" wait_for 10 told
story | tail -6 | cut -c1-160 | sed 's/^/#   /'
check "history of a unit needs the journal: a stranger is told why" bash -c 'run setpriv --reuid=nobody --regid=nogroup --clear-groups quantum-watchdog history quantum-hang 2>&1 | grep -q "systemd-journal"'
check "the restart went through polkit as the unprivileged user" test "$(run ps -o user= -p "$(pid_of quantum-watchdog.service)" | tr -d ' ')" = quantum-watchdog
check "quantum-good was left alone" test "$(run systemctl show -p NRestarts --value quantum-good.service)" = 0

# --- 2b. the textfile, through the package's link in node_exporter's directory, without warnings
textfile() { run test -s /var/lib/prometheus/node-exporter/quantum-watchdog.prom; }
check "the agent's textfile is where node_exporter reads" wait_for 15 textfile
check "no textfile_dir warning in the journal" bash -c '! run journalctl -u quantum-watchdog.service -o cat --no-pager | grep -q "textfile_dir"'

# --- 2c. restart budget and MainPID history survive agent restarts (RuntimeDirectoryPreserve=)
remembered() { # the agent's state still holds quantum-hang's restart and its old MainPID
    local st; st=$(run cat /run/quantum-watchdog/agent/state.json 2>/dev/null)
    echo "$st" | grep -q "\"previous_pids\":\[[0-9,]*$HANG[],]" &&
        run quantum-watchdog status --json 2>/dev/null | tr -d ' \n' | grep -q '"unit":"quantum-hang.service"[^}]*"restarts_in_window":1'
}
check "the state holds the restart and the earlier MainPID" wait_for 10 remembered
run systemctl restart quantum-watchdog.service
check "after systemctl restart quantum-watchdog, it still does" wait_for 15 remembered
AGENT2=$(pid_of quantum-watchdog.service)
run kill -KILL "$AGENT2"
back() { local p; p=$(pid_of quantum-watchdog.service); [ "$p" != "$AGENT2" ] && [ "$p" != 0 ] && active quantum-watchdog.service; }
check "after SIGKILL the agent is back (Restart=always)" wait_for 20 back
check "and it still remembers both" wait_for 15 remembered

# --- 3. outside the pattern: polkit denies, the agent logs it and carries on
OTHER=$(pid_of other-consumer.service)
run kill -STOP "$OTHER"
for i in $(seq 1 10); do R XADD test:other '*' n "$i" >/dev/null; done
denied() { run journalctl -u quantum-watchdog.service ACTION=restart UNIT=other-consumer.service -o cat --no-pager | grep -qiE "denied|authoriz|authentic"; }
check "restarting a unit outside quantum-* is denied and logged" wait_for 30 denied
run journalctl -u quantum-watchdog.service ACTION=restart UNIT=other-consumer.service -o cat --no-pager | head -1 | cut -c1-200 | sed 's/^/#   /'
check "the unit outside the pattern was not restarted" test "$(pid_of other-consumer.service)" = "$OTHER"
check "the agent carries on" active quantum-watchdog.service
run kill -CONT "$OTHER"
run kill -STOP "$(pid_of quantum-hang.service)"
for i in $(seq 11 20); do R XADD test:hang '*' n "$i" >/dev/null; done
HANG2=$(pid_of quantum-hang.service)
restarted2() { local p; p=$(pid_of quantum-hang.service); [ "$p" != "$HANG2" ] && [ "$p" != 0 ]; }
check "and still restarts what it may" wait_for 30 restarted2

# --- 3b. pauses: the package's directory and group; root pauses, a stranger may not
check "the pause directory is root:quantum-watchdog-operators 2775" test "$(run stat -c '%U:%G %a' /var/lib/quantum-watchdog/pauses)" = "root:quantum-watchdog-operators 2775"
check "root pauses a unit" run quantum-watchdog pause quantum-hang --for 10m --reason install-test
held() { run quantum-watchdog status --json | grep -q '"hold": "paused by root until [0-9:]*: install-test"'; }
check "status shows the pause" wait_for 5 held
run setpriv --reuid=nobody --regid=nogroup --clear-groups quantum-watchdog resume --all >/dev/null 2>&1
check "a stranger may not resume (exit 4)" test $? = 4
check "root resumes" run quantum-watchdog resume quantum-hang
check "the pause is gone" bash -c '! run test -e /var/lib/quantum-watchdog/pauses/quantum-hang.service.pause'

# --- 4. security exposure
EXPO=$(run systemd-analyze security quantum-watchdog.service --no-pager 2>/dev/null | sed -n 's/.*Overall exposure level for quantum-watchdog.service: \([0-9.]*\).*/\1/p')
echo "# systemd-analyze security quantum-watchdog.service: exposure $EXPO"
check "exposure is at most 2.0" awk -v e="${EXPO:-99}" 'BEGIN { exit !(e <= 2.0) }'

# --- 5. remove, purge, reinstall
run apt-get remove -y -q quantum-watchdog >/tmp/qw-apt.log 2>&1 || bad "apt remove"
check "remove stops it" test "$(run systemctl is-active quantum-watchdog.service)" != active
check "remove disables it" bash -c '! run test -e /etc/systemd/system/multi-user.target.wants/quantum-watchdog.service'
check "remove leaves the conffile" run test -f /etc/quantum-watchdog/config.toml
run apt-get purge -y -q quantum-watchdog >/tmp/qw-apt.log 2>&1 || bad "apt purge"
check "purge removes the conffile" bash -c '! run test -e /etc/quantum-watchdog/config.toml'
check "purge removes the agent's runtime files" bash -c '! run test -e /run/quantum-watchdog'
check "purge leaves no unit file" bash -c '! run test -e /lib/systemd/system/quantum-watchdog.service'
run apt-get install -y -q "/debs/$(basename "$DEB")" >/tmp/qw-apt.log 2>&1 || bad "reinstall"
check "reinstall works" wait_for 15 active quantum-watchdog.service
check "reinstall restores the observe-mode conffile" run grep -q '^mode = "observe"' /etc/quantum-watchdog/config.toml

echo "# install test took $((SECONDS - T0)) s in the container"
finish install
