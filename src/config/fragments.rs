//! Raw fragments: one TOML file as written, every key optional, unknown keys rejected.

use std::path::PathBuf;

use serde::Deserialize;

use super::duration::HumanDuration;
use super::{ClaimPolicy, ConfigError, KeyFlag, KeyGauge, Mode, Pipeline, RestartBudget, Window};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    pub(super) mode: Option<Mode>,
    pub(super) interval: Option<HumanDuration>,
    pub(super) units: Option<Vec<String>>,
    pub(super) state_dir: Option<PathBuf>,
    pub(super) dbus_timeout: Option<HumanDuration>,
    pub(super) deploy_hold: Option<HumanDuration>,
    pub(super) redis: Option<RawRedis>,
    pub(super) metrics: Option<RawMetrics>,
    pub(super) fleet: Option<RawFleet>,
    pub(super) defaults: Option<RawParams>,
    #[serde(default)]
    pub(super) watch: Vec<RawWatch>,
    #[serde(default)]
    pub(super) pipeline: Vec<Pipeline>,
    #[serde(default)]
    pub(super) gauge: Vec<KeyGauge>,
    #[serde(default)]
    pub(super) flag: Vec<KeyFlag>,
    #[serde(default)]
    pub(super) window: Vec<Window>,
    pub(super) pause_dir: Option<PathBuf>,
    pub(super) operators_group: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMetrics {
    pub(super) listen: Option<String>,
    pub(super) textfile_dir: Option<PathBuf>,
    pub(super) max_consumer_series: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFleet {
    pub(super) enabled: Option<bool>,
    pub(super) host_dead_after: Option<HumanDuration>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRedis {
    pub(super) url: Option<String>,
    pub(super) username: Option<String>,
    pub(super) password_file: Option<PathBuf>,
    pub(super) timeout: Option<HumanDuration>,
    pub(super) tls: Option<RawTls>,
    pub(super) sentinel: Option<RawSentinel>,
    pub(super) cluster: Option<Vec<String>>,
    pub(super) dead_letter_stream: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub(super) enabled: Option<bool>,
    pub(super) ca_file: Option<PathBuf>,
    pub(super) cert_file: Option<PathBuf>,
    pub(super) key_file: Option<PathBuf>,
    pub(super) insecure_skip_verify: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSentinel {
    pub(super) master: Option<String>,
    pub(super) nodes: Option<Vec<String>>,
    pub(super) username: Option<String>,
    pub(super) password_file: Option<PathBuf>,
}

#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawParams {
    pub(super) hung_after: Option<HumanDuration>,
    pub(super) warn_percent: Option<u32>,
    pub(super) startup_grace: Option<HumanDuration>,
    pub(super) confirm: Option<u32>,
    pub(super) restart_budget: Option<RestartBudget>,
    pub(super) zombie_after: Option<HumanDuration>,
    pub(super) claim_policy: Option<ClaimPolicy>,
    pub(super) restart_on_stale_pending: Option<bool>,
    pub(super) dead_letter_after: Option<u32>,
    pub(super) poison_after_crashes: Option<u32>,
}

/// A `[[watch]]` entry. Its parameters are spelled out rather than flattened in: serde's
/// `flatten` loses the key path and the line of an error (`watch[0]` instead of
/// `watch[0].confirm`, line 1).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawWatch {
    pub(super) unit: String,
    pub(super) stream: String,
    pub(super) group: String,
    pub(super) consumer: String,
    hung_after: Option<HumanDuration>,
    warn_percent: Option<u32>,
    startup_grace: Option<HumanDuration>,
    confirm: Option<u32>,
    restart_budget: Option<RestartBudget>,
    zombie_after: Option<HumanDuration>,
    claim_policy: Option<ClaimPolicy>,
    restart_on_stale_pending: Option<bool>,
    dead_letter_after: Option<u32>,
    poison_after_crashes: Option<u32>,
}

impl RawWatch {
    /// The parameters it sets.
    pub(super) fn params(&self) -> RawParams {
        RawParams {
            hung_after: self.hung_after,
            warn_percent: self.warn_percent,
            startup_grace: self.startup_grace,
            confirm: self.confirm,
            restart_budget: self.restart_budget,
            zombie_after: self.zombie_after,
            claim_policy: self.claim_policy,
            restart_on_stale_pending: self.restart_on_stale_pending,
            dead_letter_after: self.dead_letter_after,
            poison_after_crashes: self.poison_after_crashes,
        }
    }
}

/// One file's text, typed. A file that does not fit is read again to name the key at fault:
/// the key's path is tracked only then (`exec`'s wrapper never runs that code).
pub(super) fn parse_fragment(file: &str, text: &str) -> Result<RawFile, ConfigError> {
    let de = || {
        toml::de::Deserializer::parse(text)
            .map_err(|e| ConfigError::invalid(file, "<syntax>", toml_message(&e, text)))
    };
    let plain = match RawFile::deserialize(de()?) {
        Ok(raw) => return Ok(raw),
        Err(e) => e,
    };
    Err(
        match serde_path_to_error::deserialize::<_, RawFile>(de()?) {
            Err(e) => {
                let key = e.path().to_string();
                let key = if key == "." {
                    "<top level>".into()
                } else {
                    key
                };
                ConfigError::invalid(file, key, toml_message(e.inner(), text))
            }
            Ok(_) => ConfigError::invalid(file, "<top level>", toml_message(&plain, text)),
        },
    )
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
