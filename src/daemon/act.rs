//! Act: every action the policy proposed, carried out in enforce mode (restarts through
//! systemd, claims, requeues, dead-lettering and deletes through Redis) or only logged in
//! observe mode. Every action and its outcome is one journal line ([`journal::log_action`]).

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::adapters::clock::mono_usec;
use crate::adapters::redis::{Aside, DeleteOutcome, Fence, Moved};
use crate::config::{FleetConfig, Mode};
use crate::model::fleet::lease_holder;
use crate::model::{GroupKey, JobResult, fmt_ms};
use crate::policy::{Action, Decision, Memory};
use crate::report::journal::{self, log_action};
use crate::report::metrics::Metrics;
use crate::report::printable::printable;
use crate::report::state::Totals;

use super::gather::World;

/// How long a restart job may take before the agent stops waiting for it.
const JOB_TIMEOUT: Duration = Duration::from_secs(300);

/// A restart job that ended: the unit, and its result (`done`, `failed`, …) or why it is unknown.
pub type JobEnd = (String, Result<JobResult, String>);

/// What carrying out actions needs.
pub struct Act<'a> {
    /// The adapters.
    pub world: &'a mut World,
    /// Observe or enforce.
    pub mode: Mode,
    /// Claims stop here and go on next cycle.
    pub deadline: Instant,
    /// Counters for the status line.
    pub totals: &'a mut Totals,
    /// Metrics (`None`: `exec`, which serves none).
    pub metrics: Option<&'a Metrics>,
    /// The policy's memory: restarts and claims to live consumers are recorded in it.
    pub mem: &'a mut Memory,
    /// Where restart jobs report their end (the agent); `None`: restarts are not ours (`recover`).
    pub jobs: Option<&'a mpsc::UnboundedSender<JobEnd>>,
    /// Units whose restart is held back because Redis serves no writes (logged once).
    pub held_back: Option<&'a mut BTreeSet<String>>,
}

impl Act<'_> {
    /// Counts a carried-out action in the metrics, if there are any.
    fn record(&self, a: &Action, moved: u64, ok: bool) {
        if let Some(m) = self.metrics {
            m.record(a, moved, ok);
        }
    }

    /// Counts pending entries found deleted from the stream, if there are metrics.
    fn record_ghosts(&self, stream: &str, group: &str, n: u64) {
        if let Some(m) = self.metrics {
            m.record_ghosts(stream, group, n);
        }
    }
}

/// While a server was last found holding writes back, asks again — every look, not only when
/// a restart is proposed — so that no consumer is blamed for a hold until it really ends.
/// Returns the streams found serving writes again.
pub async fn recheck_held_writes(world: &mut World, mem: &mut Memory) -> Vec<String> {
    let open: Vec<String> = mem.writes_held_open.iter().cloned().collect();
    if open.is_empty() || probe_writes(world, mem, &open).await.is_some() {
        return Vec::new();
    }
    open
}

/// Asks whether the servers of `streams` serve writes (one probe a server: one for all in
/// standalone and Sentinel, one a stream in a cluster) and records the answer in `mem`: held
/// streams are noted held now, served ones closed. Returns why writes are held, if they are.
pub async fn probe_writes(
    world: &mut World,
    mem: &mut Memory,
    streams: &[String],
) -> Option<String> {
    let probes = if world.streams.is_cluster() {
        streams.len()
    } else {
        1
    };
    let mut why = None;
    for s in streams.iter().take(probes) {
        why = match world.streams.serves_writes(s).await {
            Ok(true) => None,
            Ok(false) => Some(format!(
                "redis holds writes back on {s} (CLIENT PAUSE, a failover, a stall)"
            )),
            Err(e) => Some(format!("cannot check that redis serves writes on {s}: {e}")),
        };
        if why.is_some() {
            break;
        }
    }
    for s in streams {
        match why {
            Some(_) => mem.note_writes_held(s, mono_usec()),
            None => mem.note_writes_served(s),
        }
    }
    why
}

