//! Configuration: TOML fragments layered like systemd's own configuration.
//!
//! Over the built-in defaults (later wins, key by key):
//! 1. the main file: the first of `/etc/quantum-watchdog/config.toml`,
//!    `/run/quantum-watchdog/config.toml`, `/usr/lib/quantum-watchdog/config.toml` that exists;
//! 2. the drop-ins: every `*.toml` of `/usr/lib/quantum-watchdog/config.d/`,
//!    `/run/quantum-watchdog/config.d/` and `/etc/quantum-watchdog/config.d/`, sorted together by
//!    file name; a file in `/etc` masks the file of the same name in `/run` and `/usr/lib`, one in
//!    `/run` masks the one in `/usr/lib` (an empty file masks it away).
//!
//! `[[watch]]` entries are keyed by `(unit, stream, group)`: a later entry with the same key
//! replaces the earlier one, others are appended.

//!
//! The steps: [`fragments`] (one file as written, every key optional) → [`merge`] (layering,
//! key by key) → [`validate`] (what parses but cannot be meant) → the typed [`Config`]; the
//! files come from [`sources`].

pub mod duration;
pub mod fragments;
pub mod merge;
pub mod redact;
pub mod sources;
pub mod unit_name;
mod validate;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::model::GroupKey;
use crate::model::consumer_name::Template;

pub use duration::{HumanDuration, MAX_DURATION, format_duration, parse_duration};
pub use merge::from_fragments;
pub use redact::redact_url;
pub use sources::{
    CONFIG_DIRS, MODE_ENV, Secrets, apply_mode_env, default_sources, load, read_error_reason,
    read_password, read_secrets,
};
pub use unit_name::check_unit_name;

/// The consumer that the `park` claim policy moves entries to. Never deleted.
pub const PARKED_CONSUMER: &str = "quantum-watchdog:parked";

/// A configuration error: which file, which key, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// A file that cannot be read.
    #[error("{file}: cannot read: {reason}")]
    Read {
        /// The file.
        file: String,
        /// Why, with its owner and mode where that explains it.
        reason: String,
    },
    /// A key with a value that cannot be used.
    #[error("{file}: {key}: {message}")]
    Invalid {
        /// The file that set it.
        file: String,
        /// The key (`watch[2].hung_after`).
        key: String,
        /// What was expected, and what was found.
        message: String,
    },
}

impl ConfigError {
    /// An invalid key.
    pub fn invalid(file: &str, key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            file: file.to_string(),
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Whether the agent acts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Report what would be done; change nothing.
    Observe,
    /// Act: restart, claim, delete.
    Enforce,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Observe => "observe",
            Mode::Enforce => "enforce",
        })
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "observe" => Ok(Mode::Observe),
            "enforce" => Ok(Mode::Enforce),
            other => Err(format!(
                "expected \"observe\" or \"enforce\", found {other:?}"
            )),
        }
    }
}

/// What becomes of a dead consumer's entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClaimPolicy {
    /// Claim a dead consumer's entries to the unit's current live consumer.
    Handoff,
    /// Claim them to [`PARKED_CONSUMER`].
    Park,
    /// Copy each entry to the end of the stream and acknowledge the original (one Lua script).
    Requeue,
}

impl fmt::Display for ClaimPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClaimPolicy::Handoff => "handoff",
            ClaimPolicy::Park => "park",
            ClaimPolicy::Requeue => "requeue",
        })
    }
}

/// At most `max` restarts within `within`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartBudget {
    /// Restarts.
    pub max: u32,
    /// The window.
    pub within: HumanDuration,
}

