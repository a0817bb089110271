//! Layering: fragments merged in order over the built-in defaults, key by key; `[[watch]]`
//! entries keyed by `(unit, stream, group)`.

use std::collections::HashMap;

use super::fragments::{RawFile, RawParams, RawRedis, RawWatch, parse_fragment};
use super::validate::{
    validate_dead_letter, validate_fleet_streams, validate_params, validate_top, validate_watch,
};
use super::{Config, ConfigError, Params, RedisConfig, SentinelConfig};

/// Merges fragments `(file name, text)` in order over the built-in defaults and validates.
pub fn from_fragments(fragments: &[(String, String)]) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    let mut watches = Watches::default();
    let mut defaults_file = String::from("<built-in defaults>");
    for (file, text) in fragments {
        let mut raw = parse_fragment(file, text)?;
        if raw.defaults.is_some() {
            defaults_file = file.clone();
        }
        for w in std::mem::take(&mut raw.watch) {
            watches.put(file, w);
        }
        merge_file(&mut cfg, raw);
    }
    // A standalone rediss:// URL is TLS: say so where check-config prints it.
    if cfg.redis.url.starts_with("rediss://") {
        cfg.redis.tls.enabled = true;
    }
    let last = fragments
        .last()
        .map(|(f, _)| f.clone())
        .unwrap_or_else(|| "<built-in defaults>".into());
    validate_params(&defaults_file, "defaults", &cfg.defaults)?;
    validate_top(&last, &cfg)?;
    for (i, (file, w)) in watches.list.into_iter().enumerate() {
        let watch = validate_watch(&file, i, w, &cfg)?;
        cfg.watch.push(watch);
    }
    validate_dead_letter(&last, &cfg)?;
    validate_fleet_streams(&last, &cfg)?;
    Ok(cfg)
}

/// `[[watch]]` entries in order, each with the file that defined it (for error messages); a
/// later entry with the same `(unit, stream, group)` replaces the earlier one in place.
#[derive(Default)]
struct Watches {
    list: Vec<(String, RawWatch)>,
    index: HashMap<(String, String, String), usize>,
}

impl Watches {
    fn put(&mut self, file: &str, w: RawWatch) {
        let key = (w.unit.clone(), w.stream.clone(), w.group.clone());
        match self.index.get(&key) {
            Some(&i) => self.list[i] = (file.to_string(), w),
            None => {
                self.index.insert(key, self.list.len());
                self.list.push((file.to_string(), w));
            }
        }
    }
}

/// Applies one fragment's keys (all but `[[watch]]`) over what came before.
fn merge_file(cfg: &mut Config, raw: RawFile) {
    set(&mut cfg.mode, raw.mode);
    set(&mut cfg.interval, raw.interval);
    set(&mut cfg.units, raw.units);
    set(&mut cfg.dbus_timeout, raw.dbus_timeout);
    set(&mut cfg.deploy_hold, raw.deploy_hold);
    if raw.state_dir.is_some() {
        cfg.state_dir = raw.state_dir;
    }
    if let Some(m) = raw.metrics {
        set(&mut cfg.metrics.listen, m.listen);
        if m.textfile_dir.is_some() {
            cfg.metrics.textfile_dir = m.textfile_dir;
        }
        set(&mut cfg.metrics.max_consumer_series, m.max_consumer_series);
    }
    if let Some(f) = raw.fleet {
        set(&mut cfg.fleet.enabled, f.enabled);
        set(&mut cfg.fleet.host_dead_after, f.host_dead_after);
    }
    if let Some(r) = raw.redis {
        merge_redis(&mut cfg.redis, r);
    }
    // Lists of whole tables: a later fragment that names any replaces them all.
    if !raw.pipeline.is_empty() {
        cfg.pipeline = raw.pipeline;
    }
    if !raw.gauge.is_empty() {
        cfg.gauge = raw.gauge;
    }
    if !raw.flag.is_empty() {
        cfg.flag = raw.flag;
    }
    if !raw.window.is_empty() {
        cfg.window = raw.window;
    }
    if raw.pause_dir.is_some() {
        cfg.pause_dir = raw.pause_dir;
    }
    set(&mut cfg.operators_group, raw.operators_group);
    if let Some(d) = &raw.defaults {
        cfg.defaults.apply(d);
    }
}

/// `[redis]`, `[redis.tls]`, `[redis.sentinel]`, key by key.
fn merge_redis(c: &mut RedisConfig, r: RawRedis) {
    if r.url.is_some() {
        c.url_set = true;
    }
    set(&mut c.url, r.url);
    set_some(&mut c.username, r.username);
    set_some(&mut c.password_file, r.password_file);
    set(&mut c.timeout, r.timeout);
    set(&mut c.cluster, r.cluster);
    set_some(&mut c.dead_letter_stream, r.dead_letter_stream);
    if let Some(t) = r.tls {
        set(&mut c.tls.enabled, t.enabled);
        set_some(&mut c.tls.ca_file, t.ca_file);
        set_some(&mut c.tls.cert_file, t.cert_file);
        set_some(&mut c.tls.key_file, t.key_file);
        set(&mut c.tls.insecure_skip_verify, t.insecure_skip_verify);
    }
    if let Some(s) = r.sentinel {
        let cur = c.sentinel.get_or_insert_with(SentinelConfig::default);
        set(&mut cur.master, s.master);
        set(&mut cur.nodes, s.nodes);
        set_some(&mut cur.username, s.username);
        set_some(&mut cur.password_file, s.password_file);
    }
}

fn set_some<T>(slot: &mut Option<T>, v: Option<T>) {
    if v.is_some() {
        *slot = v;
    }
}

fn set<T>(slot: &mut T, v: Option<T>) {
    if let Some(v) = v {
        *slot = v;
    }
}

impl Params {
    /// Applies the keys a fragment sets.
    pub(super) fn apply(&mut self, raw: &RawParams) {
        let RawParams {
            hung_after,
            warn_percent,
            startup_grace,
            confirm,
            restart_budget,
            zombie_after,
            claim_policy,
            restart_on_stale_pending,
            dead_letter_after,
            poison_after_crashes,
        } = raw;
        if let Some(v) = hung_after {
            self.hung_after = *v;
        }
        if let Some(v) = warn_percent {
            self.warn_percent = *v;
        }
        if let Some(v) = startup_grace {
            self.startup_grace = *v;
        }
        if let Some(v) = confirm {
            self.confirm = *v;
        }
        if let Some(v) = restart_budget {
            self.restart_budget = *v;
        }
        if let Some(v) = zombie_after {
            self.zombie_after = *v;
        }
        if let Some(v) = claim_policy {
            self.claim_policy = *v;
        }
        if let Some(v) = restart_on_stale_pending {
            self.restart_on_stale_pending = *v;
        }
        if let Some(v) = dead_letter_after {
            self.dead_letter_after = Some(*v);
        }
        if let Some(v) = poison_after_crashes {
            self.poison_after_crashes = Some(*v);
        }
    }
}
