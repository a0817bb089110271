//! Carries out (enforce) or only logs (observe) the consumer actions the policy proposed:
//! claim, requeue, delete. Restarts belong to the agent, which tracks their jobs.
//!
//! Every action and its outcome is one log line with `UNIT=`, `STREAM=`, `GROUP=`,
//! `CONSUMER=`, `ACTION=`, `REASON=` fields.

use std::time::Instant;

use serde::Serialize;

use crate::config::{ClaimPolicy, Mode};
use crate::metrics::Metrics;
use crate::model::{GroupKey, now_usec};
use crate::policy::{Action, Memory};
use crate::streams::{DeleteOutcome, Moved, Streams};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Totals {
    pub claimed: u64,
    pub requeued: u64,
    pub deleted: u64,
    #[serde(default)]
    pub dead_lettered: u64,
    pub restarts: u64,
    pub errors: u64,
}

/// Logs one action: `would …` in observe mode, or what happened.
pub fn log_action(a: &Action, mode: Mode, outcome: &str, ok: bool) {
    let (stream, group, consumer) = a.target();
    let unit = a.unit().unwrap_or("");
    let reason = a.reason();
    let described = a.describe();
    let (what, why) = (printable(&described), printable(reason));
    if mode == Mode::Observe {
        let action = format!("would-{}", a.kind());
        tracing::info!(
            unit,
            stream,
            group,
            consumer,
            action,
            reason,
            mode = "observe",
            message_id = crate::catalog::WOULD,
            "would {what} (observe mode): {why}"
        );
        return;
    }
    let action = a.kind();
    let outcome = printable(outcome);
    if ok {
        tracing::info!(
            unit,
            stream,
            group,
            consumer,
            action,
            reason,
            mode = "enforce",
            message_id = crate::catalog::for_action(action),
            "{what}: {outcome}; {why}"
        );
    } else {
        tracing::error!(
            unit,
            stream,
            group,
            consumer,
            action,
            reason,
            mode = "enforce",
            message_id = crate::catalog::ACTION_FAILED,
            "{what} failed: {outcome}; {why}"
        );
    }
}

/// What carrying out consumer actions needs.
pub struct Act<'a> {
    /// The Redis adapter.
    pub streams: &'a mut Streams,
    /// Observe or enforce.
    pub mode: Mode,
    /// Claims stop here and go on next cycle.
    pub deadline: Instant,
    /// Counters for the status line.
    pub totals: &'a mut Totals,
    /// Metrics.
    pub metrics: &'a Metrics,
    /// The policy's memory: claims to live consumers are recorded in it.
    pub mem: &'a mut Memory,
}

fn rate(t0: Instant, n: u64) -> String {
    let s = t0.elapsed().as_secs_f64();
    format!(
        "in {:.0} ms, {:.0}/s",
        s * 1000.0,
        if s > 0.0 { n as f64 / s } else { 0.0 }
    )
}

