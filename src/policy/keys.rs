//! Key gauges and flags: Redis keys compared with a limit, or shown with their value. Reported
//! only; they never lead to an action.

use crate::config::Config;
use crate::model::{ReadError, Snapshot, render_key};

use super::decision::{FlagReport, GaugeReport};
use super::verdict::Severity;

/// Judges every `[[gauge]]` and reads every `[[flag]]`.
pub fn judge_keys(cfg: &Config, snap: &Snapshot) -> (Vec<GaugeReport>, Vec<FlagReport>) {
    let keys = snap.redis.as_ref().ok().map(|r| &r.keys);
    let value = |k: &str| -> Result<Option<String>, ReadError> {
        match keys.and_then(|m| m.get(k)) {
            Some(v) => v.clone(),
            None => Err(ReadError::Unreachable("redis unreachable".into())),
        }
    };
    let gauges = cfg
        .gauge
        .iter()
        .map(|g| {
            let key = render_key(&g.key, snap.now_usec, snap.utc_offset_secs);
            let (val, severity, note) = gauge_reading(value(&key), g.limit, g.warn_at);
            GaugeReport {
                name: if g.name.is_empty() {
                    g.key.clone()
                } else {
                    g.name.clone()
                },
                key,
                value: val,
                limit: g.limit,
                ratio: val.map(|v| v / g.limit),
                severity,
                note,
            }
        })
        .collect();
    let flags = cfg
        .flag
        .iter()
        .map(|f| {
            let key = render_key(&f.key, snap.now_usec, snap.utc_offset_secs);
            FlagReport {
                name: if f.name.is_empty() {
                    f.key.clone()
                } else {
                    f.name.clone()
                },
                value: value(&key).ok().flatten(),
                key,
            }
        })
        .collect();
    (gauges, flags)
}

/// A gauge's value, severity and note from what its key holds.
fn gauge_reading(
    read: Result<Option<String>, ReadError>,
    limit: f64,
    warn_at: f64,
) -> (Option<f64>, Severity, String) {
    let s = match read {
        Err(e) => return (None, Severity::Unknown, e.to_string()),
        Ok(None) => return (Some(0.0), Severity::Ok, "key absent (0)".to_string()),
        Ok(Some(s)) => s,
    };
    match s.trim().parse::<f64>() {
        Ok(v) if v >= limit => (
            Some(v),
            Severity::Critical,
            format!("{v} reached the limit {limit}"),
        ),
        Ok(v) if v >= limit * warn_at => (
            Some(v),
            Severity::Warning,
            format!("{v} is {:.0}% of the limit {limit}", v * 100.0 / limit),
        ),
        Ok(v) => (
            Some(v),
            Severity::Ok,
            format!("{:.0}% of the limit", v * 100.0 / limit),
        ),
        Err(_) => (None, Severity::Warning, format!("not a number: {s:?}")),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::from_fragments;
    use crate::model::RedisSnapshot;
    use crate::policy::plan::keys_to_fetch;

    const S: u64 = 1_000_000;

    fn cfg() -> Config {
        from_fragments(&[(
            "t".into(),
            r#"
[[gauge]]
name = "daily trades"
key = "q:governor:daily_trades:{utcdate}"
limit = 200
[[flag]]
key = "q:kill"
"#
            .into(),
        )])
        .unwrap()
    }

    fn snap(now: u64) -> Snapshot {
        Snapshot {
            now_usec: now,
            mono_usec: now,
            hostname: "h".into(),
            self_unit: None,
            units: Ok(vec![]),
            redis: Ok(RedisSnapshot::default()),
            live_pids: BTreeMap::new(),
            pid_units: BTreeMap::new(),
            utc_offset_secs: 0,
            holds: Default::default(),
        }
    }

    #[test]
    fn gauges_warn_at_85_percent() {
        let c = cfg();
        let now = 1_768_651_200 * S; // 2026-01-17 12:00 UTC
        let mut s = snap(now);
        let key = "q:governor:daily_trades:2026-01-17".to_string();
        assert_eq!(
            keys_to_fetch(&c, now, 0),
            vec![key.clone(), "q:kill".into()]
        );
        for (v, sev) in [
            (Some("100"), Severity::Ok),
            (Some("170"), Severity::Warning),
            (Some("200"), Severity::Critical),
            (None, Severity::Ok),
            (Some("x"), Severity::Warning),
        ] {
            if let Ok(r) = &mut s.redis {
                r.keys.insert(key.clone(), Ok(v.map(str::to_string)));
                r.keys.insert("q:kill".into(), Ok(Some("1".into())));
            }
            let (g, f) = judge_keys(&c, &s);
            assert_eq!(g[0].severity, sev, "{v:?}: {}", g[0].note);
            assert_eq!(f[0].value.as_deref(), Some("1"));
        }
    }
}
