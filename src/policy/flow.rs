//! Pipeline flow: pure functions over the snapshot and a short history.
//!
//! A **stage** is a stream of a `[[pipeline]]` with the groups that read it. Each cycle records
//! the stream's `entries-added` (or length) and each group's delivery position; rates come from
//! that history. A stage is **stalled** when its group has work waiting and has delivered nothing
//! for `stall_after`. The first stalled stage of a pipeline is where flow stops. A stall is
//! reported (verdict, metric, alert) and never restarts anything by itself.

use std::collections::VecDeque;

use crate::config::{Config, Pipeline};
use crate::model::{GroupInfo, GroupKey, RedisSnapshot, Snapshot, StreamInfo, fmt_ms};

use super::decision::{GroupFlow, PipelineReport, StageReport};
use super::memory::{FlowMemory, GroupHistory};
use super::verdict::Severity;

/// History kept for rates: samples at least this far apart, for this long.
const SAMPLE_EVERY_USEC: u64 = 5_000_000;
const KEEP_USEC: u64 = 600_000_000;
/// Rates are computed over this window.
pub const RATE_WINDOW_USEC: u64 = 300_000_000;

fn short(stream: &str) -> &str {
    stream.rsplit(':').next().unwrap_or(stream)
}

fn rate_per_min(samples: &VecDeque<(u64, u64)>, now: u64) -> Option<f64> {
    let recent: Vec<&(u64, u64)> = samples
        .iter()
        .filter(|(t, _)| t + RATE_WINDOW_USEC >= now)
        .collect();
    let (first, last) = (recent.first()?, recent.last()?);
    let dt = last.0.saturating_sub(first.0);
    if dt < 1_000_000 {
        return None;
    }
    Some(last.1.saturating_sub(first.1) as f64 * 60_000_000.0 / dt as f64)
}

fn push(samples: &mut VecDeque<(u64, u64)>, now: u64, v: u64) {
    if samples
        .back()
        .is_none_or(|(t, _)| now >= t + SAMPLE_EVERY_USEC)
    {
        samples.push_back((now, v));
    } else if let Some(b) = samples.back_mut() {
        // Keep the newest value in the newest slot, so rates are current.
        *b = (b.0, v);
    }
    while samples.front().is_some_and(|(t, _)| t + KEEP_USEC < now) && samples.len() > 2 {
        samples.pop_front();
    }
}

/// Judges every `[[pipeline]]`, updating the flow history.
pub fn judge_pipelines(cfg: &Config, snap: &Snapshot, mem: &mut FlowMemory) -> Vec<PipelineReport> {
    let Ok(redis) = &snap.redis else {
        return cfg
            .pipeline
            .iter()
            .map(|p| PipelineReport {
                name: p.name.clone(),
                stages: Vec::new(),
                stalled_at: None,
                severity: Severity::Unknown,
                message: "redis unreachable".into(),
            })
            .collect();
    };
    cfg.pipeline
        .iter()
        .map(|p| judge_pipeline(p, redis, snap.mono_usec, mem))
        .collect()
}

fn judge_pipeline(
    p: &Pipeline,
    redis: &RedisSnapshot,
    now: u64,
    mem: &mut FlowMemory,
) -> PipelineReport {
    let stall_ms = p.stall_after.as_millis();
    let stages: Vec<StageReport> = p
        .streams
        .iter()
        .map(|stream| match redis.streams.get(stream) {
            Some(Ok((info, groups))) => {
                judge_stage(redis, stream, info, groups, now, stall_ms, mem)
            }
            other => StageReport {
                stream: stream.clone(),
                length: None,
                added_per_min: None,
                groups: Vec::new(),
                error: Some(match other {
                    Some(Err(e)) => e.to_string(),
                    _ => "not fetched".into(),
                }),
            },
        })
        .collect();
    let stalled_at = stages
        .iter()
        .position(|s| s.groups.iter().any(|g| g.stalled));
    let (severity, message) = verdict_of(&stages, stalled_at);
    PipelineReport {
        name: p.name.clone(),
        stages,
        stalled_at,
        severity,
        message,
    }
}

