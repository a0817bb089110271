//! Validation: what parses but cannot be meant. Each error names the file, the key and what
//! was expected.

use std::time::Duration;

use crate::model::consumer_name::Template;

use super::duration::HumanDuration;
use super::fragments::RawWatch;
use super::redact::redact_url;
use super::unit_name::check_unit_name;
use super::{Config, ConfigError, Params, Watch};

/// Builds one `[[watch]]` (number `i`, from `file`) over the defaults, and checks it.
pub(super) fn validate_watch(
    file: &str,
    i: usize,
    w: RawWatch,
    cfg: &Config,
) -> Result<Watch, ConfigError> {
    let at = format!("watch[{i}]");
    let consumer = Template::parse(&w.consumer)
        .map_err(|e| ConfigError::invalid(file, format!("{at}.consumer"), e.to_string()))?;
    if let Err(why) = check_unit_name(&w.unit) {
        return Err(ConfigError::invalid(
            file,
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
                file,
                format!("{at}.{k}"),
                "expected a non-empty name",
            ));
        }
    }
    let mut params = cfg.defaults.clone();
    params.apply(&w.params);
    validate_params(file, &at, &params)?;
    if params.hung_after <= cfg.interval {
        return Err(ConfigError::invalid(
            file,
            format!("{at}.hung_after"),
            format!(
                "expected longer than interval ({}): hung is judged over several cycles",
                humantime::format_duration(cfg.interval.0)
            ),
        ));
    }
    Ok(Watch {
        unit: w.unit,
        stream: w.stream,
        group: w.group,
        consumer,
        params,
    })
}

/// The top-level keys, reported against the last fragment.
pub(super) fn validate_top(file: &str, cfg: &Config) -> Result<(), ConfigError> {
    validate_reports(file, cfg)?;
    validate_timing(file, cfg)?;
    validate_redis_url(file, &cfg.redis.url)
}

/// `[metrics]`, `[[pipeline]]`, `[[gauge]]`.
fn validate_reports(file: &str, cfg: &Config) -> Result<(), ConfigError> {
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
    Ok(())
}

/// `interval`, `units`, the timeouts.
fn validate_timing(file: &str, cfg: &Config) -> Result<(), ConfigError> {
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

/// `redis.url`: a scheme the client knows, and a URL it can read.
fn validate_redis_url(file: &str, url: &str) -> Result<(), ConfigError> {
    let ok = ["redis://", "rediss://", "unix://", "redis+unix://"]
        .iter()
        .any(|s| url.starts_with(s))
        && redis::IntoConnectionInfo::into_connection_info(url).is_ok();
    if ok {
        return Ok(());
    }
    Err(ConfigError::invalid(
        file,
        "redis.url",
        format!(
            "expected redis://host:port/db or unix:///path/to/socket, found {:?}",
            redact_url(url)
        ),
    ))
}

/// Decision parameters of `[defaults]` or one `[[watch]]` (`at`).
pub(super) fn validate_params(file: &str, at: &str, p: &Params) -> Result<(), ConfigError> {
    let positive = |k: &str, d: &HumanDuration| {
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
    positive("hung_after", &p.hung_after)?;
    positive("zombie_after", &p.zombie_after)?;
    positive("restart_budget.within", &p.restart_budget.within)?;
    let bad = |k: &str, why: &str| Err(ConfigError::invalid(file, format!("{at}.{k}"), why));
    if p.confirm == 0 {
        return bad("confirm", "expected a whole number of cycles, at least 1");
    }
    if p.dead_letter_after == Some(0) {
        return bad(
            "dead_letter_after",
            "expected a number of deliveries, at least 1",
        );
    }
    if p.restart_budget.max == 0 || p.restart_budget.max > 1000 {
        return bad("restart_budget.max", "expected between 1 and 1000 restarts");
    }
    Ok(())
}
