//! Prometheus metrics: served at `/metrics` on `metrics.listen` (a unix socket by default, or
//! `HOST:PORT`, see [`serve`]) and written to `metrics.textfile_dir` for node_exporter's
//! textfile collector (see [`textfile`]).
//!
//! Cardinality is bounded: labels are units, streams, groups and consumers of watched groups
//! only, never message IDs; consumer series are capped at `metrics.max_consumer_series`, and
//! what the cap drops is counted; a label value is at most [`LABEL_MAX`] bytes.

pub mod observe;
pub mod serve;
pub mod textfile;

use crate::model::hash::HashMap;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::model::{GroupKey, Snapshot};
use crate::policy::Decision;

pub use serve::serve;
pub use textfile::{AGENT_TEXTFILE, RECOVER_TEXTFILE, parse_samples, to_prometheus_text};

/// Label pairs of one series.
pub type Labels = Vec<(String, String)>;
type FGauge = Gauge<f64, AtomicU64>;

fn l(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), bounded(v)))
        .collect()
}

/// The longest label value exported, in bytes.
pub const LABEL_MAX: usize = 128;

/// A label value of at most [`LABEL_MAX`] bytes. Consumer names are chosen by whoever may
/// read a watched stream, and 200 names of 100 KiB made one scrape 33 MiB: a longer value
/// keeps its first bytes and ends in `~` and a hash of the whole, so two long names stay two
/// series, and the same name is the same series after a restart (FNV-1a, not a seeded hash).
/// A short value that ends as a shortened one does (`~` and 16 hex digits) is hashed too, so
/// no name can pose as another's shortened form.
pub fn bounded(v: &str) -> String {
    if v.len() <= LABEL_MAX && !looks_bounded(v) {
        return v.to_string();
    }
    let mut cut = v.len().min(LABEL_MAX - 17);
    while !v.is_char_boundary(cut) {
        cut -= 1;
    }
    format!(
        "{}~{:016x}",
        &v[..cut],
        crate::model::hash::fnv1a(v.as_bytes())
    )
}