/// One stream of a pipeline: its arrival rate and each group's flow.
fn judge_stage(
    redis: &RedisSnapshot,
    stream: &str,
    info: &StreamInfo,
    groups: &[GroupInfo],
    now: u64,
    stall_ms: u64,
    mem: &mut FlowMemory,
) -> StageReport {
    let sh = mem.streams.entry(stream.to_string()).or_default();
    push(
        &mut sh.samples,
        now,
        info.entries_added.unwrap_or(info.length),
    );
    let added = rate_per_min(&sh.samples, now);
    let flows = groups
        .iter()
        .map(|g| group_flow(redis, stream, info, g, now, stall_ms, mem))
        .collect();
    StageReport {
        stream: stream.to_string(),
        length: Some(info.length),
        added_per_min: added,
        groups: flows,
        error: None,
    }
}

fn group_flow(
    redis: &RedisSnapshot,
    stream: &str,
    info: &StreamInfo,
    g: &GroupInfo,
    now: u64,
    stall_ms: u64,
    mem: &mut FlowMemory,
) -> GroupFlow {
    let key = format!("{stream}\u{0}{}", g.name);
    // First sight: estimate the last delivery from the consumers' own timers.
    let first_guess = first_delivery_guess(redis, stream, &g.name)
        .map(|ms| now.saturating_sub(ms.saturating_mul(1000)))
        .unwrap_or(now);
    let gh = mem.groups.entry(key).or_insert_with(|| GroupHistory {
        last_delivered: g.last_delivered_id.to_string(),
        moved_usec: first_guess,
        samples: VecDeque::new(),
    });
    if gh.last_delivered != g.last_delivered_id.to_string() {
        gh.last_delivered = g.last_delivered_id.to_string();
        gh.moved_usec = now;
    }
    push(&mut gh.samples, now, g.entries_read.unwrap_or(0));
    let waiting = g.work_waiting(info);
    let no_delivery_ms = now.saturating_sub(gh.moved_usec) / 1000;
    GroupFlow {
        group: g.name.clone(),
        lag: g.lag,
        work_waiting: waiting,
        delivered_per_min: g.entries_read.and(rate_per_min(&gh.samples, now)),
        no_delivery_ms,
        stalled: waiting && no_delivery_ms >= stall_ms,
    }
}

/// The pipeline's severity and one line: where flow stops, or what could not be read.
fn verdict_of(stages: &[StageReport], stalled_at: Option<usize>) -> (Severity, String) {
    if let Some(i) = stalled_at {
        let s = &stages[i];
        let g = s
            .groups
            .iter()
            .find(|g| g.stalled)
            .expect("a stalled group");
        let lag = g
            .lag
            .map(|l| format!("lag {l}"))
            .unwrap_or_else(|| "entries waiting".into());
        let head = match stages.get(i + 1) {
            Some(next) => format!(
                "{} entries arrive, {} entries do not",
                short(&s.stream),
                short(&next.stream)
            ),
            None => format!("{} entries arrive and are not consumed", short(&s.stream)),
        };
        return (
            Severity::Critical,
            format!(
                "{head}: group {} has {lag} and no delivery for {}",
                g.group,
                fmt_ms(g.no_delivery_ms)
            ),
        );
    }
    let errors: Vec<String> = stages
        .iter()
        .filter_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.stream)))
        .collect();
    if errors.is_empty() {
        (Severity::Ok, "flowing".into())
    } else {
        (Severity::Unknown, errors.join("; "))
    }
}

