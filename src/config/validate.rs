//! Validation: what parses but cannot be meant. Each error names the file, the key and what
//! was expected.

use std::time::Duration;

use crate::model::calendar::CalendarSpec;
use crate::model::consumer_name::Template;

use super::duration::HumanDuration;
use super::fragments::RawWatch;
use super::redact::redact_url;
use super::unit_name::{check_unit_name, check_unit_pattern};
use super::{Config, ConfigError, Deployment, Params, RedisConfig, TlsConfig, Watch};

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
    params.apply(&w.params());
    validate_params(file, &at, &params)?;
    if params.hung_after <= cfg.interval {
        return Err(ConfigError::invalid(
            file,
            format!("{at}.hung_after"),
            format!(
                "expected longer than interval ({}): hung is judged over several cycles",
                crate::config::format_duration(cfg.interval.0)
            ),
        ));
    }
    Ok(Watch::new(w.unit, w.stream, w.group, consumer, params))
}

/// The top-level keys, reported against the last fragment.
pub(super) fn validate_top(file: &str, cfg: &Config) -> Result<(), ConfigError> {
    validate_reports(file, cfg)?;
    validate_timing(file, cfg)?;
    validate_windows(file, cfg)?;
    validate_fleet(file, cfg)?;
    validate_redis(file, &cfg.redis)
}

/// `[fleet]`: a host is not found dead between two of its heartbeats.
fn validate_fleet(file: &str, cfg: &Config) -> Result<(), ConfigError> {
    let min = crate::config::FleetConfig::heartbeat_ttl(cfg.interval.0);
    if cfg.fleet.host_dead_after.0 < min {
        return Err(ConfigError::invalid(
            file,
            "fleet.host_dead_after",
            format!(
                "expected at least 3 × interval ({}), the life of a heartbeat, found {}",
                crate::config::format_duration(min),
                crate::config::format_duration(cfg.fleet.host_dead_after.0)
            ),
        ));
    }
    Ok(())
}

