//! Carries out (enforce) or only logs (observe) the consumer actions the policy proposed:
//! claim, requeue, delete. Restarts belong to the agent, which tracks their jobs.
//!
//! Every action and its outcome is one log line with `UNIT=`, `STREAM=`, `GROUP=`,
//! `CONSUMER=`, `ACTION=`, `REASON=` fields.

use std::time::Instant;

use serde::Serialize;

use crate::config::Mode;
use crate::metrics::Metrics;
use crate::policy::Action;
use crate::streams::{DeleteOutcome, Streams};

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
    let (stream, group, consumer) = match a {
        Action::Restart { .. } => ("", "", ""),
        Action::Claim {
            stream,
            group,
            from,
            ..
        }
        | Action::Requeue {
            stream,
            group,
            from,
            ..
        } => (stream.as_str(), group.as_str(), from.as_str()),
        Action::Delete {
            stream,
            group,
            consumer,
            ..
        }
        | Action::DeadLetter {
            stream,
            group,
            consumer,
            ..
        } => (stream.as_str(), group.as_str(), consumer.as_str()),
    };
    let unit = a.unit().unwrap_or("");
    let reason = a.reason();
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
            "would {} (observe mode): {reason}",
            a.describe()
        );
        return;
    }
    let action = a.kind();
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
            "{}: {outcome}; {reason}",
            a.describe()
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
            "{} failed: {outcome}; {reason}",
            a.describe()
        );
    }
}

/// Executes one claim, requeue or delete in enforce mode (logs only in observe mode).
/// Returns a short outcome for the state file.
pub async fn consumer_action(
    streams: &mut Streams,
    a: &Action,
    mode: Mode,
    deadline: Instant,
    totals: &mut Totals,
    metrics: &Metrics,
) -> String {
    if mode == Mode::Observe {
        log_action(a, mode, "", true);
        return format!("would {}", a.describe());
    }
    let t0 = Instant::now();
    let rate = |n: u64| {
        let s = t0.elapsed().as_secs_f64();
        format!(
            "in {:.0} ms, {:.0}/s",
            s * 1000.0,
            if s > 0.0 { n as f64 / s } else { 0.0 }
        )
    };
    let mut moved = 0;
    let (outcome, ok) = match a {
        Action::Restart { .. } => return String::new(),
        Action::Claim {
            stream,
            group,
            from,
            to,
            ..
        } => match streams.claim_all(stream, group, from, to, deadline).await {
            Ok(m) => {
                totals.claimed += m.moved;
                moved = m.moved;
                let mut s = format!("claimed {} to {to} {}", m.moved, rate(m.moved));
                if m.skipped > 0 {
                    s.push_str(&format!(", {} no longer in the stream", m.skipped));
                }
                if !m.done {
                    s.push_str(", more next cycle");
                }
                (s, true)
            }
            Err(e) => (e.to_string(), false),
        },
        Action::Requeue {
            stream,
            group,
            from,
            ..
        } => match streams.requeue_all(stream, group, from, deadline).await {
            Ok(m) => {
                totals.requeued += m.moved;
                moved = m.moved;
                (
                    format!(
                        "requeued {} copies and acknowledged the originals {}",
                        m.moved,
                        rate(m.moved)
                    ),
                    true,
                )
            }
            Err(e) => (e.to_string(), false),
        },
        Action::DeadLetter {
            stream,
            group,
            id,
            min_deliveries,
            ..
        } => match streams
            .dead_letter(stream, group, id, *min_deliveries)
            .await
        {
            Ok(true) => {
                totals.dead_lettered += 1;
                moved = 1;
                (format!("moved to {stream}:dead and acknowledged"), true)
            }
            Ok(false) => ("no longer pending or not due".to_string(), true),
            Err(e) => (e.to_string(), false),
        },
        Action::Delete {
            stream,
            group,
            consumer,
            min_idle_ms,
            ..
        } => {
            match streams
                .delete_consumer(stream, group, consumer, *min_idle_ms)
                .await
            {
                Ok(DeleteOutcome::Deleted(held)) => {
                    totals.deleted += 1;
                    moved = 1;
                    (format!("deleted (held {held})"), held == 0)
                }
                Ok(DeleteOutcome::Gone) => ("already gone".to_string(), true),
                Ok(DeleteOutcome::KeptHoldsPending) => {
                    ("kept: it holds pending entries now".to_string(), true)
                }
                Ok(DeleteOutcome::KeptNotIdle) => ("kept: it read again".to_string(), true),
                Err(e) => (e.to_string(), false),
            }
        }
    };
    if !ok {
        totals.errors += 1;
    }
    metrics.record(a, moved, ok);
    log_action(a, mode, &outcome, ok);
    outcome
}