/// Decision parameters; `[defaults]` and each `[[watch]]` may set them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Params {
    /// No progress this long while work waits: hung.
    pub hung_after: HumanDuration,
    /// Work waits and the consumer made no progress for this share of `hung_after` (in
    /// percent): lagging, a warning before hung. 100: no warning stage.
    pub warn_percent: u32,
    /// After a unit (re)enters active, nothing is judged this long.
    pub startup_grace: HumanDuration,
    /// Consecutive cycles a verdict must hold before a restart.
    pub confirm: u32,
    /// Restarts allowed within a window.
    pub restart_budget: RestartBudget,
    /// A consumer of unknown liveness idle this long and holding nothing is deleted.
    pub zombie_after: HumanDuration,
    /// What becomes of a dead consumer's entries.
    pub claim_policy: ClaimPolicy,
    /// Restart for stale-pending entries too.
    pub restart_on_stale_pending: bool,
    /// Entries delivered this many times without acknowledgement go to `<stream>:dead`
    /// (and the original is acknowledged). Unset: they stay pending and are reported.
    pub dead_letter_after: Option<u32>,
    /// Opt-in: an entry that was the oldest unacknowledged one of the unit's consumer at
    /// this many consecutive deaths of the unit (a crash loop on one entry) is quarantined
    /// to the dead-letter stream. Unset: never.
    pub poison_after_crashes: Option<u32>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            hung_after: HumanDuration(Duration::from_secs(300)),
            warn_percent: 50,
            startup_grace: HumanDuration(Duration::from_secs(60)),
            confirm: 2,
            restart_budget: RestartBudget {
                max: 3,
                within: HumanDuration(Duration::from_secs(1800)),
            },
            zombie_after: HumanDuration(Duration::from_secs(3600)),
            claim_policy: ClaimPolicy::Handoff,
            restart_on_stale_pending: false,
            dead_letter_after: None,
            poison_after_crashes: None,
        }
    }
}

/// `[redis]`: which deployment, and how to authenticate to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedisConfig {
    /// A standalone server: `redis://host:port/db`, `rediss://…` (TLS) or
    /// `unix:///path/to/redis.sock`. A password in the URL is never printed; prefer
    /// `password_file`.
    #[serde(serialize_with = "redact::serialize_redacted_url")]
    pub url: String,
    /// `url` was set by a file (not the built-in default).
    #[serde(skip)]
    pub url_set: bool,
    /// The ACL user (else `default`, or the URL's).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// A file holding the password (or `LoadCredential=redis-password`).
    pub password_file: Option<PathBuf>,
    /// Timeout of every Redis call and of connecting.
    pub timeout: HumanDuration,
    /// TLS: how the server is verified and how the agent shows who it is.
    pub tls: TlsConfig,
    /// A master found through Sentinel, instead of `url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sentinel: Option<SentinelConfig>,
    /// The seed nodes of a Redis Cluster (`host:port`), instead of `url`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cluster: Vec<String>,
    /// Where dead-lettered entries go: `<stream>` is replaced by the stream's name. Default
    /// `<stream>:dead`, and `{<stream>}:dead` on a cluster (the same slot as the stream).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_letter_stream: Option<String>,
}

/// `[redis.tls]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct TlsConfig {
    /// TLS to every Sentinel, data node and cluster node (a standalone `url` says it by its
    /// scheme, `rediss://`).
    pub enabled: bool,
    /// The CA that signed the server's certificate (default: the system's roots), or
    /// `LoadCredential=redis-tls-ca`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// The client certificate for mutual TLS (or `LoadCredential=redis-tls-cert`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// Its key (or `LoadCredential=redis-tls-key`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
    /// Accept any certificate and host name. Never the default; warned about on every start.
    pub insecure_skip_verify: bool,
}

/// `[redis.sentinel]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SentinelConfig {
    /// The master's name the Sentinels know.
    pub master: String,
    /// The Sentinels (`host:port`).
    pub nodes: Vec<String>,
    /// The ACL user on the Sentinels, if they require one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Its password file (or `LoadCredential=redis-sentinel-password`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
}