/// The shortest time since any consumer of a bound group last received entries: `inactive`
/// on 7.2+, `idle` before (which a read of the consumer's own pending list also resets).
fn first_delivery_guess(redis: &RedisSnapshot, stream: &str, group: &str) -> Option<u64> {
    let key = GroupKey {
        stream: stream.to_string(),
        group: group.to_string(),
    };
    let g = redis.groups.get(&key)?.as_ref().ok()?;
    g.consumers
        .iter()
        .map(|c| match c.inactive_ms {
            Some(i) if i >= 0 => i as u64,
            Some(_) => u64::MAX,
            None => c.idle_ms,
        })
        .min()
        .filter(|m| *m != u64::MAX)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::config::from_fragments;
    use crate::model::{RedisSnapshot, StreamId};

    const S: u64 = 1_000_000;

    fn id(ms: u64) -> StreamId {
        StreamId { ms, seq: 0 }
    }

    fn cfg() -> Config {
        from_fragments(&[(
            "t".into(),
            r#"
[[pipeline]]
name = "trading"
streams = ["q:ai.decision.made", "q:trade.intent", "q:execution.result"]
stall_after = "60s"
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

    fn stream(added: u64) -> StreamInfo {
        StreamInfo {
            length: added.min(10_000),
            last_generated_id: id(added),
            entries_added: Some(added),
        }
    }

    fn group(name: &str, delivered: u64, added: u64) -> GroupInfo {
        GroupInfo {
            name: name.into(),
            consumers: 1,
            pending: 0,
            last_delivered_id: id(delivered),
            entries_read: Some(delivered),
            lag: Some(added - delivered),
        }
    }

    fn snap(now: u64, decisions: u64, router_read: u64, intents: u64, exec_read: u64) -> Snapshot {
        let mut r = RedisSnapshot::default();
        r.streams.insert(
            "q:ai.decision.made".into(),
            Ok((
                stream(decisions),
                vec![group("router", router_read, decisions)],
            )),
        );
        r.streams.insert(
            "q:trade.intent".into(),
            Ok((
                stream(intents),
                vec![group("execution", exec_read, intents)],
            )),
        );
        r.streams
            .insert("q:execution.result".into(), Ok((stream(exec_read), vec![])));
        Snapshot {
            now_usec: now,
            mono_usec: now,
            hostname: "h".into(),
            self_unit: None,
            units: Ok(vec![]),
            redis: Ok(r),
            live_pids: BTreeMap::new(),
            pid_units: BTreeMap::new(),
            utc_offset_secs: 0,
            holds: Default::default(),
        }
    }

    #[test]
    fn a_stall_is_found_at_the_middle_stage() {
        let c = cfg();
        let mut m = FlowMemory::default();
        let t0 = 1_800_000_000 * S;
        // Everything flows for two minutes: 10 decisions/s, all routed and executed.
        for k in 0..=24u64 {
            let n = 1000 + k * 50;
            let r = judge_pipelines(&c, &snap(t0 + k * 5 * S, n, n, n, n), &mut m);
            assert_eq!(r[0].severity, Severity::Ok, "{}", r[0].message);
        }
        let flowing = judge_pipelines(&c, &snap(t0 + 125 * S, 2250, 2250, 2250, 2250), &mut m);
        let per_min = flowing[0].stages[0].added_per_min.unwrap();
        assert!((590.0..=610.0).contains(&per_min), "{per_min}");
        // Then the router stops delivering while decisions keep arriving.
        let t1 = t0 + 130 * S;
        let mut last = None;
        for k in 0..=20u64 {
            last = Some(judge_pipelines(
                &c,
                &snap(t1 + k * 5 * S, 2300 + k * 50, 2300, 2300, 2300),
                &mut m,
            ));
        }
        let r = &last.unwrap()[0];
        assert_eq!(r.stalled_at, Some(0), "{r:#?}");
        assert_eq!(r.severity, Severity::Critical);
        assert!(r.message.starts_with("ai.decision.made entries arrive, trade.intent entries do not: group router has lag 1000 and no delivery for 1m40s"), "{}", r.message);
        assert!(
            !r.stages[1].groups[0].stalled,
            "execution has nothing waiting: not stalled"
        );
    }

    #[test]
    fn quiet_pipeline_is_not_stalled() {
        let c = cfg();
        let mut m = FlowMemory::default();
        for k in 0..100u64 {
            let r = judge_pipelines(&c, &snap(k * 5 * S, 10, 10, 10, 10), &mut m);
            assert_eq!(r[0].severity, Severity::Ok);
        }
    }
}
