//! Recording: counters when things happen, gauges built from the latest cycle when someone
//! reads them.

use crate::model::hash::HashMap;
use std::time::Duration;

use crate::config::{ClaimPolicy, Config};
use crate::model::{ConsumerInfo, GroupInfo, GroupKey, Snapshot};
use crate::policy::{Action, Decision, Verdict};

use super::textfile::parse_samples;
use super::{Metrics, Observed, l};

impl Metrics {
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
        if snap.fleet_read().is_some_and(|r| r.is_err()) {
            self.fleet_errors.inc();
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
        self.zero_restarts(&d);
        let host = l(&[("host", &snap.hostname)]);
        if self.host.get(&host).is_none() {
            self.host.clear();
            self.host.get_or_create(&host).set(1);
        }
        let mut latest = self.latest.lock().unwrap();
        let watch = match latest.take() {
            Some(o) if same_watch(&o.watch, cfg) => o.watch,
            _ => {
                self.zero_bindings(cfg);
                watch_of(cfg)
            }
        };
        *latest = Some(Observed {
            snap,
            d,
            watch,
            max_series: cfg.metrics.max_consumer_series,
            fresh: true,
        });
    }

    /// Creates each reported unit's restart counters at 0, once: `increase()` over a counter
    /// that first appears with its first restart reads 0, and the restart alert never fires.
    /// A unit no longer reported (a template's instance gone) loses the series still at 0.
    fn zero_restarts(&self, d: &Decision) {
        let mut seen = self.units_seen.lock().unwrap();
        // More names seen than reported: some are gone (a replaced one shows up a cycle later,
        // once its successor has been added).
        if seen.len() > d.units.len() {
            self.prune_restarts(&mut seen, d);
        }
        for u in &d.units {
            if seen.contains(&u.unit) {
                continue;
            }
            for cause in crate::policy::RestartCause::ALL {
                let labels = l(&[("unit", &u.unit), ("reason", cause.as_str())]);
                let _ = self.restarts.get_or_create(&labels);
            }
            seen.insert(u.unit.clone());
        }
    }

    /// Removes the zero restart series of units no longer reported (a counter that counted
    /// something stays: it is history).
    fn prune_restarts(&self, seen: &mut crate::model::hash::HashSet<String>, d: &Decision) {
        let now: crate::model::hash::HashSet<&str> =
            d.units.iter().map(|u| u.unit.as_str()).collect();
        seen.retain(|unit| {
            if now.contains(unit.as_str()) {
                return true;
            }
            for cause in crate::policy::RestartCause::ALL {
                let labels = l(&[("unit", unit), ("reason", cause.as_str())]);
                if self.restarts.get(&labels).is_some_and(|c| c.get() == 0) {
                    self.restarts.remove(&labels);
                }
            }
            false
        });
    }

    /// Creates every binding's action counters at 0 (claims, requeues, quarantines,
    /// deletions, dead letters, ghosts), for the same reason.
    pub fn zero_bindings(&self, cfg: &Config) {
        for w in &cfg.watch {
            let (unit, stream, group) = (w.unit.as_str(), &*w.key().stream, &*w.key().group);
            let policy = claim_label(w.params.claim_policy);
            let usg = l(&[("unit", unit), ("stream", stream), ("group", group)]);
            let sg = l(&[("stream", stream), ("group", group)]);
            let _ = self.claimed.get_or_create(&l(&[
                ("unit", unit),
                ("stream", stream),
                ("group", group),
                ("policy", policy),
            ]));
            let _ = self.requeued.get_or_create(&usg);
            let _ = self.quarantined.get_or_create(&usg);
            let _ = self.deleted.get_or_create(&sg);
            let _ = self.dead_lettered.get_or_create(&sg);
            let _ = self.ghosts.get_or_create(&sg);
        }
    }

    /// Rebuilds the gauges from the latest cycle, if it has not been used yet.
    pub(super) fn fill_gauges(&self) {
        let mut latest = self.latest.lock().unwrap();
        let Some(o) = latest.as_mut().filter(|o| o.fresh) else {
            return;
        };
        o.fresh = false;
        self.fill_units(&o.d);
        self.fill_groups(o);
        self.fill_flow_and_keys(&o.d);
        self.fill_fleet(&o.d);
    }