/// Which Redis the agent talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deployment<'a> {
    /// One server at `url`.
    Standalone(&'a str),
    /// The master Sentinel names.
    Sentinel(&'a SentinelConfig),
    /// A Redis Cluster, from its seeds.
    Cluster(&'a [String]),
}

impl RedisConfig {
    /// The deployment these keys describe.
    pub fn deployment(&self) -> Deployment<'_> {
        if !self.cluster.is_empty() {
            Deployment::Cluster(&self.cluster)
        } else if let Some(s) = &self.sentinel {
            Deployment::Sentinel(s)
        } else {
            Deployment::Standalone(&self.url)
        }
    }

    /// Where the entries of `stream` are dead-lettered: the same slot as the stream on a
    /// cluster (a `{…}` hash tag), whatever the deployment if so configured.
    pub fn dead_letter_key(&self, stream: &str) -> String {
        let template = match (&self.dead_letter_stream, self.deployment()) {
            (Some(t), _) => t.as_str(),
            // A stream that already carries a hash tag keeps its slot with a plain suffix.
            (None, Deployment::Cluster(_)) if has_hash_tag(stream) => "<stream>:dead",
            (None, Deployment::Cluster(_)) => "{<stream>}:dead",
            (None, _) => "<stream>:dead",
        };
        template.replace("<stream>", stream)
    }

    /// One line for `check-config` and the agent's start: the deployment, secrets masked.
    pub fn describe(&self) -> String {
        let tls = if self.tls.enabled { " over TLS" } else { "" };
        match self.deployment() {
            Deployment::Standalone(url) => format!("standalone {}", redact_url(url)),
            Deployment::Sentinel(s) => format!(
                "sentinel master {} via {} sentinel(s){tls}",
                s.master,
                s.nodes.len()
            ),
            Deployment::Cluster(seeds) => format!("cluster of {} seed(s){tls}", seeds.len()),
        }
    }
}

/// A key with a `{…}` hash tag: Redis Cluster hashes only what is between the braces.
pub fn has_hash_tag(key: &str) -> bool {
    key.find('{')
        .is_some_and(|i| key[i + 1..].find('}').is_some_and(|j| j > 0))
}

/// `[fleet]`: many hosts, one Redis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetConfig {
    /// Publish this host's heartbeat and judge other hosts' consumers by theirs.
    pub enabled: bool,
    /// A host whose heartbeat has been gone this long is dead, and so are its consumers.
    pub host_dead_after: HumanDuration,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            enabled: false,
            host_dead_after: HumanDuration(Duration::from_secs(30)),
        }
    }
}

/// The hash tag of the fleet's keys: all in one slot on a cluster.
pub const FLEET_TAG: &str = "{quantum-watchdog}";

impl FleetConfig {
    /// How long a heartbeat lives: three beats, so one late cycle does not silence a host.
    pub fn heartbeat_ttl(interval: Duration) -> Duration {
        interval * 3
    }

    /// How long a recovery lease lives: two cycles, at least two seconds.
    pub fn lease_ttl(interval: Duration) -> Duration {
        (interval * 2).max(Duration::from_secs(2))
    }

    /// The sorted set of hosts that ever beat, scored by the server's time of their last beat.
    pub fn hosts_key() -> String {
        format!("{FLEET_TAG}:hosts")
    }

    /// Per host, `<instance> <as_of_ms> <changed_ms>`: which agent beats, the server's time of
    /// the look its heartbeat speaks of, and when the heartbeat's content last changed — so a
    /// reader copies only the heartbeats that changed since it last read.
    pub fn meta_key() -> String {
        format!("{FLEET_TAG}:meta")
    }

    /// A host's heartbeat.
    pub fn heartbeat_key(host: &str) -> String {
        format!("{FLEET_TAG}:host:{host}")
    }

    /// The recovery lease of a group: in the stream's slot, so a script on the stream can
    /// check it.
    pub fn lease_key(stream: &str, group: &str) -> String {
        format!("{}:quantum-watchdog:lease:{group}", stream_tagged(stream))
    }

    /// The fencing counter of a group's lease (same slot).
    pub fn fence_key(stream: &str, group: &str) -> String {
        format!("{}:quantum-watchdog:fence:{group}", stream_tagged(stream))
    }
}