/// Carries out one action (enforce mode), with the decision it came from for its evidence.
/// Returns a short outcome for the state file.
pub async fn carry_out(x: &mut Act<'_>, a: &Action, d: &Decision) -> String {
    match a {
        Action::Restart {
            unit,
            reason,
            streams,
            ..
        } => match writes_held_back(x, unit, streams).await {
            Some(why) => why,
            None => restart(x, a, unit, reason, d).await,
        },
        _ => consumer_action(x, a).await,
    }
}

/// The restart's evidence: each binding's consumer, idle, lag and pending.
pub fn evidence(d: &Decision, unit: &str) -> String {
    let Some(u) = d.units.iter().find(|u| u.unit == unit) else {
        return String::new();
    };
    u.bindings
        .iter()
        .map(|b| {
            format!(
                "{} idle={} lag={} pending={} group_pending={}",
                b.consumer.as_deref().map(printable).unwrap_or("-".into()),
                b.idle_ms.map(fmt_ms).unwrap_or("-".into()),
                b.lag.map(|l| l.to_string()).unwrap_or("null".into()),
                b.pending.map(|l| l.to_string()).unwrap_or("-".into()),
                b.group_pending.map(|l| l.to_string()).unwrap_or("-".into()),
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why the restart of `unit` must wait, if its streams' servers serve no writes now (a
/// `CLIENT PAUSE WRITE`, a failover's pause, a stall): its consumers could not progress either,
/// and a restart would not help them. A server that cannot be asked counts as not serving.
/// Logged when it starts and when it ends; the policy proposes the restart again next cycle.
async fn writes_held_back(x: &mut Act<'_>, unit: &str, streams: &[String]) -> Option<String> {
    let why = probe_writes(x.world, x.mem, streams).await;
    let held = x.held_back.as_deref_mut()?;
    match why {
        Some(why) => {
            if held.insert(unit.to_string()) {
                tracing::warn!(
                    unit,
                    action = "restart-held",
                    "not restarting {unit} yet: {why}; its consumers cannot progress either"
                );
            }
            Some(format!("held back: {why}"))
        }
        None => {
            if held.remove(unit) {
                tracing::info!(
                    unit,
                    "redis serves writes again: the restart of {unit} goes ahead"
                );
            }
            None
        }
    }
}

/// `RestartUnit(unit, "replace")`; the job's end arrives later on `x.jobs`. A refused or failed
/// attempt counts against the budget too: no hammering.
async fn restart(x: &mut Act<'_>, a: &Action, unit: &str, reason: &str, d: &Decision) -> String {
    let (Some(jobs), Some(sd)) = (x.jobs, x.world.systemd.as_ref()) else {
        return "systemd unreachable".into();
    };
    let now = mono_usec();
    match sd.restart(unit, JOB_TIMEOUT).await {
        Ok(job) => {
            x.mem.note_restart(unit, now);
            x.totals.restarts += 1;
            x.record(a, 0, true);
            let evidence = evidence(d, unit);
            let text = printable(reason);
            tracing::warn!(
                unit, action = "restart", reason, evidence = %evidence, mode = "enforce",
                message_id = journal::RESTART,
                "restarting {unit}: {text} [{evidence}]"
            );
            let tx = jobs.clone();
            let u = unit.to_string();
            tokio::spawn(async move {
                let r = match job.await {
                    Ok(r) => r.map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                let _ = tx.send((u, r));
            });
            "restart issued".into()
        }
        Err(e) => {
            x.mem.note_restart(unit, now);
            x.mem.note_restart_finished(unit);
            x.totals.errors += 1;
            let outcome = e.to_string();
            log_action(a, Mode::Enforce, &outcome, false);
            x.world.systemd_failed(&e);
            outcome
        }
    }
}

fn rate(t0: Instant, n: u64) -> String {
    let s = t0.elapsed().as_secs_f64();
    format!(
        "in {:.0} ms, {:.0}/s",
        s * 1000.0,
        if s > 0.0 { n as f64 / s } else { 0.0 }
    )
}

/// What one consumer action did: its outcome, whether it went through, how many entries it
/// moved, and whether it emptied its dead consumer.
struct Done {
    outcome: String,
    ok: bool,
    moved: u64,
    emptied: bool,
}

impl Done {
    fn failed(e: impl std::fmt::Display) -> Done {
        Done {
            outcome: e.to_string(),
            ok: false,
            moved: 0,
            emptied: false,
        }
    }
}

/// Executes one claim, requeue, dead-letter or delete in enforce mode (logs only in observe
/// mode). A claim or requeue that empties its dead consumer deletes it in the same sweep.
/// Returns a short outcome for the state file.
pub async fn consumer_action(x: &mut Act<'_>, a: &Action) -> String {
    if x.mode == Mode::Observe {
        log_action(a, x.mode, "", true);
        return format!("would {}", journal::describe(a));
    }
    match a {
        Action::Fenced {
            host,
            me,
            lease_ms,
            of,
        } => fenced(x, a, (host, me, *lease_ms), of).await,
        _ => act_on(x, a, None).await,
    }
}

/// One consumer action in enforce mode, under `fence` if it takes another host's consumer.
async fn act_on(x: &mut Act<'_>, a: &Action, fence: Option<&Fence>) -> String {
    let done = match a {
        Action::Restart { .. } | Action::Fenced { .. } => return String::new(),
        Action::Claim {
            key,
            from,
            to,
            to_active_ms,
            ..
        } => claim(x, key, (from, to, *to_active_ms), fence).await,
        Action::Requeue { key, from, .. } => requeue(x, key, from, fence).await,
        Action::DeadLetter { .. } | Action::Quarantine { .. } => match set_aside(a) {
            Some((entry, aside)) => dead_letter(x, entry, &aside).await,
            None => return String::new(),
        },
        Action::Delete { .. } => return delete(x, a, fence).await,
    };
    if !done.ok {
        x.totals.errors += 1;
    }
    x.record(a, done.moved, done.ok);
    log_action(a, x.mode, &done.outcome, done.ok);
    if !done.emptied {
        return done.outcome;
    }
    let (Some(key), (_, _, consumer)) = (a.key(), a.target()) else {
        return done.outcome;
    };
    let follow = Action::Delete {
        unit: a.unit().map(str::to_string),
        key: key.clone(),
        consumer: consumer.to_string(),
        min_idle_ms: 0,
        reason: format!("dead consumer emptied by {}", a.kind()),
    };
    let deleted = delete(x, &follow, fence).await;
    format!("{}; {deleted}", done.outcome)
}

/// Another host's consumer: under the group's recovery lease, every script checking its
/// fencing token, or not at all while another agent holds it.
async fn fenced(
    x: &mut Act<'_>,
    a: &Action,
    (host, me, lease_ms): (&str, &str, u64),
    of: &Action,
) -> String {
    let (stream, group, _) = a.target();
    let lease = match x
        .world
        .streams
        .take_lease(stream, group, me, lease_ms)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            x.totals.errors += 1;
            let s = format!("failed: the recovery lease of {group}: {e}");
            log_action(a, x.mode, &s, false);
            return s;
        }
    };
    let holder = lease_holder(&lease);
    if holder != me {
        let s = format!("left to {holder}, which holds the recovery lease of {group}");
        tracing::info!(
            action = "lease-held",
            "{}: {}",
            printable(&journal::describe(a)),
            printable(&s)
        );
        return s;
    }
    tracing::info!(
        action = "lease",
        "recovery lease {} of {} held for host {}'s consumers",
        printable(&lease),
        printable(group),
        printable(host)
    );
    stall_for_tests();
    let fence = Fence {
        lease: FleetConfig::lease_key(stream, group),
        value: lease,
        ms: lease_ms,
    };
    act_on(x, of, Some(&fence)).await
}

/// Debug builds only: stalls the agent between taking a lease and acting under it, as a
/// process stopped there would (the fencing test).
fn stall_for_tests() {
    #[cfg(debug_assertions)]
    if let Some(ms) = std::env::var("QUANTUM_WATCHDOG_TEST_STALL_AFTER_LEASE_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
    {
        tracing::warn!("stalling {ms} ms under the lease (test hook)");
        std::thread::sleep(Duration::from_millis(ms));
    }
}

async fn claim(
    x: &mut Act<'_>,
    key: &GroupKey,
    (from, to, to_active_ms): (&str, &str, Option<u64>),
    fence: Option<&Fence>,
) -> Done {
    let (stream, group) = (key.stream.as_str(), key.group.as_str());
    let t0 = Instant::now();
    // The claim's trace (in the script) keeps the recipient's last real read: the idle time
    // the claim resets is not taken for its progress, by this agent or any other reader.
    let m = match x
        .world
        .streams
        .claim_all(stream, group, (from, to), to_active_ms, (fence, x.deadline))
        .await
    {
        Ok(m) => m,
        Err(e) => return Done::failed(e),
    };
    x.totals.claimed += m.moved;
    x.record_ghosts(stream, group, m.ghosts);
    let s = format!("claimed {} to {to} {}", m.moved, rate(t0, m.moved));
    Done {
        outcome: moved_outcome(s, &m),
        ok: true,
        moved: m.moved,
        emptied: m.done,
    }
}

async fn requeue(x: &mut Act<'_>, key: &GroupKey, from: &str, fence: Option<&Fence>) -> Done {
    let (stream, group) = (key.stream.as_str(), key.group.as_str());
    let t0 = Instant::now();
    let m = match x
        .world
        .streams
        .requeue_all(stream, group, from, (fence, x.deadline))
        .await
    {
        Ok(m) => m,
        Err(e) => return Done::failed(e),
    };
    x.totals.requeued += m.moved;
    x.record_ghosts(stream, group, m.ghosts);
    let s = format!(
        "requeued {} copies and acknowledged the originals {}",
        m.moved,
        rate(t0, m.moved)
    );
    Done {
        outcome: moved_outcome(s, &m),
        ok: true,
        moved: m.moved,
        emptied: m.done,
    }
}

/// An entry to set aside: `(stream, dead-letter stream, group, id)`.
type Entry<'a> = (&'a str, &'a str, &'a str, &'a str);

/// A dead-letter's or a quarantine's entry, `(stream, dead-letter stream, group, id)`, and
/// what the script checks and adds; `None` for any other action.
fn set_aside(a: &Action) -> Option<(Entry<'_>, Aside<'_>)> {
    Some(match a {
        Action::DeadLetter {
            key,
            dead,
            id,
            min_deliveries,
            ..
        } => (
            (&key.stream, dead, &key.group, id),
            Aside {
                min_deliveries: *min_deliveries,
                holder: None,
                fields: Vec::new(),
            },
        ),
        Action::Quarantine {
            key,
            dead,
            id,
            consumer,
            crashes,
            exit_status,
            ..
        } => (
            (&key.stream, dead, &key.group, id),
            Aside {
                min_deliveries: 0,
                holder: Some(consumer),
                fields: vec![
                    ("crashes", crashes.to_string()),
                    ("exit-status", exit_status.clone()),
                    ("reason", "crash-loop".to_string()),
                ],
            },
        ),
        _ => return None,
    })
}

async fn dead_letter(
    x: &mut Act<'_>,
    (stream, dead, group, id): Entry<'_>,
    aside: &Aside<'_>,
) -> Done {
    let r = x.world.streams.dead_letter(stream, dead, group, id, aside);
    let (outcome, moved) = match r.await {
        Ok(true) => {
            x.totals.dead_lettered += 1;
            (format!("moved to {dead} and acknowledged"), 1)
        }
        Ok(false) => ("no longer pending there, or not due".to_string(), 0),
        Err(e) => return Done::failed(e),
    };
    Done {
        outcome,
        ok: true,
        moved,
        emptied: false,
    }
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
async fn delete(x: &mut Act<'_>, a: &Action, fence: Option<&Fence>) -> String {
    let Action::Delete {
        key,
        consumer,
        min_idle_ms,
        ..
    } = a
    else {
        return String::new();
    };
    let (stream, group) = (&key.stream, &key.group);
    let (outcome, ok, deleted) = match x
        .world
        .streams
        .delete_consumer(stream, group, consumer, *min_idle_ms, fence)
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
    x.record(a, deleted, ok);
    log_action(a, x.mode, &outcome, ok);
    outcome
}