    /// `[fleet]`: hosts by state, and each host's heartbeat age.
    fn fill_fleet(&self, d: &Decision) {
        self.fleet_hosts.clear();
        self.heartbeat_age.clear();
        self.fleet_shared.clear();
        for h in d.fleet.iter().filter(|h| h.shared) {
            self.fleet_shared
                .get_or_create(&l(&[("host", &h.host)]))
                .set(1);
        }
        if d.fleet.is_empty() {
            return;
        }
        for state in crate::policy::HostState::ALL {
            let n = d.fleet.iter().filter(|h| h.state == state).count();
            self.fleet_hosts
                .get_or_create(&l(&[("state", state.as_str())]))
                .set(n as i64);
        }
        for h in &d.fleet {
            self.heartbeat_age
                .get_or_create(&l(&[("host", &h.host)]))
                .set(h.age_ms as f64 / 1000.0);
        }
    }

    fn fill_units(&self, d: &Decision) {
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
        self.restart_held.clear();
        for h in &d.held {
            if let Action::Restart { unit, .. } = &h.action {
                self.restart_held
                    .get_or_create(&l(&[("unit", unit)]))
                    .set(1);
            }
        }
    }

    /// Groups and their consumers; consumer series capped at `max_consumer_series`.
    fn fill_groups(&self, o: &Observed) {
        self.consumer_idle.clear();
        self.consumer_inactive.clear();
        self.consumer_pending.clear();
        self.group_lag.clear();
        self.group_pending.clear();
        let Ok(r) = &o.snap.redis else { return };
        let mut series = 0usize;
        let mut dropped = 0u64;
        let unit_of: HashMap<&GroupKey, &str> =
            o.watch.iter().map(|(k, u)| (k, u.as_str())).collect();
        for (k, g) in &r.groups {
            let Ok(g) = g else { continue };
            self.group_gauges(&k.stream, &g.group);
            let unit = unit_of.get(k).copied().unwrap_or("");
            for c in &g.consumers {
                if series >= o.max_series {
                    dropped += 1;
                    continue;
                }
                series += 1;
                self.consumer_gauges(unit, k, c);
            }
        }
        for (st, r) in &r.streams {
            for g in r.iter().flat_map(|(_, groups)| groups) {
                self.group_gauges(st, g);
            }
        }
        self.series_dropped.inc_by(dropped);
    }

    fn group_gauges(&self, stream: &str, g: &GroupInfo) {
        let gl = l(&[("stream", stream), ("group", &g.name)]);
        if let Some(lag) = g.lag {
            self.group_lag.get_or_create(&gl).set(lag as i64);
        }
        self.group_pending.get_or_create(&gl).set(g.pending as i64);
    }

