//! Prometheus metrics: served at `/metrics` on `metrics.listen` (a unix socket by default, or
//! `HOST:PORT`) and written to `metrics.textfile_dir` for node_exporter's textfile collector.
//!
//! Cardinality is bounded: labels are units, streams, groups and consumers of watched groups
//! only, never message IDs; consumer series are capped at `metrics.max_consumer_series`, and
//! what the cap drops is counted.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{ClaimPolicy, Config};
use crate::model::{GroupKey, Snapshot};
use crate::policy::{Action, Decision, Verdict};

type Labels = Vec<(String, String)>;
type FGauge = Gauge<f64, AtomicU64>;

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The latest cycle, kept for building gauges when they are read.
struct Observed {
    snap: Snapshot,
    d: Decision,
    unit_of: BTreeMap<GroupKey, String>,
    max_series: usize,
    fresh: bool,
}

pub struct Metrics {
    registry: Registry,
    latest: Mutex<Option<Observed>>,
    claimed: Family<Labels, Counter>,
    ghosts: Family<Labels, Counter>,
    deleted: Family<Labels, Counter>,
    restarts: Family<Labels, Counter>,
    requeued: Family<Labels, Counter>,
    dead_lettered: Family<Labels, Counter>,
    verdict: Family<Labels, Gauge>,
    consumer_idle: Family<Labels, FGauge>,
    consumer_inactive: Family<Labels, FGauge>,
    consumer_pending: Family<Labels, Gauge>,
    group_lag: Family<Labels, Gauge>,
    group_pending: Family<Labels, Gauge>,
    entries_added: Family<Labels, Counter>,
    added_seen: Mutex<BTreeMap<String, u64>>,
    budget_remaining: Family<Labels, Gauge>,
    stalled: Family<Labels, Gauge>,
    key_value: Family<Labels, FGauge>,
    key_limit: Family<Labels, FGauge>,
    up: Gauge,
    cycle: Histogram,
    last_cycle: FGauge,
    redis_errors: Counter,
    dbus_errors: Counter,
    series_dropped: Counter,
    round_trips: Counter,
    round_trips_seen: Mutex<u64>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let m = Metrics {
            claimed: Family::default(),
            ghosts: Family::default(),
            deleted: Family::default(),
            restarts: Family::default(),
            requeued: Family::default(),
            dead_lettered: Family::default(),
            verdict: Family::default(),
            consumer_idle: Family::default(),
            consumer_inactive: Family::default(),
            consumer_pending: Family::default(),
            group_lag: Family::default(),
            group_pending: Family::default(),
            entries_added: Family::default(),
            added_seen: Mutex::new(BTreeMap::new()),
            budget_remaining: Family::default(),
            stalled: Family::default(),
            key_value: Family::default(),
            key_limit: Family::default(),
            up: Gauge::default(),
            cycle: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            last_cycle: FGauge::default(),
            redis_errors: Counter::default(),
            dbus_errors: Counter::default(),
            series_dropped: Counter::default(),
            round_trips: Counter::default(),
            round_trips_seen: Mutex::new(0),
            latest: Mutex::new(None),
            registry: Registry::default(),
        };
        // Counters get their `_total` suffix from the encoder.
        r.register(
            "quantum_stream_recovery_claimed",
            "Pending entries claimed from dead consumers (handoff or park)",
            m.claimed.clone(),
        );
        r.register(
            "quantum_stream_recovery_ghosts",
            "Pending entries of dead consumers that were no longer in the stream (left the pending list, nothing to move)",
            m.ghosts.clone(),
        );
        r.register(
            "quantum_stream_recovery_deleted",
            "Dead or zombie consumers deleted",
            m.deleted.clone(),
        );
        r.register(
            "quantum_watchdog_restarts",
            "Restarts issued, by unit and cause",
            m.restarts.clone(),
        );
        r.register(
            "quantum_watchdog_requeued",
            "Entries requeued (copied and the original acknowledged)",
            m.requeued.clone(),
        );
        r.register(
            "quantum_watchdog_dead_lettered",
            "Entries moved to a dead-letter stream",
            m.dead_lettered.clone(),
        );
        r.register(
            "quantum_watchdog_unit_verdict",
            "1 for the unit's current verdict, 0 for the others",
            m.verdict.clone(),
        );
        r.register(
            "quantum_watchdog_consumer_idle_seconds",
            "XINFO CONSUMERS idle",
            m.consumer_idle.clone(),
        );
        r.register(
            "quantum_watchdog_consumer_inactive_seconds",
            "XINFO CONSUMERS inactive (Redis 7.2+)",
            m.consumer_inactive.clone(),
        );
        r.register(
            "quantum_watchdog_consumer_pending",
            "Entries pending on the consumer",
            m.consumer_pending.clone(),
        );
        r.register(
            "quantum_watchdog_group_lag",
            "Entries not yet delivered to the group (absent when Redis reports null)",
            m.group_lag.clone(),
        );
        r.register(
            "quantum_watchdog_group_pending",
            "Entries delivered to the group and not acknowledged",
            m.group_pending.clone(),
        );
        r.register(
            "quantum_watchdog_stream_entries_added",
            "Entries added to the stream (XINFO STREAM entries-added)",
            m.entries_added.clone(),
        );
        r.register(
            "quantum_watchdog_restart_budget_remaining",
            "Restarts left in the unit's budget window",
            m.budget_remaining.clone(),
        );
        r.register(
            "quantum_watchdog_pipeline_stalled",
            "1 when the group's stage of a pipeline is stalled",
            m.stalled.clone(),
        );
        r.register(
            "quantum_watchdog_key_value",
            "Value of a watched Redis key ([[gauge]])",
            m.key_value.clone(),
        );
        r.register(
            "quantum_watchdog_key_limit",
            "Limit of a watched Redis key ([[gauge]])",
            m.key_limit.clone(),
        );
        r.register(
            "quantum_watchdog_up",
            "1 when systemd and Redis were both readable in the last cycle",
            m.up.clone(),
        );
        r.register(
            "quantum_watchdog_cycle_duration_seconds",
            "Duration of one complete cycle",
            m.cycle.clone(),
        );
        r.register(
            "quantum_watchdog_last_cycle_timestamp_seconds",
            "When the last cycle completed (Unix time)",
            m.last_cycle.clone(),
        );
        r.register(
            "quantum_watchdog_redis_errors",
            "Cycles in which Redis could not be read",
            m.redis_errors.clone(),
        );
        r.register(
            "quantum_watchdog_dbus_errors",
            "Cycles in which systemd could not be asked",
            m.dbus_errors.clone(),
        );
        r.register(
            "quantum_watchdog_consumer_series_dropped",
            "Consumer series left out by metrics.max_consumer_series",
            m.series_dropped.clone(),
        );
        r.register(
            "quantum_watchdog_build",
            "Build information",
            Info::new(vec![(
                "version".to_string(),
                env!("CARGO_PKG_VERSION").to_string(),
            )]),
        );
        r.register(
            "quantum_watchdog_redis_round_trips",
            "Requests sent to Redis (a pipeline counts once)",
            m.round_trips.clone(),
        );
        Metrics { registry: r, ..m }
    }

    /// Records one cycle: counters and the cycle histogram now; the gauges are built from the
    /// latest cycle when someone reads them (a scrape, a textfile write), not every cycle.
    pub fn observe(&self, cfg: &Config, snap: Snapshot, d: Decision, cycle: Duration) {
        self.cycle.observe(cycle.as_secs_f64());
        self.last_cycle.set(snap.now_usec as f64 / 1e6);
        if d.redis_error.is_some() {
            self.redis_errors.inc();
        }
        if d.systemd_error.is_some() {
            self.dbus_errors.inc();
        }
        self.up.set(i64::from(
            d.redis_error.is_none() && d.systemd_error.is_none(),
        ));
        if let Ok(r) = &snap.redis {
            for (k, g) in &r.groups {
                if let Ok(g) = g {
                    self.added(&k.stream, g.stream.entries_added);
                }
            }
            for (st, r) in &r.streams {
                if let Ok((info, _)) = r {
                    self.added(st, info.entries_added);
                }
            }
        }
        let unit_of = cfg
            .watch
            .iter()
            .map(|w| {
                (
                    GroupKey {
                        stream: w.stream.clone(),
                        group: w.group.clone(),
                    },
                    w.unit.clone(),
                )
            })
            .collect();
        *self.latest.lock().unwrap() = Some(Observed {
            snap,
            d,
            unit_of,
            max_series: cfg.metrics.max_consumer_series,
            fresh: true,
        });
    }

    /// Rebuilds the gauges from the latest cycle, if it has not been used yet.
    fn fill_gauges(&self) {
        let mut latest = self.latest.lock().unwrap();
        let Some(o) = latest.as_mut().filter(|o| o.fresh) else {
            return;
        };
        o.fresh = false;
        let (snap, d) = (&o.snap, &o.d);
        self.verdict.clear();
        self.budget_remaining.clear();
        for u in &d.units {
            for v in Verdict::ALL {
                self.verdict
                    .get_or_create(&l(&[("unit", &u.unit), ("verdict", v.as_str())]))
                    .set(i64::from(v == u.verdict));
            }
            let left = i64::from(u.restart_budget) - i64::from(u.restarts_in_window);
            self.budget_remaining
                .get_or_create(&l(&[("unit", &u.unit)]))
                .set(left.max(0));
        }
        self.consumer_idle.clear();
        self.consumer_inactive.clear();
        self.consumer_pending.clear();
        self.group_lag.clear();
        self.group_pending.clear();
        let mut series = 0usize;
        let mut dropped = 0u64;
        if let Ok(r) = &snap.redis {
            for (k, g) in &r.groups {
                let Ok(g) = g else { continue };
                let gl = l(&[("stream", &k.stream), ("group", &k.group)]);
                if let Some(lag) = g.group.lag {
                    self.group_lag.get_or_create(&gl).set(lag as i64);
                }
                self.group_pending
                    .get_or_create(&gl)
                    .set(g.group.pending as i64);
                let unit = o.unit_of.get(k).map(String::as_str).unwrap_or("");
                for c in &g.consumers {
                    if series >= o.max_series {
                        dropped += 1;
                        continue;
                    }
                    series += 1;
                    let cl = l(&[
                        ("unit", unit),
                        ("stream", &k.stream),
                        ("group", &k.group),
                        ("consumer", &c.name),
                    ]);
                    self.consumer_idle
                        .get_or_create(&cl)
                        .set(c.idle_ms as f64 / 1000.0);
                    self.consumer_pending
                        .get_or_create(&cl)
                        .set(c.pending as i64);
                    if let Some(i) = c.inactive_ms.filter(|i| *i >= 0) {
                        self.consumer_inactive
                            .get_or_create(&cl)
                            .set(i as f64 / 1000.0);
                    }
                }
            }
            for (st, r) in &r.streams {
                if let Ok((_, groups)) = r {
                    for g in groups {
                        let gl = l(&[("stream", st), ("group", &g.name)]);
                        if let Some(lag) = g.lag {
                            self.group_lag.get_or_create(&gl).set(lag as i64);
                        }
                        self.group_pending.get_or_create(&gl).set(g.pending as i64);
                    }
                }
            }
        }
        self.series_dropped.inc_by(dropped);
        self.stalled.clear();
        for p in &d.pipelines {
            for s in &p.stages {
                for g in &s.groups {
                    self.stalled
                        .get_or_create(&l(&[
                            ("pipeline", &p.name),
                            ("stream", &s.stream),
                            ("group", &g.group),
                        ]))
                        .set(i64::from(g.stalled));
                }
            }
        }
        self.key_value.clear();
        self.key_limit.clear();
        for g in &d.gauges {
            let gl = l(&[("name", &g.name)]);
            if let Some(v) = g.value {
                self.key_value.get_or_create(&gl).set(v);
            }
            self.key_limit.get_or_create(&gl).set(g.limit);
        }
    }

    fn added(&self, stream: &str, added: Option<u64>) {
        let Some(now) = added else { return };
        let mut seen = self.added_seen.lock().unwrap();
        let prev = seen.insert(stream.to_string(), now);
        let c = self.entries_added.get_or_create(&l(&[("stream", stream)]));
        match prev {
            // The counter starts at the stream's own count, then follows it; a stream that was
            // recreated (count went down) starts counting again from its new count.
            None => c.inc_by(now),
            Some(p) if now >= p => c.inc_by(now - p),
            Some(_) => c.inc_by(now),
        };
    }

    /// Follows the Redis adapter's own count of round trips.
    pub fn round_trips(&self, total: u64) {
        let mut seen = self.round_trips_seen.lock().unwrap();
        self.round_trips.inc_by(total.saturating_sub(*seen));
        *seen = total;
    }

    /// Counts one carried-out action; `moved` entries for claims and requeues.
    pub fn record(&self, a: &Action, moved: u64, ok: bool) {
        match a {
            Action::Restart { unit, cause, .. } => {
                self.restarts
                    .get_or_create(&l(&[("unit", unit), ("reason", cause.as_str())]))
                    .inc();
            }
            Action::Claim {
                unit,
                stream,
                group,
                policy,
                ..
            } if ok => {
                let p = if *policy == ClaimPolicy::Park {
                    "park"
                } else {
                    "handoff"
                };
                self.claimed
                    .get_or_create(&l(&[
                        ("unit", unit),
                        ("stream", stream),
                        ("group", group),
                        ("policy", p),
                    ]))
                    .inc_by(moved);
            }
            Action::Requeue {
                unit,
                stream,
                group,
                ..
            } if ok => {
                self.requeued
                    .get_or_create(&l(&[("unit", unit), ("stream", stream), ("group", group)]))
                    .inc_by(moved);
            }
            Action::DeadLetter { stream, group, .. } if ok && moved > 0 => {
                self.dead_lettered
                    .get_or_create(&l(&[("stream", stream), ("group", group)]))
                    .inc();
            }
            Action::Delete { stream, group, .. } if ok && moved > 0 => {
                self.deleted
                    .get_or_create(&l(&[("stream", stream), ("group", group)]))
                    .inc();
            }
            _ => {}
        }
    }

    /// Counts pending entries of a dead consumer that were no longer in the stream.
    pub fn record_ghosts(&self, stream: &str, group: &str, n: u64) {
        if n > 0 {
            self.ghosts
                .get_or_create(&l(&[("stream", stream), ("group", group)]))
                .inc_by(n);
        }
    }

    /// Adds counter values read back from an earlier textfile (the oneshot `recover` keeps its
    /// counters across runs this way).
    pub fn seed(&self, text: &str) {
        for (name, mut labels, v) in parse_samples(text) {
            labels.retain(|(k, _)| k != "source");
            let fam = match name.as_str() {
                "quantum_stream_recovery_claimed_total" => &self.claimed,
                "quantum_stream_recovery_ghosts_total" => &self.ghosts,
                "quantum_stream_recovery_deleted_total" => &self.deleted,
                "quantum_watchdog_requeued_total" => &self.requeued,
                "quantum_watchdog_dead_lettered_total" => &self.dead_lettered,
                _ => continue,
            };
            fam.get_or_create(&labels).inc_by(v as u64);
        }
    }

    /// OpenMetrics text, as served at `/metrics`.
    pub fn encode(&self) -> String {
        self.fill_gauges();
        let mut s = String::new();
        let _ = encode(&mut s, &self.registry);
        s
    }

    /// Prometheus text format for node_exporter's textfile collector.
    pub fn encode_textfile(&self) -> String {
        to_prometheus_text(&self.encode())
    }

    /// Writes `<dir>/quantum-watchdog.prom` atomically (temporary file, then rename).
    pub fn write_textfile(&self, dir: &Path) -> std::io::Result<()> {
        write_atomically(&dir.join("quantum-watchdog.prom"), &self.encode_textfile())
    }

    /// Writes `<dir>/quantum-watchdog-recover.prom`: only the recovery counters, labelled
    /// `source="recover"` so they never collide with the agent's series.
    pub fn write_recover_textfile(&self, dir: &Path) -> std::io::Result<()> {
        let mut out = String::new();
        let mut typed = false;
        for line in self.encode_textfile().lines() {
            let name = line
                .trim_start_matches("# TYPE ")
                .trim_start_matches("# HELP ");
            if !RECOVERY_COUNTERS.iter().any(|c| name.starts_with(c)) {
                continue;
            }
            if line.starts_with('#') {
                out.push_str(line);
            } else if let Some((head, rest)) = line.split_once('{') {
                out.push_str(&format!("{head}{{source=\"recover\",{rest}"));
            } else if let Some((head, v)) = line.rsplit_once(' ') {
                out.push_str(&format!("{head}{{source=\"recover\"}} {v}"));
            }
            out.push('\n');
            typed = true;
        }
        if !typed {
            out.clear();
        }
        write_atomically(&dir.join("quantum-watchdog-recover.prom"), &out)
    }
}

