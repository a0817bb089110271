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

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use crate::template::Template;

/// The environment variable that overrides `mode`.
pub const MODE_ENV: &str = "QUANTUM_WATCHDOG_MODE";
/// The consumer that the `park` claim policy moves entries to. Never deleted.
pub const PARKED_CONSUMER: &str = "quantum-watchdog:parked";

/// Where the main file and the drop-in directories are looked for, most important first.
pub const CONFIG_DIRS: [&str; 3] = [
    "/etc/quantum-watchdog",
    "/run/quantum-watchdog",
    "/usr/lib/quantum-watchdog",
];

/// The longest duration any key accepts: longer ones are surely a mistake, and every
/// duration must stay far from overflowing when added to the clock.
pub const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// A configuration error: which file, which key, and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {reason}")]
    Read { file: String, reason: String },
    #[error("{file}: {key}: {message}")]
    Invalid {
        file: String,
        key: String,
        message: String,
    },
}

impl ConfigError {
    fn invalid(file: &str, key: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            file: file.to_string(),
            key: key.into(),
            message: message.into(),
        }
    }
}

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

/// A human duration (`90s`, `5m`, `1h`, `1h 30m`), serialised back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    pub fn as_millis(&self) -> u64 {
        self.0.as_millis() as u64
    }
    pub fn as_micros(&self) -> u64 {
        self.0.as_micros() as u64
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = HumanDuration;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string such as \"90s\", \"5m\" or \"1h\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<HumanDuration, E> {
                parse_duration(s).map(HumanDuration).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(self.0).to_string())
    }
}

/// Parses a human duration; a bare number is rejected (its unit would be a guess).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if t.is_empty() || t.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "expected a duration with a unit such as \"90s\", \"5m\" or \"1h\", found {s:?}"
        ));
    }
    let d = humantime::parse_duration(t).map_err(|e| {
        format!("expected a duration such as \"90s\", \"5m\" or \"1h\", found {s:?} ({e})")
    })?;
    if d > MAX_DURATION {
        return Err(format!(
            "expected a duration of at most 366 days, found {s:?}"
        ));
    }
    Ok(d)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestartBudget {
    pub max: u32,
    pub within: HumanDuration,
}

