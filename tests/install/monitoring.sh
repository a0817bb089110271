#!/bin/bash
# The monitoring stack an operator runs, in a booted Debian 12 container: Debian's
# prometheus, prometheus-alertmanager and prometheus-node-exporter with the package's alert
# rules. Prometheus scrapes the agent over TCP (metrics.listen, applied by a reload) and
# node_exporter's textfile. A hang in enforce mode must reach Alertmanager as a restart
# alert with the unit and host labels; in observe mode as the hung alert. Every panel of
# the shipped Grafana dashboard must return data from this Prometheus.
set -u
. "$(dirname "$0")/lib.sh"
DEB=$(ls "$QW_DEBS"/quantum-watchdog_*.deb | head -1)
PROM=http://127.0.0.1:9090
AM=http://127.0.0.1:9093
EX=/usr/share/doc/quantum-watchdog/examples

check "redis-server runs" wait_for 20 active redis-server.service
check "Debian's prometheus, alertmanager and node_exporter install" apt_install prometheus prometheus-alertmanager prometheus-node-exporter
check "quantum-watchdog installs beside them" apt_install "/debs/$(basename "$DEB")"
echo "# $(run dpkg-query -W -f '${Package} ${Version}\n' prometheus prometheus-alertmanager prometheus-node-exporter quantum-watchdog | tr '\n' ';')"
check "the metrics socket is not for every local user" test "$(run stat -c '%a' /run/quantum-watchdog/agent/metrics.sock 2>/dev/null)" = 660

# Prometheus as the README's remote-scrape section says, with short intervals for the test.
run sh -c "zcat -f $EX/quantum-watchdog.rules.yml* > /etc/prometheus/quantum-watchdog.rules.yml"
run sh -c 'cat > /etc/prometheus/prometheus.yml' <<'P'
global: {scrape_interval: 1s, evaluation_interval: 1s}
rule_files: [/etc/prometheus/quantum-watchdog.rules.yml]
alerting:
  alertmanagers: [{static_configs: [{targets: ['127.0.0.1:9093']}]}]
scrape_configs:
  - job_name: quantum-watchdog
    static_configs: [{targets: ['127.0.0.1:9632']}]
  - job_name: node
    static_configs: [{targets: ['127.0.0.1:9100']}]
P
run systemctl restart prometheus.service
check "prometheus runs with the package's rules" wait_for 30 bash -c "curl -sf $PROM/api/v1/rules | grep -q QuantumUnitRestarted"

consumer_unit quantum-good test:good good
consumer_unit quantum-hang test:hang hang
test_config 'metrics.listen = "127.0.0.1:9632"' quantum-good quantum-hang
run systemctl daemon-reload
run systemctl start quantum-good.service quantum-hang.service
for s in good hang; do
    for _ in $(seq 50); do R XADD "test:$s" '*' n 0 >/dev/null; sleep 0.1; R XINFO CONSUMERS "test:$s" g 2>/dev/null | grep -q "$s-" && break; done
done
check "systemctl reload applies metrics.listen (TCP, no restart)" run systemctl reload quantum-watchdog.service
scraped() { curl -sf "$PROM/api/v1/query?query=up" | python3 -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; sys.exit(0 if {x["metric"]["job"] for x in r if x["value"][1]=="1"} >= {"quantum-watchdog","node"} else 1)'; }
check "prometheus scrapes the agent and node_exporter" wait_for 30 scraped
AGENT=$(pid_of quantum-watchdog.service)

alert() { # name unit: the alert is in Alertmanager's API with the unit and host labels
    curl -sf "$AM/api/v2/alerts" | python3 -c '
import json, sys
name, unit, host = sys.argv[1:4]
a = [x for x in json.load(sys.stdin) if x["labels"].get("alertname") == name and x["labels"].get("unit") == unit]
ok = [x for x in a if name != "QuantumUnitRestarted" or x["labels"].get("host") == host]
sys.exit(0 if ok else 1)' "$1" "$2" "$(run hostname)"
}

# --- enforce: the hang is restarted, and the restart reaches Alertmanager
HANG=$(pid_of quantum-hang.service)
run kill -STOP "$HANG"
T=$SECONDS
for i in $(seq 1 10); do R XADD test:hang '*' n "$i" >/dev/null; done
check "the hung unit is restarted" wait_for 30 bash -c '[ "$(run systemctl show -p MainPID --value quantum-hang.service)" != '"$HANG"' ]'
check "QuantumUnitRestarted is in Alertmanager with unit and host" wait_for 90 alert QuantumUnitRestarted quantum-hang.service
ENFORCE_S=$((SECONDS - T))
echo "# enforce: hang to restart alert in Alertmanager: $ENFORCE_S s (hung_after 3s, interval 1s, scrape and evaluation 1s)"
check "the agent was not restarted by the reload" test "$(pid_of quantum-watchdog.service)" = "$AGENT"

# --- observe: the hang stays, and the hung alert reaches Alertmanager
run sh -c "sed -i 's/^mode = \"enforce\"/mode = \"observe\"/' /etc/quantum-watchdog/config.d/50-test.toml"
run systemctl reload quantum-watchdog.service
GOOD=$(pid_of quantum-good.service)
run kill -STOP "$GOOD"
T=$SECONDS
for i in $(seq 1 10); do R XADD test:good '*' n "$i" >/dev/null; done
check "QuantumUnitHung is in Alertmanager for the unit left hung" wait_for 120 alert QuantumUnitHung quantum-good.service
OBSERVE_S=$((SECONDS - T))
echo "# observe: hang to hung alert in Alertmanager: $OBSERVE_S s (hung_after 3s + for: 30s)"
check "observe mode restarted nothing" test "$(pid_of quantum-good.service)" = "$GOOD"

# --- the dashboard: every panel's query returns data from this Prometheus
panels() { run sh -c "zcat -f $EX/grafana-dashboard.json*" | python3 -c '
import json, sys
for p in json.load(sys.stdin)["panels"]:
    for t in p["targets"]:
        print(p["title"] + "\t" + t["expr"].replace("$instance", ".*").replace("$__rate_interval", "1m"))'; }
has_data() { curl -sf -G "$PROM/api/v1/query" --data-urlencode "query=$1" | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["data"]["result"] else 1)'; }
n=0
while IFS=$'\t' read -r title expr; do
    n=$((n + 1))
    check "dashboard panel \"$title\" has data" wait_for 10 has_data "$expr"
done < <(panels)
check "the dashboard has its panels" test "$n" -ge 10
echo "MEASURE hang-to-alert enforce=${ENFORCE_S}s observe=${OBSERVE_S}s"
finish monitoring