const RECOVERY_COUNTERS: [&str; 5] = [
    "quantum_stream_recovery_claimed_total",
    "quantum_stream_recovery_ghosts_total",
    "quantum_stream_recovery_deleted_total",
    "quantum_watchdog_requeued_total",
    "quantum_watchdog_dead_lettered_total",
];

fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("prom.{}.tmp", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// OpenMetrics → Prometheus text: counters are typed under their `_total` name, info metrics
/// become gauges, and the `# EOF` marker goes.
pub fn to_prometheus_text(om: &str) -> String {
    let mut counters = Vec::new();
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            match kind {
                "counter" => {
                    counters.push(name.to_string());
                    out.push_str(&format!("# TYPE {name}_total counter\n"));
                }
                "info" => out.push_str(&format!("# TYPE {name}_info gauge\n")),
                _ => out.push_str(&format!("{line}\n")),
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            if counters.iter().any(|c| c == name) || om.contains(&format!("# TYPE {name} counter"))
            {
                out.push_str(&format!("# HELP {name}_total{}\n", &rest[name.len()..]));
            } else if om.contains(&format!("# TYPE {name} info")) {
                out.push_str(&format!("# HELP {name}_info{}\n", &rest[name.len()..]));
            } else {
                out.push_str(&format!("{line}\n"));
            }
            continue;
        }
        if line.starts_with("# UNIT") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Parses `name{k="v",…} value` sample lines (enough for our own output).
pub fn parse_samples(text: &str) -> Vec<(String, Labels, f64)> {
    let mut v = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (head, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match head.split_once('{') {
            Some((n, rest)) => (n.to_string(), parse_labels(rest.trim_end_matches('}'))),
            None => (head.to_string(), Vec::new()),
        };
        v.push((name, labels, value));
    }
    v
}

fn parse_labels(s: &str) -> Labels {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some((k, after)) = rest.split_once("=\"") {
        let mut val = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        val.push(match n {
                            'n' => '\n',
                            other => other,
                        });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => val.push(c),
            }
        }
        out.push((k.trim_start_matches(',').to_string(), val));
        rest = &after[end..];
    }
    out
}