// ---------------------------------------------------------------------------------------------
// Raw fragments: every key optional, unknown keys rejected.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    mode: Option<Mode>,
    interval: Option<HumanDuration>,
    units: Option<Vec<String>>,
    state_dir: Option<PathBuf>,
    dbus_timeout: Option<HumanDuration>,
    redis: Option<RawRedis>,
    metrics: Option<RawMetrics>,
    defaults: Option<RawParams>,
    #[serde(default)]
    watch: Vec<RawWatch>,
    #[serde(default)]
    pipeline: Vec<Pipeline>,
    #[serde(default)]
    gauge: Vec<KeyGauge>,
    #[serde(default)]
    flag: Vec<KeyFlag>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMetrics {
    listen: Option<String>,
    textfile_dir: Option<PathBuf>,
    max_consumer_series: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRedis {
    url: Option<String>,
    password_file: Option<PathBuf>,
    timeout: Option<HumanDuration>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParams {
    hung_after: Option<HumanDuration>,
    startup_grace: Option<HumanDuration>,
    confirm: Option<u32>,
    restart_budget: Option<RestartBudget>,
    zombie_after: Option<HumanDuration>,
    claim_policy: Option<ClaimPolicy>,
    restart_on_stale_pending: Option<bool>,
    dead_letter_after: Option<u32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWatch {
    unit: String,
    stream: String,
    group: String,
    consumer: String,
    #[serde(flatten)]
    params: RawParams,
}

// ---------------------------------------------------------------------------------------------
// The effective configuration.

/// Decision parameters; `[defaults]` and each `[[watch]]` may set them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Params {
    pub hung_after: HumanDuration,
    pub startup_grace: HumanDuration,
    pub confirm: u32,
    pub restart_budget: RestartBudget,
    pub zombie_after: HumanDuration,
    pub claim_policy: ClaimPolicy,
    pub restart_on_stale_pending: bool,
    /// Entries delivered this many times without acknowledgement go to `<stream>:dead`
    /// (and the original is acknowledged). Unset: they stay pending and are reported.
    pub dead_letter_after: Option<u32>,
}

impl Default for Params {
    fn default() -> Self {
        Params {
            hung_after: HumanDuration(Duration::from_secs(300)),
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
        }
    }
}

impl Params {
    fn apply(&mut self, raw: &RawParams) {
        let RawParams {
            hung_after,
            startup_grace,
            confirm,
            restart_budget,
            zombie_after,
            claim_policy,
            restart_on_stale_pending,
            dead_letter_after,
        } = raw;
        if let Some(v) = hung_after {
            self.hung_after = *v;
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
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RedisConfig {
    /// `redis://host:port/db` or `unix:///path/to/redis.sock`. A password in the URL is never
    /// printed; prefer `password_file`.
    #[serde(serialize_with = "serialize_redacted_url")]
    pub url: String,
    pub password_file: Option<PathBuf>,
    /// Timeout of every Redis call and of connecting.
    pub timeout: HumanDuration,
}

fn serialize_redacted_url<S: serde::Serializer>(url: &str, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&redact_url(url))
}

/// Query parameters of a Redis URL that carry a secret.
const SECRET_PARAMS: [&str; 4] = ["pass", "password", "passwd", "auth"];

/// Replaces every password in a Redis URL by `***`: in the userinfo (`redis://user:pw@host`,
/// also when the password itself contains `@`), and in query parameters
/// (`unix:///run/redis.sock?pass=…`, `redis+unix://…?user=u&password=…`).
pub fn redact_url(url: &str) -> String {
    // The userinfo ends at the last `@` (a password may hold `@`, `/`, `?`): masking too much
    // of a malformed URL is harmless, printing a secret is not.
    let masked = match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo
                    .split_once(':')
                    .map_or("", |(u, _)| u)
                    .split(['/', '?'])
                    .next()
                    .unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    };
    let Some((head, query)) = masked.split_once('?') else {
        return masked;
    };
    let params: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if SECRET_PARAMS.contains(&k.to_ascii_lowercase().as_str()) => {
                format!("{k}=***")
            }
            _ => kv.to_string(),
        })
        .collect();
    format!("{head}?{}", params.join("&"))
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
            listen: "unix:/run/quantum-watchdog/metrics.sock".into(),
            textfile_dir: None,
            max_consumer_series: 1000,
        }
    }
}

/// The order in which work flows through streams, for stall detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    #[serde(default = "default_pipeline_name")]
    pub name: String,
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
    #[serde(default)]
    pub name: String,
    pub key: String,
    pub limit: f64,
    #[serde(default = "default_warn_at")]
    pub warn_at: f64,
}

fn default_warn_at() -> f64 {
    0.8
}

/// A Redis key shown in `status` with its value (e.g. a kill switch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyFlag {
    #[serde(default)]
    pub name: String,
    pub key: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Watch {
    pub unit: String,
    pub stream: String,
    pub group: String,
    pub consumer: Template,
    #[serde(flatten)]
    pub params: Params,
}

