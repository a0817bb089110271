#!/bin/bash
# The package's lifecycle beside Debian's node_exporter, in a booted Debian 12 container:
# the previous release installed with the recovery timer enabled, upgraded to this one,
# removed and purged; then installed before node_exporter instead of after. At each step:
# `systemctl is-system-running`, the timer's state, what node_exporter serves, leftovers.
set -u
. "$(dirname "$0")/lib.sh"
DEB=$(ls "$QW_DEBS"/quantum-watchdog_*.deb | head -1)
PREV=$QW_DEBS/previous.deb
NODE=http://127.0.0.1:9100/metrics
served() { curl -sf --max-time 5 "$NODE" | grep -q "^$1"; }
not_served() { ! curl -sf --max-time 5 "$NODE" | grep -q "^quantum_watchdog_"; }
textfile_error() { curl -sf --max-time 5 "$NODE" | grep -q '^node_textfile_scrape_error 1'; }
no_textfile_error() { ! textfile_error; }
as_agent() { run setpriv --reuid=quantum-watchdog --regid=quantum-watchdog --clear-groups "$@"; }
# The running agent's own lines (the previous release's agent logged Permission denied on
# every cycle beside Debian's node_exporter: that is what the upgrade fixes).
no_denied() { ! run journalctl -u quantum-watchdog.service _PID="$(pid_of quantum-watchdog.service)" -o cat --no-pager | grep -qi 'permission denied'; }
old_denied() { run journalctl -u quantum-watchdog.service -o cat --no-pager | grep -ci 'permission denied'; }
leftovers() { run sh -c 'ls -A /var/lib/prometheus/node-exporter/ 2>/dev/null | grep quantum; ls -d /run/quantum-watchdog /var/lib/quantum-watchdog /etc/quantum-watchdog 2>/dev/null' ; }

# --- 1. node_exporter first, then the previous release with the timer enabled
check "redis-server runs" wait_for 20 active redis-server.service
check "prometheus-node-exporter installs from Debian" apt_install prometheus-node-exporter
check "node_exporter answers" wait_for 20 served node_exporter_build_info
echo "# $(run ls -ld /var/lib/prometheus | awk '{print $1, $3, $4, $9}') (Debian's node_exporter)"
# As the previous release's README said: its textfile straight into node_exporter's directory.
run sh -c 'mkdir -p /etc/quantum-watchdog/config.d && echo "metrics.textfile_dir = \"/var/lib/prometheus/node-exporter\"" > /etc/quantum-watchdog/config.d/10-metrics.toml'
check "the previous release installs" apt_install "/debs/previous.deb"
echo "# previous: $(run dpkg-query -W -f '${Version}' quantum-watchdog)"
run systemctl enable --now quantum-stream-recover.timer >/dev/null 2>&1
check "the timer is active and enabled" test "$(state_of quantum-stream-recover.timer)" = active/enabled
check "the agent runs" wait_for 15 active quantum-watchdog.service
wait_for 15 run test -s /run/quantum-watchdog/state.json >/dev/null
# What the previous release's agent user could leave in the directory it owned: a runtime
# configuration layer of its own, and a link meant to make root hand it /etc/systemd/system.
as_agent mkdir -p /run/quantum-watchdog/config.d /run/quantum-watchdog/agent
as_agent sh -c 'echo "interval = \"7s\"" > /run/quantum-watchdog/config.d/99-planted.toml'
as_agent ln -s /etc/systemd/system /run/quantum-watchdog/agent/state.json