/// With `[fleet]` on a cluster: every watched stream's lease can share its slot.
pub(super) fn validate_fleet_streams(file: &str, cfg: &Config) -> Result<(), ConfigError> {
    if cfg.fleet.enabled && !cfg.redis.cluster.is_empty() {
        for (i, w) in cfg.watch.iter().enumerate() {
            if w.stream.contains('}') && !crate::config::has_hash_tag(&w.stream) {
                return Err(ConfigError::invalid(
                    file,
                    format!("watch[{i}].stream"),
                    format!(
                        "expected a stream name whose recovery lease can share its slot on a cluster: {:?} has a '}}' but no hash tag",
                        w.stream
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// `[[window]]`: a calendar systemd would accept (and a time zone this host knows), a
/// duration, unit patterns; `operators_group` a group name.
fn validate_windows(file: &str, cfg: &Config) -> Result<(), ConfigError> {
    for (i, w) in cfg.window.iter().enumerate() {
        let at = |k: &str| format!("window[{i}].{k}");
        let spec = CalendarSpec::parse(&w.calendar).map_err(|e| {
            ConfigError::invalid(file, at("calendar"), format!("{:?}: {e}", w.calendar))
        })?;
        if let Some(z) = spec.zone()
            && jiff::tz::TimeZone::get(z).is_err()
        {
            return Err(ConfigError::invalid(
                file,
                at("calendar"),
                format!("{z:?}: a time zone this host does not know (tzdata)"),
            ));
        }
        if w.duration.0.is_zero() {
            return Err(ConfigError::invalid(
                file,
                at("duration"),
                "expected a duration greater than 0",
            ));
        }
        if w.units.is_empty() {
            return Err(ConfigError::invalid(
                file,
                at("units"),
                "expected unit name patterns",
            ));
        }
        for u in &w.units {
            check_unit_pattern(u)
                .map_err(|why| ConfigError::invalid(file, at("units"), format!("{u:?}: {why}")))?;
        }
    }
    let g = &cfg.operators_group;
    if g.is_empty()
        || !g
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(ConfigError::invalid(
            file,
            "operators_group",
            format!("expected a group name, found {g:?}"),
        ));
    }
    Ok(())
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
    for (i, u) in cfg.units.iter().enumerate() {
        check_unit_pattern(u).map_err(|why| {
            ConfigError::invalid(file, format!("units[{i}]"), format!("{u:?}: {why}"))
        })?;
    }
    if cfg.deploy_hold.0 > Duration::from_secs(24 * 3600) {
        return Err(ConfigError::invalid(
            file,
            "deploy_hold",
            "expected at most 24h",
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

/// `[redis]`: one deployment, described completely.
fn validate_redis(file: &str, r: &RedisConfig) -> Result<(), ConfigError> {
    let bad = |k: &str, why: String| Err(ConfigError::invalid(file, k, why));
    if r.sentinel.is_some() && !r.cluster.is_empty() {
        return bad(
            "redis.cluster",
            "expected either redis.sentinel or redis.cluster, not both".into(),
        );
    }
    if r.url_set && (r.sentinel.is_some() || !r.cluster.is_empty()) {
        return bad(
            "redis.url",
            "expected no url with redis.sentinel or redis.cluster: they name the servers".into(),
        );
    }
    if r.tls.cert_file.is_some() != r.tls.key_file.is_some() {
        return bad(
            "redis.tls",
            "expected both cert_file and key_file for mutual TLS, or neither".into(),
        );
    }
    match r.deployment() {
        Deployment::Standalone(url) => validate_redis_url(file, url, &r.tls),
        Deployment::Sentinel(s) => {
            if s.master.is_empty() {
                return bad("redis.sentinel.master", "expected the master's name".into());
            }
            validate_nodes(file, "redis.sentinel.nodes", &s.nodes)
        }
        Deployment::Cluster(seeds) => validate_nodes(file, "redis.cluster", seeds),
    }
}

/// `host:port` of Sentinels or cluster seeds.
fn validate_nodes(file: &str, key: &str, nodes: &[String]) -> Result<(), ConfigError> {
    if nodes.is_empty() {
        return Err(ConfigError::invalid(
            file,
            key,
            "expected at least one host:port",
        ));
    }
    for n in nodes {
        let ok = n
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            return Err(ConfigError::invalid(
                file,
                key,
                format!("expected host:port, found {n:?}"),
            ));
        }
    }
    Ok(())
}

/// `redis.url`: a scheme the client knows, a URL it can read, and TLS settings only with
/// `rediss://`.
fn validate_redis_url(file: &str, url: &str, tls: &TlsConfig) -> Result<(), ConfigError> {
    let ok = ["redis://", "rediss://", "unix://", "redis+unix://"]
        .iter()
        .any(|s| url.starts_with(s))
        && redis::IntoConnectionInfo::into_connection_info(url).is_ok();
    if !ok {
        return Err(ConfigError::invalid(
            file,
            "redis.url",
            format!(
                "expected redis://host:port/db, rediss://host:port/db (TLS) or unix:///path/to/socket, found {:?}",
                redact_url(url)
            ),
        ));
    }
    let tls_set =
        tls.enabled || tls.ca_file.is_some() || tls.cert_file.is_some() || tls.insecure_skip_verify;
    if tls_set && !url.starts_with("rediss://") {
        return Err(ConfigError::invalid(
            file,
            "redis.tls",
            format!(
                "expected a rediss:// url for TLS, found {:?}",
                redact_url(url)
            ),
        ));
    }
    Ok(())
}

/// The dead-letter stream must name `<stream>`, and on a cluster share each watched stream's
/// slot (the script that moves an entry touches both keys). Runs once the watches are known.
pub(super) fn validate_dead_letter(file: &str, cfg: &Config) -> Result<(), ConfigError> {
    let key = "redis.dead_letter_stream";
    if let Some(t) = &cfg.redis.dead_letter_stream
        && !t.contains("<stream>")
    {
        return Err(ConfigError::invalid(
            file,
            key,
            format!("expected a name with <stream> in it, such as \"<stream>:dead\", found {t:?}"),
        ));
    }
    if !matches!(cfg.redis.deployment(), Deployment::Cluster(_)) {
        return Ok(());
    }
    for w in &cfg.watch {
        let dead = cfg.redis.dead_letter_key(&w.stream);
        if key_slot(&dead) != key_slot(&w.stream) {
            return Err(ConfigError::invalid(
                file,
                key,
                format!(
                    "expected a name in the stream's slot on a cluster: {dead:?} (slot {}) is not in {:?}'s (slot {}); use a hash tag such as \"{{<stream>}}:dead\"",
                    key_slot(&dead),
                    w.stream,
                    key_slot(&w.stream)
                ),
            ));
        }
    }
    Ok(())
}

/// The Redis Cluster slot of a key: CRC16 (XMODEM) of its hash tag or of the whole key,
/// modulo 16384.
pub fn key_slot(key: &str) -> u16 {
    let b = key.as_bytes();
    let tagged = b.iter().position(|&c| c == b'{').and_then(|i| {
        let end = b[i + 1..].iter().position(|&c| c == b'}')?;
        (end > 0).then(|| &b[i + 1..i + 1 + end])
    });
    crc16(tagged.unwrap_or(b)) % 16384
}

fn crc16(data: &[u8]) -> u16 {
    let mut crc: u16 = 0;
    for &byte in data {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
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
    if !(1..=100).contains(&p.warn_percent) {
        return bad(
            "warn_percent",
            "expected a share of hung_after between 1 and 100 (percent; 100: no warning)",
        );
    }
    if p.poison_after_crashes
        .is_some_and(|n| !(2..=100).contains(&n))
    {
        return bad(
            "poison_after_crashes",
            "expected between 2 and 100 consecutive deaths on the same entry",
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_slots_as_redis_computes_them() {
        // Checked with CLUSTER KEYSLOT on Redis 7.0.
        assert_eq!(key_slot("quantum:stream:trade.intent"), 11793);
        assert_eq!(key_slot("{quantum:stream:trade.intent}:dead"), 11793);
        assert_eq!(key_slot("foo"), 12182);
        assert_eq!(
            key_slot("{user1000}.following"),
            key_slot("{user1000}.followers")
        );
        // Each checked with CLUSTER KEYSLOT on Redis 7.0.15.
        for (key, slot) in [
            ("foo{}{bar}", 8363),    // an empty tag: the whole key
            ("foo{{bar}}zap", 4015), // the tag is "{bar"
            ("foo{bar}{zap}", 5061), // the first tag only
            ("bar", 5061),
            ("quantum:{x}:s", 16287),
            ("quantum:{x}:s:dead", 16287),
            ("{quantum:{x}:s}:dead", 5066), // why a tagged stream keeps <stream>:dead
        ] {
            assert_eq!(key_slot(key), slot, "{key}");
        }
    }

    fn redis_cfg(text: &str) -> Result<Config, ConfigError> {
        super::super::merge::from_fragments(&[("f.toml".into(), text.into())])
    }

    #[test]
    fn deployments_are_described_with_secrets_masked() {
        for (text, describe) in [
            ("", "standalone redis://127.0.0.1:6379/0"),
            (
                "redis.url = \"rediss://:hunter2@r.example:6380/1\"",
                "standalone rediss://:***@r.example:6380/1",
            ),
            (
                "redis.sentinel = { master = \"m\", nodes = [\"a:26379\", \"b:26379\"] }",
                "sentinel master m via 2 sentinel(s)",
            ),
            (
                "redis.cluster = [\"a:7000\", \"b:7000\", \"c:7000\"]\nredis.tls.enabled = true",
                "cluster of 3 seed(s) over TLS",
            ),
        ] {
            let c = redis_cfg(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(c.redis.describe(), describe, "{text}");
        }
        assert!(
            redis_cfg("redis.url = \"rediss://h:1\"")
                .unwrap()
                .redis
                .tls
                .enabled
        );
    }

    #[test]
    fn dead_letter_streams_stay_in_the_streams_slot_on_a_cluster() {
        let cluster = "redis.cluster = [\"a:7000\"]\n";
        for (text, stream, dead) in [
            ("", "s", "s:dead"),
            (
                cluster,
                "quantum:stream:trade.intent",
                "{quantum:stream:trade.intent}:dead",
            ),
            (cluster, "quantum:{x}:s", "quantum:{x}:s:dead"),
            ("redis.dead_letter_stream = \"dlq:<stream>\"", "s", "dlq:s"),
        ] {
            let c = redis_cfg(text).unwrap();
            assert_eq!(c.redis.dead_letter_key(stream), dead, "{text}");
        }
    }

    #[test]
    fn bad_deployments_name_the_key() {
        let watch = "[[watch]]\nunit = \"quantum-a.service\"\nstream = \"quantum:s\"\ngroup = \"g\"\nconsumer = \"a-{pid}\"\n";
        for (text, key, says) in [
            (
                "redis.cluster = [\"a:1\"]\nredis.sentinel = { master = \"m\", nodes = [\"a:1\"] }",
                "redis.cluster",
                "not both",
            ),
            (
                "redis.url = \"redis://h:1\"\nredis.cluster = [\"a:1\"]",
                "redis.url",
                "expected no url",
            ),
            ("redis.cluster = [\"a\"]", "redis.cluster", "host:port"),
            ("redis.cluster = []", "redis.url", ""),
            (
                "redis.sentinel = { master = \"\", nodes = [\"a:1\"] }",
                "redis.sentinel.master",
                "master's name",
            ),
            (
                "redis.sentinel = { master = \"m\", nodes = [\"a:0\"] }",
                "redis.sentinel.nodes",
                "host:port",
            ),
            (
                "redis.tls.cert_file = \"/c.pem\"\nredis.url = \"rediss://h:1\"",
                "redis.tls",
                "both cert_file and key_file",
            ),
            ("redis.tls.ca_file = \"/ca.pem\"", "redis.tls", "rediss://"),
            ("redis.url = \"http://h\"", "redis.url", "expected redis://"),
            (
                "redis.cluster = [\"a:1\"]\nredis.dead_letter_stream = \"<stream>:dead\"",
                "redis.dead_letter_stream",
                "slot",
            ),
            (
                "redis.dead_letter_stream = \"dead\"",
                "redis.dead_letter_stream",
                "<stream>",
            ),
        ] {
            let text = format!("{text}\n{watch}");
            match redis_cfg(&text) {
                Ok(_) if key == "redis.url" && says.is_empty() => {}
                Ok(_) => panic!("accepted: {text}"),
                Err(e) => {
                    let m = e.to_string();
                    assert!(m.contains(key) && m.contains(says), "{text}: {m}");
                }
            }
        }
    }
}
