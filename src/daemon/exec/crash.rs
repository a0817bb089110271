//! A crash loop on one entry under `exec`: the wrapper ends with its child, so the streak of
//! deaths on the same head lives in Redis (`{<stream>}:quantum-watchdog:crashes:<group>`, per
//! unit), written by each wrapper as its child dies; the policy's rule decides
//! ([`policy::quarantine::judge_wrapped_death`]) and the quarantine is carried out before the
//! wrapper exits, so the next child comes up clean.

use std::time::Duration;

use crate::policy::memory::CrashHead;
use crate::policy::quarantine::{self, Crash, Death};

use super::Exec;
use super::child::End;

impl Exec {
    /// Whether the child's end is a death that counts: it ended on its own (not after a stop
    /// signal, and not cleanly) or by our watchdog trigger.
    fn died(&self, end: End) -> bool {
        let stopped = self.stop_asked.is_some() && self.watch != super::Watch::Triggered;
        !stopped && end != End::Exited(0)
    }

    /// Notes the child's death on each binding with `poison_after_crashes`, quarantining the
    /// head its consumer held when the streak is reached. Bounded by `redis.timeout` a call;
    /// a failure is a warning (the streak stands as it was).
    pub(super) async fn note_death(&mut self, end: End) {
        if !self.died(end) {
            return;
        }
        let host = crate::adapters::clock::hostname();
        let death = Death {
            unit: self.unit.clone(),
            old_pid: self.child,
            exit_status: end.to_string(),
        };
        let watches: Vec<_> = self
            .cfg
            .watch
            .iter()
            .filter(|w| w.unit == self.unit && w.params.poison_after_crashes.is_some())
            .cloned()
            .collect();
        for w in &watches {
            let Some(consumer) = w.consumer.render(&host, self.child, &w.unit) else {
                continue;
            };
            if let Err(e) = self.note_on(w, &consumer, &death).await {
                tracing::warn!(
                    unit = self.unit.as_str(),
                    "{}: the crash streak of {} could not be kept: {e}",
                    self.unit,
                    w.group
                );
            }
        }
    }

    async fn note_on(
        &mut self,
        w: &crate::config::Watch,
        consumer: &str,
        death: &Death,
    ) -> Result<(), crate::adapters::redis::ClientError> {
        let streams = &mut self.world.streams;
        let (head, record) = streams
            .crash_look(&w.stream, &w.group, consumer, &self.unit)
            .await?;
        let Some(head) = head else {
            return streams
                .note_crash(&w.stream, &w.group, &self.unit, None)
                .await;
        };
        let last: Option<CrashHead> = record.and_then(|r| serde_json::from_str(&r).ok());
        let dead = self.cfg.redis.dead_letter_key(&w.stream);
        let at = Crash {
            consumer,
            head: &head,
            death,
        };
        let (keep, action) = quarantine::judge_wrapped_death(w, dead, &at, last.as_ref());
        let keep = keep.map(|k| serde_json::to_string(&k).expect("a streak serialises"));
        streams
            .note_crash(&w.stream, &w.group, &self.unit, keep.as_deref())
            .await?;
        if let Some(a) = action {
            self.carry_out(std::slice::from_ref(&a), Duration::from_secs(5))
                .await;
        }
        Ok(())
    }
}
