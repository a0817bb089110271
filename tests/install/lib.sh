# Sourced by the install tests: counting checks, waiting, and what an operator would ask.
# `run CMD` (from tests/support/nspawn-boot.sh) executes CMD inside the booted container.
PASS=0; FAIL=0
ok() { PASS=$((PASS + 1)); echo "ok   - $*"; }
bad() { FAIL=$((FAIL + 1)); echo "FAIL - $*"; }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
wait_for() { local secs=$1; shift; local end=$((SECONDS + secs)); while [ $SECONDS -lt $end ]; do "$@" && return 0; sleep 0.2; done; "$@"; }
R() { run redis-cli "$@"; }
pid_of() { run systemctl show -p MainPID --value "$1"; }
active() { [ "$(run systemctl is-active "$1" 2>/dev/null)" = active ]; }
state_of() { echo "$(run systemctl is-active "$1" 2>/dev/null)/$(run systemctl is-enabled "$1" 2>/dev/null)"; }
system_running() { [ "$(run systemctl is-system-running 2>/dev/null)" = running ]; }
apt_install() { run apt-get install -y -q --no-install-recommends "$@" >/tmp/qw-apt.log 2>&1 || { tail -20 /tmp/qw-apt.log; return 1; }; }
# A test consumer unit: name stream prefix (the example consumer in /debs).
consumer_unit() {
    run sh -c "cat > /etc/systemd/system/$1.service" <<U
[Unit]
Description=test consumer $1
[Service]
ExecStart=/debs/qw-consumer redis://127.0.0.1:6379/0 $2 g $3 /var/tmp/$1.acks
TimeoutStopSec=5
U
}
finish() { echo "$1: $PASS passed, $FAIL failed"; [ "$FAIL" = 0 ]; }