# --- 2. upgrade
check "the previous release's agent is denied its textfile beside node_exporter" wait_for 20 bash -c '[ "$(run journalctl -u quantum-watchdog.service -o cat --no-pager | grep -ci "permission denied")" -gt 0 ]'
echo "# the previous release's agent beside node_exporter: $(old_denied) journal lines say Permission denied"
check "the upgrade installs" apt_install "/debs/$(basename "$DEB")"
echo "# upgraded to: $(run dpkg-query -W -f '${Version}' quantum-watchdog)"
check "no unsafe path transition at the upgrade" bash -c '! grep -q "unsafe path transition" /tmp/qw-apt.log'
check "after the upgrade the timer is still active and enabled" test "$(state_of quantum-stream-recover.timer)" = active/enabled
check "the agent runs the new version" wait_for 15 bash -c 'run journalctl -u quantum-watchdog.service -o cat --no-pager | grep -q "quantum-watchdog 0.2.0 starting"'
check "the state moved to /run/quantum-watchdog/agent" run test -s /run/quantum-watchdog/agent/state.json
check "/run/quantum-watchdog, a configuration layer, is root's" test "$(run stat -c '%U %a' /run/quantum-watchdog)" = "root 755"
check "the agent's user cannot write a configuration layer" bash -c '! run setpriv --reuid=quantum-watchdog --regid=quantum-watchdog --clear-groups mkdir /run/quantum-watchdog/config.d 2>/dev/null'
check "node_exporter serves the agent's metrics (the package's drop-in wins over 10-metrics.toml)" wait_for 20 served 'quantum_watchdog_up 1'
check "node_exporter reports no textfile error (the recover file exists, empty)" no_textfile_error
check "/etc/systemd/system is still root's" test "$(run stat -c %U /etc/systemd/system)" = root
check "the planted configuration layer is gone" bash -c '! run test -e /run/quantum-watchdog/config.d/99-planted.toml'
check "the agent runs with the shipped interval, not the planted one" bash -c 'run journalctl -u quantum-watchdog.service -o cat --no-pager | grep "quantum-watchdog 0.2.0 starting" | tail -1 | grep -q "interval 5s"'
check "the agent logs no Permission denied" no_denied
check "the boot id is recorded" bash -c 'run cat /run/quantum-watchdog/agent/state.json | grep -q "\"boot_id\": *\"[0-9a-f]\{32\}\""'
check "the package's own units are not watched" bash -c '! run quantum-watchdog status --json | grep -q quantum-stream-recover'
check "the system is running, not degraded" wait_for 10 system_running

# The operator's own drop-in is the operator's to remove (purge leaves files it did not ship).
run rm -rf /etc/quantum-watchdog/config.d

# --- 3. remove
check "apt remove" bash -c 'run apt-get remove -y -q quantum-watchdog >/tmp/qw-apt.log 2>&1'
run systemctl daemon-reload
check "remove stops the timer" test "$(run systemctl is-active quantum-stream-recover.timer)" != active
check "remove stops the agent" test "$(run systemctl is-active quantum-watchdog.service)" != active
check "the system is running, not degraded, after remove" wait_for 10 system_running
run systemctl --failed --no-legend --no-pager | sed 's/^/#   failed: /'
check "node_exporter no longer serves the agent's metrics" wait_for 10 not_served
check "no quantum-watchdog file in node_exporter's directory" bash -c '! run sh -c "ls -A /var/lib/prometheus/node-exporter | grep -q quantum"'

# --- 4. purge
check "apt purge" bash -c 'run apt-get purge -y -q quantum-watchdog >/tmp/qw-apt.log 2>&1'
check "purge leaves nothing of the package" test -z "$(leftovers)"
leftovers | sed 's/^/#   left: /'
check "the system is running after purge" wait_for 10 system_running

# --- 5. the other order: quantum-watchdog first, then node_exporter
check "node_exporter purged" bash -c 'run apt-get purge -y -q prometheus-node-exporter >/tmp/qw-apt.log 2>&1'
check "quantum-watchdog installs without node_exporter" apt_install "/debs/$(basename "$DEB")"
check "the agent runs" wait_for 15 active quantum-watchdog.service
check "then node_exporter installs" apt_install prometheus-node-exporter
check "no unsafe path transition" bash -c '! grep -q "unsafe path transition" /tmp/qw-apt.log'
check "node_exporter serves the agent's metrics without a restart" wait_for 20 served 'quantum_watchdog_up 1'
check "and reports no textfile error" no_textfile_error
check "the agent logs no Permission denied" no_denied
check "the system is running" wait_for 10 system_running
finish lifecycle