impl Watch {
    /// The `(stream, group)` it reads.
    pub fn key(&self) -> crate::model::GroupKey {
        crate::model::GroupKey {
            stream: self.stream.clone(),
            group: self.group.clone(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Config {
    pub mode: Mode,
    pub interval: HumanDuration,
    pub units: Vec<String>,
    /// Where the agent keeps `state.json` (status reads it). Default: `$RUNTIME_DIRECTORY`,
    /// else `/run/quantum-watchdog`, or `$XDG_RUNTIME_DIR/quantum-watchdog` with `--user`.
    pub state_dir: Option<PathBuf>,
    /// Timeout of every D-Bus call.
    pub dbus_timeout: HumanDuration,
    pub redis: RedisConfig,
    pub metrics: MetricsConfig,
    pub defaults: Params,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub watch: Vec<Watch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pipeline: Vec<Pipeline>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gauge: Vec<KeyGauge>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub flag: Vec<KeyFlag>,
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
            redis: RedisConfig {
                url: "redis://127.0.0.1:6379/0".to_string(),
                password_file: None,
                timeout: HumanDuration(Duration::from_secs(2)),
            },
            metrics: MetricsConfig::default(),
            defaults: Params::default(),
            watch: Vec::new(),
            pipeline: Vec::new(),
            gauge: Vec::new(),
            flag: Vec::new(),
            sources: Vec::new(),
        }
    }
}

impl Config {
    /// Every unit name pattern the agent looks at: `units` plus each bound unit.
    pub fn unit_patterns(&self) -> Vec<String> {
        let mut seen: std::collections::HashSet<&str> =
            self.units.iter().map(String::as_str).collect();
        let mut v = self.units.clone();
        for w in &self.watch {
            if seen.insert(&w.unit) {
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

/// The files of the default layering under `root` (normally `/`), in the order they apply.
pub fn default_sources(root: &Path) -> Vec<PathBuf> {
    let dirs: Vec<PathBuf> = CONFIG_DIRS
        .iter()
        .map(|d| root.join(d.trim_start_matches('/')))
        .collect();
    let mut out: Vec<PathBuf> = dirs
        .iter()
        .map(|d| d.join("config.toml"))
        .find(|f| f.exists())
        .into_iter()
        .collect();
    // By file name; the most important directory's file of a name masks the others.
    let mut dropins: BTreeMap<std::ffi::OsString, PathBuf> = BTreeMap::new();
    for dir in dirs.iter().rev() {
        if let Ok(rd) = std::fs::read_dir(dir.join("config.d")) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "toml") {
                    dropins.insert(e.file_name(), p);
                }
            }
        }
    }
    out.extend(dropins.into_values());
    out
}

/// Loads the configuration from the default layering under `root` (normally `/`), or from one
/// file, then applies the `QUANTUM_WATCHDOG_MODE` override.
pub fn load(
    one_file: Option<&Path>,
    root: &Path,
    mode_env: Option<&str>,
) -> Result<Config, ConfigError> {
    let files = match one_file {
        Some(f) => vec![f.to_path_buf()],
        None => default_sources(root),
    };
    let mut texts = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| ConfigError::Read {
            file: f.display().to_string(),
            reason: read_error_reason(f, &e),
        })?;
        texts.push((f.display().to_string(), text));
    }
    let mut cfg = from_fragments(&texts)?;
    cfg.sources = files;
    apply_mode_env(&mut cfg, mode_env)?;
    Ok(cfg)
}

/// Explains a read error, with the file's owner and mode when it exists but cannot be read.
pub fn read_error_reason(path: &Path, e: &std::io::Error) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) if e.kind() == std::io::ErrorKind::PermissionDenied => format!(
            "{e} (mode {:04o}, owner uid {} gid {}; running as uid {})",
            m.mode() & 0o7777,
            m.uid(),
            m.gid(),
            nix::unistd::geteuid()
        ),
        _ => e.to_string(),
    }
}

pub fn apply_mode_env(cfg: &mut Config, mode_env: Option<&str>) -> Result<(), ConfigError> {
    if let Some(v) = mode_env {
        cfg.mode = v
            .parse()
            .map_err(|m: String| ConfigError::invalid("environment", MODE_ENV, m))?;
    }
    Ok(())
}