/// The hash of a group's claim traces (in the stream's slot): per recipient, when entries were
/// last claimed to it and when it last really read before.
pub fn claims_key(stream: &str, group: &str) -> String {
    format!("{}:quantum-watchdog:claims:{group}", stream_tagged(stream))
}

/// The hash of a group's crash streaks of wrapped units (`exec`): per unit, the entry at the
/// head of its consumer at its last deaths (in the stream's slot). A wrapper dies with its
/// child, so the streak outlives it here.
pub fn crashes_key(stream: &str, group: &str) -> String {
    format!("{}:quantum-watchdog:crashes:{group}", stream_tagged(stream))
}

/// `stream` as the start of a key in its slot: as it is if it carries a hash tag, else in
/// braces.
fn stream_tagged(stream: &str) -> String {
    if has_hash_tag(stream) {
        stream.to_string()
    } else {
        format!("{{{stream}}}")
    }
}

/// Where metrics are served and written.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsConfig {
    /// `unix:/path/to/socket`, `HOST:PORT`, or `""` (off).
    pub listen: String,
    /// node_exporter textfile collector directory (written atomically), if any.
    pub textfile_dir: Option<PathBuf>,
    /// At most this many consumer-labelled series per metric; the rest are counted as dropped.
    pub max_consumer_series: usize,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            listen: "unix:/run/quantum-watchdog/agent/metrics.sock".into(),
            textfile_dir: None,
            max_consumer_series: 1000,
        }
    }
}

/// The order in which work flows through streams, for stall detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Its name in reports.
    #[serde(default = "default_pipeline_name")]
    pub name: String,
    /// Its streams, in flow order.
    pub streams: Vec<String>,
    /// A stage whose group delivered nothing this long while entries wait is stalled.
    #[serde(default = "default_stall_after")]
    pub stall_after: HumanDuration,
}

fn default_pipeline_name() -> String {
    "pipeline".into()
}

fn default_stall_after() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}

/// A Redis key compared with a limit (`{date}`/`{utcdate}` expand to today's YYYY-MM-DD).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyGauge {
    /// Its name in reports (the key if empty).
    #[serde(default)]
    pub name: String,
    /// The key.
    pub key: String,
    /// Critical at this value.
    pub limit: f64,
    /// Warning from this fraction of the limit.
    #[serde(default = "default_warn_at")]
    pub warn_at: f64,
}

fn default_warn_at() -> f64 {
    0.8
}

/// The group whose members may pause units (the package creates it).
pub const OPERATORS_GROUP: &str = "quantum-watchdog-operators";

/// A `[[window]]`: units matching `units` are judged but not acted on from each elapse of
/// `calendar` (systemd's `OnCalendar=` syntax) for `duration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// Its name in reports and logs.
    pub name: String,
    /// Unit name patterns it applies to.
    pub units: Vec<String>,
    /// When it opens: `Sat 02:00`, `*-*-* 23:55:00`, `Mon..Fri 12:00 Europe/Berlin`.
    pub calendar: String,
    /// How long it stays open.
    pub duration: HumanDuration,
}

/// A Redis key shown in `status` with its value (e.g. a kill switch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFlag {
    /// Its name in reports (the key if empty).
    #[serde(default)]
    pub name: String,
    /// The key.
    pub key: String,
}

/// A `[[watch]]`: a unit bound to the consumer it runs. Built by [`Watch::new`] and never
/// changed after: its `(stream, group)` key is kept beside `stream` and `group`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Watch {
    /// The unit.
    pub unit: String,
    /// The stream it reads.
    pub stream: String,
    /// As this group.
    pub group: String,
    /// Under this consumer name.
    pub consumer: Template,
    /// Its decision parameters (`[defaults]` and its own).
    #[serde(flatten)]
    pub params: Params,
    /// `(stream, group)`, kept to look the group up without building a key every look.
    #[serde(skip)]
    key: GroupKey,
}

impl Watch {
    /// A binding of `unit` to `consumer` in `group` of `stream`.
    pub fn new(
        unit: String,
        stream: String,
        group: String,
        consumer: Template,
        params: Params,
    ) -> Watch {
        let key = GroupKey {
            stream: stream.clone(),
            group: group.clone(),
        };
        Watch {
            unit,
            stream,
            group,
            consumer,
            params,
            key,
        }
    }