    fn consumer_gauges(&self, unit: &str, k: &GroupKey, c: &ConsumerInfo) {
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

    fn fill_flow_and_keys(&self, d: &Decision) {
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
        let (by, first) = match seen.get_mut(stream) {
            // The counter starts at the stream's own count, then follows it; a stream that was
            // recreated (count went down) starts counting again from its new count.
            None => {
                seen.insert(stream.to_string(), now);
                (now, true)
            }
            Some(p) => {
                let by = if now >= *p { now - *p } else { now };
                *p = now;
                (by, false)
            }
        };
        // A series exists from the stream's first sight; one that did not move is not touched.
        if by > 0 || first {
            self.entries_added
                .get_or_create(&l(&[("stream", stream)]))
                .inc_by(by);
        }
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
                unit, key, policy, ..
            } if ok => {
                let (stream, group) = (&key.stream, &key.group);
                let p = claim_label(*policy);
                self.claimed
                    .get_or_create(&l(&[
                        ("unit", unit),
                        ("stream", stream),
                        ("group", group),
                        ("policy", p),
                    ]))
                    .inc_by(moved);
            }
            Action::Requeue { unit, key, .. } if ok => {
                let (stream, group) = (&key.stream, &key.group);
                self.requeued
                    .get_or_create(&l(&[("unit", unit), ("stream", stream), ("group", group)]))
                    .inc_by(moved);
            }
            Action::DeadLetter { key, .. } if ok && moved > 0 => {
                let (stream, group) = (&key.stream, &key.group);
                self.dead_lettered
                    .get_or_create(&l(&[("stream", stream), ("group", group)]))
                    .inc();
            }
            Action::Quarantine { unit, key, .. } if ok && moved > 0 => {
                let (stream, group) = (&key.stream, &key.group);
                self.quarantined
                    .get_or_create(&l(&[("unit", unit), ("stream", stream), ("group", group)]))
                    .inc();
            }
            Action::Delete { key, .. } if ok && moved > 0 => {
                let (stream, group) = (&key.stream, &key.group);
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
}

/// The `policy` label of claimed entries: `park`, else `handoff` (a requeue's claims count
/// as a handoff; its requeues have their own counter).
fn claim_label(p: ClaimPolicy) -> &'static str {
    if p == ClaimPolicy::Park {
        "park"
    } else {
        "handoff"
    }
}

/// Each binding's group and unit, in `cfg`'s order.
fn watch_of(cfg: &Config) -> Vec<(GroupKey, String)> {
    cfg.watch
        .iter()
        .map(|w| (w.key().clone(), w.unit.clone()))
        .collect()
}

/// The bindings' groups and units are still `cfg`'s, in its order.
fn same_watch(watch: &[(GroupKey, String)], cfg: &Config) -> bool {
    watch.len() == cfg.watch.len()
        && watch
            .iter()
            .zip(&cfg.watch)
            .all(|((k, u), w)| k == w.key() && u == &w.unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added_line(m: &Metrics, stream: &str) -> Option<String> {
        let prefix = format!("quantum_watchdog_stream_entries_added_total{{stream=\"{stream}\"}} ");
        m.encode()
            .lines()
            .find(|l| l.starts_with(&prefix))
            .map(|l| l[prefix.len()..].to_string())
    }

    /// The counter starts at the stream's count, follows it, starts again from a recreated
    /// stream's count, and exists from a stream's first sight even at 0.
    #[test]
    fn entries_added_follows_each_stream() {
        let m = Metrics::new();
        for (stream, added, total) in [
            ("a", Some(10), "10"),
            ("a", Some(10), "10"),
            ("a", Some(15), "15"),
            ("a", None, "15"),
            ("a", Some(3), "18"),
            ("b", Some(0), "0"),
            ("b", Some(0), "0"),
            ("b", Some(2), "2"),
        ] {
            m.added(stream, added);
            assert_eq!(
                added_line(&m, stream).as_deref(),
                Some(total),
                "{stream} {added:?}"
            );
        }
        assert_eq!(added_line(&m, "c"), None);
    }

    /// 200 consumers with 100 KiB names: each series' label stays within LABEL_MAX, every
    /// name is still its own series, and the scrape stays small (it was 33 MiB).
    #[test]
    fn long_consumer_names_are_bounded() {
        let m = Metrics::new();
        let k = GroupKey {
            stream: "s".into(),
            group: "g".into(),
        };
        for i in 0..200 {
            let name = format!("{i:03}{}", "é".repeat(50 * 1024));
            let c = ConsumerInfo {
                name: name.as_str().into(),
                pending: 1,
                idle_ms: 5,
                inactive_ms: Some(5),
            };
            m.consumer_gauges("quantum-a.service", &k, &c);
        }
        let text = m.encode();
        println!(
            "MEASURE scrape with 200 consumers of 100 KiB names: {} bytes",
            text.len()
        );
        assert!(text.len() < 256 * 1024, "{} bytes", text.len());
        let pending: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("quantum_watchdog_consumer_pending{"))
            .collect();
        assert_eq!(pending.len(), 200);
        for (i, line) in pending.iter().enumerate() {
            let value = line.split("consumer=\"").nth(1).unwrap();
            let value = &value[..value.find('"').unwrap()];
            assert!(value.len() <= super::super::LABEL_MAX, "{value}");
            assert!(value.contains('~'), "{value}");
            assert!(pending.iter().skip(i + 1).all(|o| !o.contains(value)));
        }
        use super::super::bounded;
        assert_eq!(bounded("short"), "short");
        let long = "x".repeat(300);
        assert_eq!(bounded(&long), bounded(&long));
        // A name that poses as another's shortened form is no longer that form.
        let posing = bounded(&long);
        assert_eq!(posing.len(), 128);
        assert_ne!(bounded(&posing), posing);
        assert!(bounded(&posing).len() <= 128);
        assert_eq!(bounded("a~0123456789abcdeg"), "a~0123456789abcdeg");
    }

    fn config(watch: &[(&str, &str)]) -> Config {
        let toml: String = watch
            .iter()
            .map(|(unit, stream)| {
                format!(
                    "[[watch]]\nunit = \"{unit}\"\nstream = \"{stream}\"\ngroup = \"g\"\n\
                     consumer = \"c-{{pid}}\"\n"
                )
            })
            .collect();
        crate::config::from_fragments(&[("t.toml".into(), toml)]).unwrap()
    }

    /// The bindings kept for the unit labels are rebuilt whenever the configuration's differ.
    #[test]
    fn watch_kept_only_while_the_same() {
        let ab = config(&[("quantum-a.service", "s1"), ("quantum-b.service", "s2")]);
        let kept = watch_of(&ab);
        assert!(same_watch(&kept, &ab));
        for other in [
            config(&[("quantum-b.service", "s2"), ("quantum-a.service", "s1")]),
            config(&[("quantum-a.service", "s1"), ("quantum-c.service", "s2")]),
            config(&[("quantum-a.service", "s1"), ("quantum-b.service", "s3")]),
            config(&[("quantum-a.service", "s1")]),
        ] {
            assert!(!same_watch(&kept, &other));
        }
    }

    /// Every counter of a binding and of a reported unit exists at 0 from the first cycle, so
    /// `increase()` sees the first restart, handoff or quarantine; a restart then counts 1.
    #[test]
    fn counters_exist_at_zero_before_their_first_event() {
        let m = Metrics::new();
        let cfg = config(&[("quantum-a.service", "s1")]);
        let snap = Snapshot {
            now_usec: 1,
            mono_usec: 1,
            hostname: "h".into(),
            self_unit: None,
            units: Ok(Vec::new()),
            redis: Ok(Default::default()),
            live_pids: Default::default(),
            pid_units: Default::default(),
            utc_offset_secs: 0,
            holds: Default::default(),
        };
        let mut d = crate::policy::decide(&cfg, &snap, &mut Default::default());
        let p = crate::config::Params::default();
        d.units = vec![crate::policy::units::unknown_unit(
            "quantum-a.service",
            &p,
            "-",
        )];
        m.observe(&cfg, snap.clone(), d.clone(), Duration::from_millis(1));
        let text = m.encode();
        for want in [
            "quantum_watchdog_host_info{host=\"h\"} 1",
            "quantum_watchdog_restarts_total{unit=\"quantum-a.service\",reason=\"idle-with-work\"} 0",
            "quantum_watchdog_restarts_total{unit=\"quantum-a.service\",reason=\"not-consuming\"} 0",
            "quantum_stream_recovery_claimed_total{unit=\"quantum-a.service\",stream=\"s1\",group=\"g\",policy=\"handoff\"} 0",
            "quantum_watchdog_quarantined_total{unit=\"quantum-a.service\",stream=\"s1\",group=\"g\"} 0",
            "quantum_stream_recovery_deleted_total{stream=\"s1\",group=\"g\"} 0",
            "quantum_watchdog_requeued_total{unit=\"quantum-a.service\",stream=\"s1\",group=\"g\"} 0",
        ] {
            assert!(text.contains(want), "missing {want}:\n{text}");
        }
        m.record(
            &Action::Restart {
                unit: "quantum-a.service".into(),
                cause: crate::policy::RestartCause::IdleWithWork,
                reason: String::new(),
                streams: Vec::new(),
            },
            0,
            true,
        );
        m.observe(&cfg, snap.clone(), d.clone(), Duration::from_millis(1));
        assert!(m.encode().contains(
            "quantum_watchdog_restarts_total{unit=\"quantum-a.service\",reason=\"idle-with-work\"} 1"
        ));
        // Instances come and go: a unit no longer reported keeps only what it counted.
        for i in 0..50 {
            let mut d = d.clone();
            let name = format!("quantum-tpl@{i}.service");
            d.units = vec![crate::policy::units::unknown_unit(&name, &p, "-")];
            m.observe(&cfg, snap.clone(), d, Duration::from_millis(1));
        }
        let text = m.encode();
        let zero_tpl = text
            .lines()
            .filter(|l| l.starts_with("quantum_watchdog_restarts_total{unit=\"quantum-tpl@"))
            .count();
        assert_eq!(zero_tpl, 4, "only the last instance's series: {zero_tpl}");
        assert!(text.contains(
            "quantum_watchdog_restarts_total{unit=\"quantum-a.service\",reason=\"idle-with-work\"} 1"
        ));
        assert!(!text.contains(
            "quantum_watchdog_restarts_total{unit=\"quantum-a.service\",reason=\"not-consuming\"}"
        ));
    }
}