/// Merges fragments `(file name, text)` in order over the built-in defaults and validates.
pub fn from_fragments(fragments: &[(String, String)]) -> Result<Config, ConfigError> {
    let mut cfg = Config::default();
    // Each watch remembers the file that defined it, for error messages.
    let mut watches: Vec<(String, RawWatch)> = Vec::new();
    let mut watch_index: std::collections::HashMap<(String, String, String), usize> =
        std::collections::HashMap::new();
    let mut defaults_file = String::from("<built-in defaults>");
    for (file, text) in fragments {
        let raw = parse_fragment(file, text)?;
        if let Some(m) = raw.mode {
            cfg.mode = m;
        }
        if let Some(v) = raw.interval {
            cfg.interval = v;
        }
        if let Some(v) = raw.units {
            cfg.units = v;
        }
        if let Some(v) = raw.state_dir {
            cfg.state_dir = Some(v);
        }
        if let Some(v) = raw.dbus_timeout {
            cfg.dbus_timeout = v;
        }
        if let Some(m) = raw.metrics {
            if let Some(v) = m.listen {
                cfg.metrics.listen = v;
            }
            if let Some(v) = m.textfile_dir {
                cfg.metrics.textfile_dir = Some(v);
            }
            if let Some(v) = m.max_consumer_series {
                cfg.metrics.max_consumer_series = v;
            }
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
        if let Some(r) = raw.redis {
            if let Some(u) = r.url {
                cfg.redis.url = u;
            }
            if let Some(p) = r.password_file {
                cfg.redis.password_file = Some(p);
            }
            if let Some(t) = r.timeout {
                cfg.redis.timeout = t;
            }
        }
        if let Some(d) = &raw.defaults {
            cfg.defaults.apply(d);
            defaults_file = file.clone();
        }
        for w in raw.watch {
            let key = (w.unit.clone(), w.stream.clone(), w.group.clone());
            match watch_index.get(&key) {
                Some(&i) => watches[i] = (file.clone(), w),
                None => {
                    watch_index.insert(key, watches.len());
                    watches.push((file.clone(), w));
                }
            }
        }
    }
    let last = fragments
        .last()
        .map(|(f, _)| f.clone())
        .unwrap_or_else(|| "<built-in defaults>".into());
    validate_params(&defaults_file, "defaults", &cfg.defaults)?;
    validate_top(&last, &cfg)?;
    for (i, (file, w)) in watches.into_iter().enumerate() {
        let at = format!("watch[{i}]");
        let consumer = Template::parse(&w.consumer)
            .map_err(|e| ConfigError::invalid(&file, format!("{at}.consumer"), e.to_string()))?;
        if let Err(why) = check_unit_name(&w.unit) {
            return Err(ConfigError::invalid(
                &file,
                format!("{at}.unit"),
                format!(
                    "expected a full unit name such as \"quantum-execution.service\", found {:?}: {why}",
                    w.unit
                ),
            ));
        }
        for (k, v) in [("stream", &w.stream), ("group", &w.group)] {
            if v.is_empty() {
                return Err(ConfigError::invalid(
                    &file,
                    format!("{at}.{k}"),
                    "expected a non-empty name",
                ));
            }
        }
        let mut params = cfg.defaults.clone();
        params.apply(&w.params);
        validate_params(&file, &at, &params)?;
        if params.hung_after <= cfg.interval {
            return Err(ConfigError::invalid(
                &file,
                format!("{at}.hung_after"),
                format!(
                    "expected longer than interval ({}): hung is judged over several cycles",
                    humantime::format_duration(cfg.interval.0)
                ),
            ));
        }
        cfg.watch.push(Watch {
            unit: w.unit,
            stream: w.stream,
            group: w.group,
            consumer,
            params,
        });
    }
    Ok(cfg)
}

/// The unit types systemd knows.
const UNIT_SUFFIXES: [&str; 11] = [
    "service",
    "socket",
    "target",
    "device",
    "mount",
    "automount",
    "swap",
    "timer",
    "path",
    "slice",
    "scope",
];

/// Checks a unit name as systemd does (`unit_name_is_valid`): at most 255 bytes, a known
/// suffix, only `[A-Za-z0-9:_.\\-]` and one `@` with an instance (a template is not a unit).
pub fn check_unit_name(name: &str) -> Result<(), String> {
    if name.len() > 255 {
        return Err("longer than 255 bytes".into());
    }
    let Some((stem, suffix)) = name.rsplit_once('.') else {
        return Err("no unit type suffix".into());
    };
    if !UNIT_SUFFIXES.contains(&suffix) {
        return Err(format!("unknown unit type .{suffix}"));
    }
    if stem.is_empty() {
        return Err("empty name".into());
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || ":_.\\-".contains(c);
    let (prefix, instance) = match stem.split_once('@') {
        Some((p, i)) => (p, Some(i)),
        None => (stem, None),
    };
    if prefix.is_empty() || !prefix.chars().all(allowed) {
        return Err("only letters, digits and :_.\\- are allowed".into());
    }
    match instance {
        Some("") => Err("a template (name@.type) is not a unit; name an instance".into()),
        Some(i) if !i.chars().all(|c| allowed(c) || c == '@') => {
            Err("only letters, digits and :_.\\-@ are allowed in an instance".into())
        }
        _ => Ok(()),
    }
}

fn parse_fragment(file: &str, text: &str) -> Result<RawFile, ConfigError> {
    let de = toml::de::Deserializer::parse(text)
        .map_err(|e| ConfigError::invalid(file, "<syntax>", toml_message(&e, text)))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = e.path().to_string();
        let key = if key == "." {
            "<top level>".to_string()
        } else {
            key
        };
        ConfigError::invalid(file, key, toml_message(e.inner(), text))
    })
}