    /// The `(stream, group)` it reads.
    pub fn key(&self) -> &GroupKey {
        &self.key
    }
}

/// The effective configuration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    /// Observe or enforce.
    pub mode: Mode,
    /// One cycle.
    pub interval: HumanDuration,
    /// Unit name patterns: every matching unit is watched (its systemd state), bound or not.
    pub units: Vec<String>,
    /// Where the agent keeps `state.json` (status reads it). Default: `$RUNTIME_DIRECTORY`,
    /// else `/run/quantum-watchdog/agent`, or `$XDG_RUNTIME_DIR/quantum-watchdog` with `--user`.
    pub state_dir: Option<PathBuf>,
    /// Timeout of every D-Bus call.
    pub dbus_timeout: HumanDuration,
    /// How long a job or a changed unit file (a deploy, an operator) keeps a unit from being
    /// restarted: a forgotten `daemon-reload` or a stop that never ends must not hide a hang
    /// for ever. A hang found meanwhile is a warning, its restart shown as held.
    pub deploy_hold: HumanDuration,
    /// `[redis]`.
    pub redis: RedisConfig,
    /// `[metrics]`.
    pub metrics: MetricsConfig,
    /// `[fleet]`.
    pub fleet: FleetConfig,
    /// `[defaults]`.
    pub defaults: Params,
    /// `[[watch]]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<Watch>,
    /// `[[pipeline]]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pipeline: Vec<Pipeline>,
    /// `[[gauge]]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gauge: Vec<KeyGauge>,
    /// `[[flag]]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flag: Vec<KeyFlag>,
    /// `[[window]]`: maintenance windows.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub window: Vec<Window>,
    /// Where `pause`, `resume` and `reset-budget` leave their notes for the agent, `recover`
    /// and `exec`. Default: `/var/lib/quantum-watchdog/pauses`, or
    /// `$XDG_RUNTIME_DIR/quantum-watchdog/pauses` with `--user`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pause_dir: Option<PathBuf>,
    /// Besides root, the members of this group may pause units.
    pub operators_group: String,
    /// The files this configuration was read from, in order.
    #[serde(skip)]
    pub sources: Vec<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            mode: Mode::Observe,
            interval: HumanDuration(Duration::from_secs(5)),
            units: vec!["quantum-*.service".to_string()],
            state_dir: None,
            dbus_timeout: HumanDuration(Duration::from_secs(2)),
            deploy_hold: HumanDuration(Duration::from_secs(15 * 60)),
            redis: RedisConfig {
                url: "redis://127.0.0.1:6379/0".to_string(),
                url_set: false,
                username: None,
                password_file: None,
                timeout: HumanDuration(Duration::from_secs(2)),
                tls: TlsConfig::default(),
                sentinel: None,
                cluster: Vec::new(),
                dead_letter_stream: None,
            },
            metrics: MetricsConfig::default(),
            fleet: FleetConfig::default(),
            defaults: Params::default(),
            watch: Vec::new(),
            pipeline: Vec::new(),
            gauge: Vec::new(),
            flag: Vec::new(),
            window: Vec::new(),
            pause_dir: None,
            operators_group: OPERATORS_GROUP.to_string(),
            sources: Vec::new(),
        }
    }
}

impl Config {
    /// The units bound to `(stream, group)`.
    pub fn units_of_group(&self, stream: &str, group: &str) -> Vec<String> {
        self.watch
            .iter()
            .filter(|w| w.stream == stream && w.group == group)
            .map(|w| w.unit.clone())
            .collect()
    }

    /// Every unit name pattern the agent looks at: `units` plus each bound unit none of them
    /// matches (systemd matches every listed unit against every pattern: a thousand bound
    /// `quantum-*` units add nothing to `quantum-*.service` but a thousand patterns).
    pub fn unit_patterns(&self) -> Vec<String> {
        let mut seen: std::collections::HashSet<&str> =
            self.units.iter().map(String::as_str).collect();
        let mut v = self.units.clone();
        for w in &self.watch {
            if !crate::model::unit_pattern::matches_any(&self.units, &w.unit)
                && seen.insert(&w.unit)
            {
                v.push(w.unit.clone());
            }
        }
        v
    }