/// Whether `v` ends in `~` and 16 lowercase hex digits, as [`bounded`] ends what it shortens.
fn looks_bounded(v: &str) -> bool {
    let b = v.as_bytes();
    b.len() >= 17
        && b[b.len() - 17] == b'~'
        && b[b.len() - 16..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// The latest cycle, kept for building gauges when they are read.
struct Observed {
    snap: Snapshot,
    d: Decision,
    /// Each binding's group and unit, in the configuration's order.
    watch: Vec<(GroupKey, String)>,
    max_series: usize,
    fresh: bool,
}

/// Every metric the agent exports.
pub struct Metrics {
    registry: Registry,
    latest: Mutex<Option<Observed>>,
    claimed: Family<Labels, Counter>,
    ghosts: Family<Labels, Counter>,
    deleted: Family<Labels, Counter>,
    restarts: Family<Labels, Counter>,
    requeued: Family<Labels, Counter>,
    dead_lettered: Family<Labels, Counter>,
    quarantined: Family<Labels, Counter>,
    verdict: Family<Labels, Gauge>,
    consumer_idle: Family<Labels, FGauge>,
    consumer_inactive: Family<Labels, FGauge>,
    consumer_pending: Family<Labels, Gauge>,
    group_lag: Family<Labels, Gauge>,
    group_pending: Family<Labels, Gauge>,
    entries_added: Family<Labels, Counter>,
    added_seen: Mutex<HashMap<String, u64>>,
    budget_remaining: Family<Labels, Gauge>,
    restart_held: Family<Labels, Gauge>,
    stalled: Family<Labels, Gauge>,
    key_value: Family<Labels, FGauge>,
    key_limit: Family<Labels, FGauge>,
    fleet_hosts: Family<Labels, Gauge>,
    fleet_shared: Family<Labels, Gauge>,
    fleet_errors: Counter,
    heartbeat_age: Family<Labels, FGauge>,
    up: Gauge,
    host: Family<Labels, Gauge>,
    cycle: Histogram,
    last_cycle: FGauge,
    redis_errors: Counter,
    dbus_errors: Counter,
    series_dropped: Counter,
    round_trips: Counter,
    round_trips_seen: Mutex<u64>,
    /// Units whose restart counters exist (at 0 until a restart).
    units_seen: Mutex<crate::model::hash::HashSet<String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Every metric, registered.
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::default(),
            latest: Mutex::new(None),
            claimed: Family::default(),
            ghosts: Family::default(),
            deleted: Family::default(),
            restarts: Family::default(),
            requeued: Family::default(),
            dead_lettered: Family::default(),
            quarantined: Family::default(),
            verdict: Family::default(),
            consumer_idle: Family::default(),
            consumer_inactive: Family::default(),
            consumer_pending: Family::default(),
            group_lag: Family::default(),
            group_pending: Family::default(),
            entries_added: Family::default(),
            added_seen: Mutex::new(HashMap::default()),
            budget_remaining: Family::default(),
            restart_held: Family::default(),
            stalled: Family::default(),
            key_value: Family::default(),
            key_limit: Family::default(),
            fleet_hosts: Family::default(),
            fleet_shared: Family::default(),
            fleet_errors: Counter::default(),
            heartbeat_age: Family::default(),
            up: Gauge::default(),
            host: Family::default(),
            cycle: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            last_cycle: FGauge::default(),
            redis_errors: Counter::default(),
            dbus_errors: Counter::default(),
            series_dropped: Counter::default(),
            round_trips: Counter::default(),
            round_trips_seen: Mutex::new(0),
            units_seen: Mutex::new(Default::default()),
        };
        let mut r = Registry::default();
        m.register_recovery(&mut r);
        m.register_units_and_groups(&mut r);
        m.register_agent(&mut r);
        m.registry = r;
        m
    }

    /// What recovery did (counters get their `_total` suffix from the encoder).
    fn register_recovery(&self, r: &mut Registry) {
        let help = "Pending entries claimed from dead consumers (handoff or park)";
        r.register(
            "quantum_stream_recovery_claimed",
            help,
            self.claimed.clone(),
        );
        let help = "Pending entries of dead consumers no longer in the stream (left the pending list, nothing to move)";
        r.register("quantum_stream_recovery_ghosts", help, self.ghosts.clone());
        let help = "Dead or zombie consumers deleted";
        r.register(
            "quantum_stream_recovery_deleted",
            help,
            self.deleted.clone(),
        );
        let help = "Restarts issued, by unit and cause";
        r.register("quantum_watchdog_restarts", help, self.restarts.clone());
        let help = "Entries requeued (copied and the original acknowledged)";
        r.register("quantum_watchdog_requeued", help, self.requeued.clone());
        let help = "Entries moved to a dead-letter stream";
        r.register(
            "quantum_watchdog_dead_lettered",
            help,
            self.dead_lettered.clone(),
        );
        let help =
            "Entries a unit kept dying on, moved to the dead-letter stream (poison_after_crashes)";
        r.register(
            "quantum_watchdog_quarantined",
            help,
            self.quarantined.clone(),
        );
    }

    /// What the units, groups, consumers, pipelines and keys look like.
    fn register_units_and_groups(&self, r: &mut Registry) {
        let help = "1 for the unit's current verdict, 0 for the others";
        r.register("quantum_watchdog_unit_verdict", help, self.verdict.clone());
        let help = "XINFO CONSUMERS idle";
        r.register(
            "quantum_watchdog_consumer_idle_seconds",
            help,
            self.consumer_idle.clone(),
        );
        let help = "XINFO CONSUMERS inactive (Redis 7.2+)";
        let m = self.consumer_inactive.clone();
        r.register("quantum_watchdog_consumer_inactive_seconds", help, m);
        let help = "Entries pending on the consumer";
        r.register(
            "quantum_watchdog_consumer_pending",
            help,
            self.consumer_pending.clone(),
        );
        let help = "Entries not yet delivered to the group (absent when Redis reports null)";
        r.register("quantum_watchdog_group_lag", help, self.group_lag.clone());
        let help = "Entries delivered to the group and not acknowledged";
        r.register(
            "quantum_watchdog_group_pending",
            help,
            self.group_pending.clone(),
        );
        let help = "Entries added to the stream (XINFO STREAM entries-added)";
        let m = self.entries_added.clone();
        r.register("quantum_watchdog_stream_entries_added", help, m);
        let help = "Restarts left in the unit's budget window";
        let m = self.budget_remaining.clone();
        r.register("quantum_watchdog_restart_budget_remaining", help, m);
        let help =
            "1 while a restart the unit needs is held back (a pause, a window, a deploy under way)";
        let m = self.restart_held.clone();
        r.register("quantum_watchdog_restart_held", help, m);
        self.register_flow_and_fleet(r);
    }

    /// Pipelines, key gauges and the fleet.
    fn register_flow_and_fleet(&self, r: &mut Registry) {
        let help = "1 when the group's stage of a pipeline is stalled";
        r.register(
            "quantum_watchdog_pipeline_stalled",
            help,
            self.stalled.clone(),
        );
        let help = "Value of a watched Redis key ([[gauge]])";
        r.register("quantum_watchdog_key_value", help, self.key_value.clone());
        let help = "Limit of a watched Redis key ([[gauge]])";
        r.register("quantum_watchdog_key_limit", help, self.key_limit.clone());
        let help = "Hosts of the fleet by state: alive (heartbeat present), silent, dead ([fleet])";
        r.register(
            "quantum_watchdog_fleet_hosts",
            help,
            self.fleet_hosts.clone(),
        );
        let help = "Seconds since a host's last heartbeat, by the Redis server's clock ([fleet])";
        let m = self.heartbeat_age.clone();
        r.register("quantum_watchdog_fleet_heartbeat_age_seconds", help, m);
        let help = "1 for a host name two agents write under (a cloned machine): nothing is taken from its consumers ([fleet])";
        let m = self.fleet_shared.clone();
        r.register("quantum_watchdog_fleet_host_name_shared", help, m);
        let help = "Cycles in which the fleet's heartbeats could not be read ([fleet])";
        let m = self.fleet_errors.clone();
        r.register("quantum_watchdog_fleet_errors", help, m);
    }

    /// The agent itself.
    fn register_agent(&self, r: &mut Registry) {
        let help = "1 when systemd and Redis were both readable in the last cycle";
        r.register("quantum_watchdog_up", help, self.up.clone());
        let help = "Duration of one complete cycle";
        r.register(
            "quantum_watchdog_cycle_duration_seconds",
            help,
            self.cycle.clone(),
        );
        let help = "When the last cycle completed (Unix time)";
        let m = self.last_cycle.clone();
        r.register("quantum_watchdog_last_cycle_timestamp_seconds", help, m);
        let help = "Cycles in which Redis could not be read";
        r.register(
            "quantum_watchdog_redis_errors",
            help,
            self.redis_errors.clone(),
        );
        let help = "Cycles in which systemd could not be asked";
        r.register(
            "quantum_watchdog_dbus_errors",
            help,
            self.dbus_errors.clone(),
        );
        let help = "Consumer series left out by metrics.max_consumer_series";
        let m = self.series_dropped.clone();
        r.register("quantum_watchdog_consumer_series_dropped", help, m);
        let version = Info::new(vec![(
            "version".to_string(),
            env!("CARGO_PKG_VERSION").to_string(),
        )]);
        r.register("quantum_watchdog_build", "Build information", version);
        let help =
            "The host name the agent watches under (1); alerts take their host label from it";
        r.register("quantum_watchdog_host_info", help, self.host.clone());
        let help = "Requests sent to Redis (a pipeline counts once)";
        r.register(
            "quantum_watchdog_redis_round_trips",
            help,
            self.round_trips.clone(),
        );
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Action;

    #[test]
    fn textfile_format_and_seed_round_trip() {
        let m = Metrics::new();
        let a = Action::Delete {
            unit: None,
            key: GroupKey {
                stream: "s".into(),
                group: "g\"x".into(),
            },
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
        let rec = m.recover_textfile();
        assert!(
            rec.contains("quantum_stream_recovery_deleted_total{source=\"recover\",stream=\"s\""),
            "{rec}"
        );
        assert!(!rec.contains("quantum_watchdog_up"), "{rec}");
        let m2 = Metrics::new();
        m2.seed(&rec);
        m2.record(&a, 1, true);
        assert!(
            m2.encode()
                .contains("quantum_stream_recovery_deleted_total{stream=\"s\",group=\"g\\\"x\"} 3")
        );
    }
}