/// Executes one claim, requeue, dead-letter or delete in enforce mode (logs only in observe
/// mode). A claim or requeue that empties its dead consumer deletes it in the same sweep.
/// Returns a short outcome for the state file.
pub async fn consumer_action(x: &mut Act<'_>, a: &Action) -> String {
    if x.mode == Mode::Observe {
        log_action(a, x.mode, "", true);
        return format!("would {}", a.describe());
    }
    let t0 = Instant::now();
    let (outcome, ok, moved, emptied) = match a {
        Action::Restart { .. } => return String::new(),
        Action::Claim {
            stream,
            group,
            from,
            to,
            policy,
            to_active_usec,
            ..
        } => match x
            .streams
            .claim_all(stream, group, from, to, x.deadline)
            .await
        {
            Ok(m) => {
                x.totals.claimed += m.moved;
                if *policy == ClaimPolicy::Handoff && m.moved > 0 {
                    let key = GroupKey {
                        stream: stream.clone(),
                        group: group.clone(),
                    };
                    let now = now_usec();
                    x.mem
                        .note_claim(&key, to, now, to_active_usec.unwrap_or(now));
                }
                x.metrics.record_ghosts(stream, group, m.ghosts);
                let s = format!("claimed {} to {to} {}", m.moved, rate(t0, m.moved));
                (moved_outcome(s, &m), true, m.moved, m.done)
            }
            Err(e) => (e.to_string(), false, 0, false),
        },
        Action::Requeue {
            stream,
            group,
            from,
            ..
        } => match x.streams.requeue_all(stream, group, from, x.deadline).await {
            Ok(m) => {
                x.totals.requeued += m.moved;
                x.metrics.record_ghosts(stream, group, m.ghosts);
                let s = format!(
                    "requeued {} copies and acknowledged the originals {}",
                    m.moved,
                    rate(t0, m.moved)
                );
                (moved_outcome(s, &m), true, m.moved, m.done)
            }
            Err(e) => (e.to_string(), false, 0, false),
        },
        Action::DeadLetter {
            stream,
            group,
            id,
            min_deliveries,
            ..
        } => match x
            .streams
            .dead_letter(stream, group, id, *min_deliveries)
            .await
        {
            Ok(true) => {
                x.totals.dead_lettered += 1;
                (
                    format!("moved to {stream}:dead and acknowledged"),
                    true,
                    1,
                    false,
                )
            }
            Ok(false) => ("no longer pending or not due".to_string(), true, 0, false),
            Err(e) => (e.to_string(), false, 0, false),
        },
        Action::Delete { .. } => return delete(x, a).await,
    };
    if !ok {
        x.totals.errors += 1;
    }
    x.metrics.record(a, moved, ok);
    log_action(a, x.mode, &outcome, ok);
    if emptied {
        let follow = Action::Delete {
            unit: a.unit().map(str::to_string),
            stream: a.target().0.to_string(),
            group: a.target().1.to_string(),
            consumer: a.target().2.to_string(),
            min_idle_ms: 0,
            reason: format!("dead consumer emptied by {}", a.kind()),
        };
        let d = delete(x, &follow).await;
        return format!("{outcome}; {d}");
    }
    outcome
}

fn moved_outcome(mut s: String, m: &Moved) -> String {
    if m.ghosts > 0 {
        s.push_str(&format!(
            ", {} no longer in the stream (left its list)",
            m.ghosts
        ));
    }
    if !m.done {
        s.push_str(", more next cycle");
    }
    s
}

/// Check-and-delete (one script): a consumer that holds an entry at that instant is kept.
async fn delete(x: &mut Act<'_>, a: &Action) -> String {
    let Action::Delete {
        stream,
        group,
        consumer,
        min_idle_ms,
        ..
    } = a
    else {
        return String::new();
    };
    let (outcome, ok, deleted) = match x
        .streams
        .delete_consumer(stream, group, consumer, *min_idle_ms)
        .await
    {
        Ok(DeleteOutcome::Deleted(held)) => {
            x.totals.deleted += 1;
            (format!("deleted (held {held})"), held == 0, 1)
        }
        Ok(DeleteOutcome::Gone) => ("already gone".to_string(), true, 0),
        Ok(DeleteOutcome::KeptHoldsPending) => {
            ("kept: it holds pending entries now".to_string(), true, 0)
        }
        Ok(DeleteOutcome::KeptNotIdle) => ("kept: it read again".to_string(), true, 0),
        Err(e) => (e.to_string(), false, 0),
    };
    if !ok {
        x.totals.errors += 1;
    }
    x.metrics.record(a, deleted, ok);
    log_action(a, x.mode, &outcome, ok);
    outcome
}

/// A name or message as it may be printed: control characters (an escape sequence, a
/// newline) are shown escaped, so no consumer name can forge output.
pub fn printable(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("execution-h-1"), "execution-h-1");
        assert_eq!(printable("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(printable("a\u{1b}[2J"), "a\\u{1b}[2J");
        assert_eq!(
            printable("x\nquantum-a.service HEALTHY"),
            "x\\nquantum-a.service HEALTHY"
        );
        assert_eq!(printable("tab\there"), "tab\\there");
        assert_eq!(printable("é ü 中"), "é ü 中", "printable non-ASCII stays");
    }
}
