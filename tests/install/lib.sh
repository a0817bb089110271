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
# The test's drop-in: enforce mode, a 1 s interval, hung after 3 s, then $1 (more top-level
# keys, one per line) and a [[watch]] for each further argument NAME (unit NAME.service
# reading test:SHORT as g, SHORT being NAME without its "quantum-"/"-consumer").
test_config() {
    local top=$1; shift
    {
        printf 'mode = "enforce"\ninterval = "1s"\n%s\n' "$top"
        printf '[defaults]\nhung_after = "3s"\nstartup_grace = "2s"\nconfirm = 2\n'
        for name in "$@"; do
            local short=${name#quantum-}; short=${short%-consumer}
            printf '[[watch]]\nunit = "%s.service"\nstream = "test:%s"\ngroup = "g"\nconsumer = "%s-{hostname}-{pid}"\n' "$name" "$short" "$short"
        done
    } | run sh -c 'mkdir -p /etc/quantum-watchdog/config.d && cat > /etc/quantum-watchdog/config.d/50-test.toml'
}