fn toml_message(e: &toml::de::Error, text: &str) -> String {
    let msg = e.message().trim().to_string();
    match e.span() {
        Some(span) => {
            let line = text[..span.start.min(text.len())].matches('\n').count() + 1;
            format!("{msg} (line {line})")
        }
        None => msg,
    }
}

fn validate_top(file: &str, cfg: &Config) -> Result<(), ConfigError> {
    let l = &cfg.metrics.listen;
    if !(l.is_empty() || l.starts_with("unix:/") || l.parse::<std::net::SocketAddr>().is_ok()) {
        return Err(ConfigError::invalid(
            file,
            "metrics.listen",
            format!(
                "expected \"unix:/path/to/socket\", \"127.0.0.1:9632\" or \"\" (off), found {l:?}"
            ),
        ));
    }
    for (i, p) in cfg.pipeline.iter().enumerate() {
        if p.streams.len() < 2 {
            return Err(ConfigError::invalid(
                file,
                format!("pipeline[{i}].streams"),
                "expected at least two streams in flow order",
            ));
        }
    }
    for (i, g) in cfg.gauge.iter().enumerate() {
        if g.limit.is_nan() || g.limit <= 0.0 {
            return Err(ConfigError::invalid(
                file,
                format!("gauge[{i}].limit"),
                "expected a number greater than 0",
            ));
        }
        if !(g.warn_at > 0.0 && g.warn_at <= 1.0) {
            return Err(ConfigError::invalid(
                file,
                format!("gauge[{i}].warn_at"),
                "expected a fraction of the limit, above 0 and at most 1",
            ));
        }
    }
    if cfg.interval.0 < Duration::from_millis(100) {
        return Err(ConfigError::invalid(
            file,
            "interval",
            "expected at least 100ms",
        ));
    }
    if cfg.units.iter().any(|u| u.is_empty()) {
        return Err(ConfigError::invalid(
            file,
            "units",
            "expected unit name patterns, found an empty string",
        ));
    }
    let url = &cfg.redis.url;
    let ok = ["redis://", "rediss://", "unix://", "redis+unix://"]
        .iter()
        .any(|s| url.starts_with(s))
        && redis::IntoConnectionInfo::into_connection_info(url.as_str()).is_ok();
    if !ok {
        return Err(ConfigError::invalid(
            file,
            "redis.url",
            format!(
                "expected redis://host:port/db or unix:///path/to/socket, found {:?}",
                redact_url(url)
            ),
        ));
    }
    for (key, t) in [
        ("redis.timeout", cfg.redis.timeout),
        ("dbus_timeout", cfg.dbus_timeout),
    ] {
        if t.0 < Duration::from_millis(10) || t.0 > Duration::from_secs(60) {
            return Err(ConfigError::invalid(
                file,
                key,
                "expected between 10ms and 60s",
            ));
        }
    }
    Ok(())
}