/// At most this many scrapes are answered at once; further connections wait in the kernel's
/// backlog (they hold none of the agent's file descriptors).
const MAX_CONNECTIONS: usize = 32;

enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

/// Serves `GET /metrics` on `listen` (`unix:/path` or `HOST:PORT`) until the task is dropped.
/// It survives any accept error (EMFILE included: it backs off and accepts again), answers at
/// most [`MAX_CONNECTIONS`] at once and drops a connection idle for 2 s.
pub async fn serve(
    listen: &str,
    metrics: Arc<Metrics>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let l = if let Some(path) = listen.strip_prefix("unix:") {
        let _ = std::fs::remove_file(path);
        if let Some(dir) = Path::new(path).parent() {
            std::fs::create_dir_all(dir)?;
        }
        let l = tokio::net::UnixListener::bind(path)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666))?;
        Listener::Unix(l)
    } else {
        Listener::Tcp(tokio::net::TcpListener::bind(listen).await?)
    };
    Ok(tokio::spawn(accept_loop(l, metrics)))
}

async fn accept_loop(l: Listener, metrics: Arc<Metrics>) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = Duration::ZERO;
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let m = metrics.clone();
        let accepted = match &l {
            Listener::Unix(l) => l.accept().await.map(|(s, _)| {
                tokio::spawn(async move {
                    answer(s, m).await;
                    drop(permit);
                });
            }),
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
                tokio::spawn(async move {
                    answer(s, m).await;
                    drop(permit);
                });
            }),
        };
        match accepted {
            Ok(()) => backoff = Duration::ZERO,
            Err(e) => {
                if backoff.is_zero() {
                    tracing::warn!("metrics: accept failed: {e}; backing off and accepting again");
                }
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    m: Arc<Metrics>,
) {
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    let read = tokio::time::timeout(Duration::from_secs(2), async {
        while n < buf.len() {
            match s.read(&mut buf[n..]).await {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    if read.is_err() {
        return;
    }
    let req = String::from_utf8_lossy(&buf[..n]);
    let first = req.lines().next().unwrap_or("");
    let (status, ctype, body) = if first.starts_with("GET /metrics ") || first == "GET /metrics" {
        (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            m.encode(),
        )
    } else {
        ("404 Not Found", "text/plain", "try /metrics\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(body.as_bytes()).await;
        let _ = s.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textfile_format_and_seed_round_trip() {
        let m = Metrics::new();
        let a = Action::Delete {
            unit: None,
            stream: "s".into(),
            group: "g\"x".into(),
            consumer: "c".into(),
            min_idle_ms: 0,
            reason: String::new(),
        };
        m.record(&a, 1, true);
        m.record(&a, 1, true);
        let om = m.encode();
        assert!(
            om.contains("quantum_stream_recovery_deleted_total{stream=\"s\",group=\"g\\\"x\"} 2"),
            "{om}"
        );
        assert!(om.ends_with("# EOF\n"));
        let text = m.encode_textfile();
        assert!(
            text.contains("# TYPE quantum_stream_recovery_deleted_total counter"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE quantum_watchdog_build_info gauge"),
            "{text}"
        );
        assert!(!text.contains("# EOF"));
        let dir = std::env::temp_dir().join(format!("qw-textfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        m.write_recover_textfile(&dir).unwrap();
        let rec = std::fs::read_to_string(dir.join("quantum-watchdog-recover.prom")).unwrap();
        assert!(
            rec.contains("quantum_stream_recovery_deleted_total{source=\"recover\",stream=\"s\""),
            "{rec}"
        );
        assert!(!rec.contains("quantum_watchdog_up"), "{rec}");
        std::fs::remove_dir_all(&dir).unwrap();
        let m2 = Metrics::new();
        m2.seed(&rec);
        m2.record(&a, 1, true);
        assert!(
            m2.encode()
                .contains("quantum_stream_recovery_deleted_total{stream=\"s\",group=\"g\\\"x\"} 3")
        );
    }
}