    /// The configuration as TOML (`check-config`), in time linear in its size: each
    /// `[[watch]]` is written on its own (the serializer's one document grows quadratically).
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        #[derive(Serialize)]
        struct One<'a> {
            watch: [&'a Watch; 1],
        }
        let head = Config {
            watch: Vec::new(),
            ..self.clone()
        };
        let mut out = toml::to_string_pretty(&head)?;
        for w in &self.watch {
            out.push('\n');
            out.push_str(&toml::to_string_pretty(&One { watch: [w] })?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frag(name: &str, text: &str) -> (String, String) {
        (name.to_string(), text.to_string())
    }

    #[test]
    fn defaults_are_observe_and_safe() {
        let c = from_fragments(&[]).unwrap();
        assert_eq!(c.mode, Mode::Observe);
        assert_eq!(c.interval.0, Duration::from_secs(5));
        assert_eq!(c.defaults.hung_after.0, Duration::from_secs(300));
        assert_eq!(c.defaults.confirm, 2);
        assert_eq!(c.defaults.claim_policy, ClaimPolicy::Handoff);
        assert!(c.watch.is_empty());
    }

    #[test]
    fn full_example_parses() {
        let c = from_fragments(&[frag(
            "a.toml",
            r#"
mode = "enforce"
interval = "5s"
units = ["quantum-*.service"]
redis.url = "redis://127.0.0.1:6379/0"
[defaults]
hung_after = "5m"
startup_grace = "60s"
confirm = 2
restart_budget = { max = 3, within = "30m" }
zombie_after = "1h"
claim_policy = "handoff"
[[watch]]
unit = "quantum-execution.service"
stream = "quantum:stream:trade.intent"
group = "quantum:group:execution:trade.intent"
consumer = "execution-{hostname}-{pid}"
hung_after = "90s"
claim_policy = "park"
"#,
        )])
        .unwrap();
        assert_eq!(c.mode, Mode::Enforce);
        let w = &c.watch[0];
        assert_eq!(w.params.hung_after.0, Duration::from_secs(90));
        assert_eq!(w.params.claim_policy, ClaimPolicy::Park);
        assert_eq!(w.params.zombie_after.0, Duration::from_secs(3600));
        assert_eq!(w.params.restart_budget.within.0, Duration::from_secs(1800));
    }

    /// Table of bad inputs: each must name the file and the key.
    #[test]
    fn bad_inputs_name_file_and_key() {
        let cases: &[(&str, &str, &str)] = &[
            ("mode = \"yolo\"", "mode", "unknown variant"),
            ("interval = 5", "interval", "duration"),
            ("interval = \"5\"", "interval", "with a unit"),
            ("interval = \"fast\"", "interval", "duration"),
            ("colour = \"red\"", "colour", "unknown field `colour`"),
            (
                "[defaults]\nhung_afte = \"5m\"",
                "defaults",
                "unknown field `hung_afte`",
            ),
            (
                "[defaults]\nconfirm = \"two\"",
                "defaults.confirm",
                "expected u32",
            ),
            ("[defaults]\nconfirm = 0", "defaults.confirm", "at least 1"),
            (
                "[defaults]\nrestart_budget = { max = 3 }",
                "defaults.restart_budget",
                "within",
            ),
            (
                "[defaults]\nclaim_policy = \"steal\"",
                "defaults.claim_policy",
                "unknown variant",
            ),
            ("units = \"quantum-*\"", "units", "sequence"),
            ("redis.url = \"http://x\"", "redis.url", "expected redis://"),
            ("redis.port = 1", "redis", "unknown field `port`"),
            (
                "[[watch]]\nunit = \"q.service\"\nstream = \"s\"\ngroup = \"g\"\nconsumer = \"x-{pod}\"",
                "watch[0].consumer",
                "{pod}",
            ),
            (
                "[[watch]]\nunit = \"q-*.service\"\nstream = \"s\"\ngroup = \"g\"\nconsumer = \"x\"",
                "watch[0].unit",
                "full unit name",
            ),
            (
                "[[watch]]\nunit = \"q.service\"\nstream = \"s\"\ngroup = \"g\"\nconsumer = \"x\"\nhung_after = \"0s\"",
                "watch[0].hung_after",
                "greater than 0",
            ),
            (
                "[[watch]]\nunit = \"q.service\"\nstream = \"s\"",
                "watch[0]",
                "missing field",
            ),
            (
                "interval = \"10s\"\n[[watch]]\nunit = \"q.service\"\nstream = \"s\"\ngroup = \"g\"\nconsumer = \"x\"\nhung_after = \"10s\"",
                "watch[0].hung_after",
                "longer than interval",
            ),
            ("mode = ", "<syntax>", "line 1"),
            (
                "[[watch]]\nunit = \"q.service\"\nstream = \"s\"\ngroup = \"g\"\nconsumer = \"x\"\nconfirm = \"two\"",
                "watch[0].confirm",
                "line 6",
            ),
            (
                "[[watch]]\nunit = \"q.service\"\nstream = \"s\"\ngroup = \"g\"\nconsumer = \"x\"\nhung_afterr = \"1m\"",
                "watch[0]",
                "unknown field `hung_afterr`",
            ),
            (
                "units = [\"quantum-*.service\", \"[\"]",
                "units[1]",
                "without its ]",
            ),
        ];
        for (text, key, needle) in cases {
            let err = from_fragments(&[frag("/etc/quantum-watchdog/config.d/50-x.toml", text)])
                .expect_err(text);
            let s = err.to_string();
            match &err {
                ConfigError::Invalid {
                    file,
                    key: k,
                    message,
                } => {
                    assert_eq!(
                        file, "/etc/quantum-watchdog/config.d/50-x.toml",
                        "{text}: {s}"
                    );
                    assert!(
                        k.starts_with(key),
                        "{text}: key {k:?} should start with {key:?}: {s}"
                    );
                    assert!(
                        message.contains(needle) || s.contains(needle),
                        "{text}: {s:?} should mention {needle:?}"
                    );
                }
                other => panic!("{text}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn later_fragments_win_key_by_key_and_watch_by_key() {
        let w = |g: &str, h: &str| {
            format!(
                "[[watch]]\nunit = \"quantum-a.service\"\nstream = \"s\"\ngroup = \"{g}\"\nconsumer = \"a-{{pid}}\"\nhung_after = \"{h}\"\n"
            )
        };
        let c = from_fragments(&[
            frag(
                "10.toml",
                &format!(
                    "mode = \"enforce\"\ninterval = \"2s\"\n[defaults]\nconfirm = 3\n{}",
                    w("g1", "1m")
                ),
            ),
            frag(
                "20.toml",
                &format!("interval = \"1s\"\n{}{}", w("g1", "2m"), w("g2", "3m")),
            ),
        ])
        .unwrap();
        assert_eq!(c.mode, Mode::Enforce);
        assert_eq!(c.interval.0, Duration::from_secs(1));
        assert_eq!(c.defaults.confirm, 3);
        assert_eq!(c.watch.len(), 2);
        assert_eq!(c.watch[0].params.hung_after.0, Duration::from_secs(120));
        assert_eq!(c.watch[0].params.confirm, 3);
        assert_eq!(c.watch[1].group, "g2");
    }

    #[test]
    fn mode_env_overrides_and_rejects_garbage() {
        let mut c = from_fragments(&[]).unwrap();
        apply_mode_env(&mut c, Some("enforce")).unwrap();
        assert_eq!(c.mode, Mode::Enforce);
        let e = apply_mode_env(&mut c, Some("ENFORCE"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(MODE_ENV) && e.contains("observe"), "{e}");
    }

    #[test]
    fn out_of_range_durations_are_rejected_naming_the_key() {
        for (text, key) in [
            (
                "[defaults]\nstartup_grace = \"18446744073710s\"",
                "defaults.startup_grace",
            ),
            ("interval = \"367d\"", "interval"),
            (
                "[defaults]\nrestart_budget = { max = 3, within = \"1000y\" }",
                "defaults.restart_budget.within",
            ),
        ] {
            let e = from_fragments(&[frag("f.toml", text)]).expect_err(text);
            let s = e.to_string();
            assert!(
                s.contains("f.toml") && s.contains(key) && s.contains("at most 366 days"),
                "{text}: {s}"
            );
        }
    }

    #[test]
    fn layering_sorts_drop_ins_by_name_across_directories() {
        let root = std::env::temp_dir().join(format!("qw-cfg-{}", std::process::id()));
        let w = |p: &str, text: &str| {
            let f = root.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, text).unwrap();
        };
        w(
            "usr/lib/quantum-watchdog/config.toml",
            "interval = \"9s\"\n",
        );
        w("etc/quantum-watchdog/config.toml", "interval = \"3s\"\n");
        w(
            "usr/lib/quantum-watchdog/config.d/10-base.toml",
            "dbus_timeout = \"7s\"\n",
        );
        w(
            "usr/lib/quantum-watchdog/config.d/20-masked.toml",
            "mode = \"enforce\"\n",
        );
        w("etc/quantum-watchdog/config.d/20-masked.toml", "# masked\n");
        w(
            "etc/quantum-watchdog/config.d/05-early.toml",
            "units = [\"a-*.service\"]\n",
        );
        w(
            "run/quantum-watchdog/config.d/30-runtime.toml",
            "units = [\"x-*.service\"]\n",
        );
        w(
            "usr/lib/quantum-watchdog/config.d/30-runtime.toml",
            "units = [\"y-*.service\"]\n",
        );
        w(
            "usr/lib/quantum-watchdog/config.d/40-late.toml",
            "interval = \"4s\"\n",
        );
        let c = load(None, &root, None).unwrap();
        let names: Vec<_> = c
            .sources
            .iter()
            .map(|p| p.strip_prefix(&root).unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "etc/quantum-watchdog/config.toml",
                "etc/quantum-watchdog/config.d/05-early.toml",
                "usr/lib/quantum-watchdog/config.d/10-base.toml",
                "etc/quantum-watchdog/config.d/20-masked.toml",
                "run/quantum-watchdog/config.d/30-runtime.toml",
                "usr/lib/quantum-watchdog/config.d/40-late.toml",
            ],
            "the /etc main file hides the vendor one; drop-ins sort by name across directories"
        );
        assert_eq!(c.mode, Mode::Observe, "an /etc file masks the vendor one");
        assert_eq!(c.units, vec!["x-*.service"], "/run masks /usr/lib");
        assert_eq!(c.interval.0, Duration::from_secs(4), "a later name wins");
        assert_eq!(c.dbus_timeout.0, Duration::from_secs(7));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn twenty_thousand_watches_merge_in_linear_time() {
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!(
                "[[watch]]\nunit = \"quantum-{i}.service\"\nstream = \"s\"\ngroup = \"g\"\nconsumer = \"c-{{pid}}\"\n"
            ));
        }
        // The same set again in a later fragment replaces each entry in place.
        let t = std::time::Instant::now();
        let c = from_fragments(&[frag("a.toml", &text), frag("b.toml", &text)]).unwrap();
        assert_eq!(c.watch.len(), 20_000);
        let merged = t.elapsed();
        // check-config prints it back in linear time, and what it prints reads back the same.
        let t = std::time::Instant::now();
        let printed = c.to_toml().unwrap();
        println!(
            "MEASURE config 2 x 20000 watches merged in {merged:?}, printed in {:?}",
            t.elapsed()
        );
        let back = from_fragments(&[frag("printed.toml", &printed)]).unwrap();
        assert_eq!(back.watch, c.watch);
    }
}