fn validate_params(file: &str, at: &str, p: &Params) -> Result<(), ConfigError> {
    let zero = |k: &str, d: &HumanDuration| {
        if d.0.is_zero() {
            Err(ConfigError::invalid(
                file,
                format!("{at}.{k}"),
                "expected a duration greater than 0",
            ))
        } else {
            Ok(())
        }
    };
    zero("hung_after", &p.hung_after)?;
    zero("zombie_after", &p.zombie_after)?;
    zero("restart_budget.within", &p.restart_budget.within)?;
    if p.confirm == 0 {
        return Err(ConfigError::invalid(
            file,
            format!("{at}.confirm"),
            "expected a whole number of cycles, at least 1",
        ));
    }
    if p.dead_letter_after == Some(0) {
        return Err(ConfigError::invalid(
            file,
            format!("{at}.dead_letter_after"),
            "expected a number of deliveries, at least 1",
        ));
    }
    if p.restart_budget.max == 0 || p.restart_budget.max > 1000 {
        return Err(ConfigError::invalid(
            file,
            format!("{at}.restart_budget.max"),
            "expected between 1 and 1000 restarts",
        ));
    }
    Ok(())
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
    fn durations() {
        for (s, secs) in [
            ("90s", 90),
            ("5m", 300),
            ("1h", 3600),
            ("1h 30m", 5400),
            ("500ms", 0),
        ] {
            assert_eq!(parse_duration(s).unwrap().as_secs(), secs, "{s}");
        }
        for s in ["", "5", "five minutes", "-5s"] {
            assert!(parse_duration(s).is_err(), "{s}");
        }
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact_url("redis://:hunter2@10.0.0.1:6379/0"),
            "redis://:***@10.0.0.1:6379/0"
        );
        assert_eq!(redact_url("redis://u:p@h/0"), "redis://u:***@h/0");
        assert_eq!(
            redact_url("unix:///run/redis.sock"),
            "unix:///run/redis.sock"
        );
        let c =
            from_fragments(&[frag("a", "redis.url = \"redis://:hunter2@127.0.0.1/0\"")]).unwrap();
        let j = serde_json::to_string(&c).unwrap();
        assert!(!j.contains("hunter2"), "{j}");
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
    fn out_of_range_durations_are_rejected() {
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
        assert!(from_fragments(&[frag("f.toml", "[defaults]\nzombie_after = \"366d\"")]).is_ok());
    }

    #[test]
    fn unit_names_are_checked_as_systemd_does() {
        for ok in [
            "quantum-x.service",
            "a@b.service",
            "a:b_c.d-e.timer",
            "x@y@z.service",
        ] {
            assert_eq!(check_unit_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "quantum-x",
            "quantum-x.srvice",
            ".service",
            "a@.service",
            "a b.service",
            "a/b.service",
            "quantum-*.service",
            "q\u{1b}.service",
            &format!("{}.service", "a".repeat(250)),
        ] {
            assert!(check_unit_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_password_form_is_redacted() {
        for (url, secret) in [
            ("redis://:hunter2@10.0.0.1:6379/0", "hunter2"),
            ("redis://u:hunter2@h/0", "hunter2"),
            ("redis://u:hun@ter2@h:6379/0", "ter2"),
            ("redis://u:h/u?n@ter2@h:6379/0", "ter2"),
            ("unix:///run/redis.sock?db=1&pass=hunter2", "hunter2"),
            (
                "redis+unix:///run/redis.sock?user=u&password=hunter2",
                "hunter2",
            ),
            ("unix:///run/redis.sock?PASS=hunter2&db=0", "hunter2"),
            ("rediss://:hunter2@h:6380", "hunter2"),
        ] {
            let r = redact_url(url);
            assert!(!r.contains(secret), "{url} -> {r}");
            assert!(r.contains("***"), "{url} -> {r}");
        }
        assert_eq!(
            redact_url("redis+unix:///run/r.sock?user=u&pass=x"),
            "redis+unix:///run/r.sock?user=u&pass=***"
        );
        assert_eq!(
            redact_url("unix:///run/redis.sock"),
            "unix:///run/redis.sock"
        );
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
