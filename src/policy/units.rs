//! Rules 1–6: the verdict of each unit from its bindings, and its restart.

use std::collections::BTreeMap;

use crate::config::{Params, Watch};
use crate::model::{
    ActiveState, ClaimTrace, ConsumerInfo, GroupData, GroupKey, LoadState, UnitState, fmt_ms,
};

use super::action::{Action, RestartCause};
use super::cycle::{Classes, Cycle, Deploy};
use super::decision::{BindingReport, Class, Liveness, UnitReport};
use super::memory::{Memory, UnitMemory};
use super::verdict::{Severity, Verdict};

/// An idle time reset within this much after a claim is taken for the claim itself (server
/// ms: the trace's time and `idle` come from the same server clock).
const CLAIM_SLACK_MS: u64 = 50;

/// A unit report for a unit that cannot be seen.
pub fn unknown_unit(name: &str, p: &Params, why: &str) -> UnitReport {
    UnitReport {
        unit: name.to_string(),
        active_state: String::new(),
        sub_state: String::new(),
        main_pid: 0,
        verdict: Verdict::Unknown,
        severity: Severity::Unknown,
        reason: why.to_string(),
        streak: 0,
        confirm: p.confirm,
        restarts_in_window: 0,
        restart_budget: p.restart_budget.max,
        bindings: Vec::new(),
        hold: None,
    }
}

/// A binding judged: its report, the restart it asks for, and its own consumer.
pub struct BindingEval {
    /// The report.
    pub report: BindingReport,
    /// A restart cause, if this binding alone would restart the unit.
    pub cause: Option<RestartCause>,
    /// The consumer judged as the unit's own (its record, for handoff targets).
    pub own: Option<ConsumerInfo>,
}

/// What a unit's judgement gives the rest of the cycle.
pub struct UnitEval {
    /// The report.
    pub report: UnitReport,
    /// Its restart, if due.
    pub restart: Option<Action>,
    /// Per binding index, the consumer judged as the unit's own.
    pub own: BTreeMap<usize, ConsumerInfo>,
}

/// The `reset-budget` of `name` on the monotonic clock. The note says the wall-clock time it
/// was run; it is pinned to the monotonic clock when first seen, so a later step of the wall
/// clock neither frees the budget again nor counts the cleared restarts again.
fn budget_reset(cy: &Cycle<'_>, mem: &mut Memory, name: &str) -> u64 {
    let Some(&wall) = cy.snap.holds.budget_resets.get(name) else {
        return 0;
    };
    let m = mem.unit_mut(name);
    match m.budget_reset {
        Some((w, mono)) if w == wall => mono,
        _ => {
            let mono = cy.snap.clock().mono_of(wall);
            m.budget_reset = Some((wall, mono));
            mono
        }
    }
}

/// Rules 1–6 for one unit: its report, its restart if due, and its own consumers.
pub fn judge_unit(
    cy: &Cycle<'_>,
    mem: &mut Memory,
    classes: &Classes<'_>,
    name: &str,
    bindings: &[usize],
) -> UnitEval {
    let params = bindings
        .first()
        .map_or(&cy.cfg.defaults, |&i| &cy.cfg.watch[i].params);
    let mut r = unknown_unit(name, params, "");
    let within = params.restart_budget.within.as_micros();
    let reset = budget_reset(cy, mem, name);
    r.restarts_in_window = mem.restarts_within(name, cy.now(), within, reset);
    let Some(u) = cy.unit(name) else {
        return not_loaded(mem, r);
    };
    r.active_state = u.active_state.to_string();
    r.sub_state = u.sub_state.clone();
    r.main_pid = u.main_pid;
    let evals: Vec<BindingEval> = if u.active_state.is_up() {
        bindings
            .iter()
            .map(|&i| judge_binding(cy, mem, classes, i, u))
            .collect()
    } else {
        Vec::new()
    };
    let (verdict, reason, cause) = unit_verdict(cy, mem, u, params, &evals);
    let own = bindings
        .iter()
        .zip(&evals)
        .filter_map(|(&i, e)| e.own.clone().map(|c| (i, c)))
        .collect();
    // A binding's error is its own warning; it never lowers a critical verdict.
    let errors = evals.iter().filter(|e| e.report.error.is_some());
    r.severity = Severity::worst_of(
        std::iter::once(verdict.severity()).chain(errors.map(|_| Severity::Warning)),
    );
    r.bindings = evals.into_iter().map(|e| e.report).collect();
    r.verdict = verdict;
    r.reason = reason;
    note_endless_deploy(cy, u, &mut r);
    r.streak = remember(mem, name, verdict);
    let restart = restart_for(mem, &mut r, (u, params), cause);
    r.severity = r.severity.worst(r.verdict.severity());
    UnitEval {
        report: r,
        restart,
        own,
    }
}

/// A bound unit systemd has not loaded: reported, never acted on.
fn not_loaded(mem: &mut Memory, mut r: UnitReport) -> UnitEval {
    r.verdict = Verdict::NotFound;
    r.reason = "bound in the configuration but not loaded in systemd".into();
    r.severity = r.verdict.severity();
    remember(mem, &r.unit, r.verdict);
    UnitEval {
        report: r,
        restart: None,
        own: BTreeMap::new(),
    }
}

/// A deploy that outlasts `deploy_hold` (rule 15) holds nothing back: judged anyway, and said.
fn note_endless_deploy(cy: &Cycle<'_>, u: &UnitState, r: &mut UnitReport) {
    if let Some(why) = u.deploying().filter(|_| !cy.deploys.contains_key(&u.name)) {
        r.reason = format!(
            "{}; {why} for more than {} (deploy_hold)",
            r.reason,
            fmt_ms(cy.cfg.deploy_hold.as_millis())
        );
        r.severity = r.severity.worst(Severity::Warning);
    }
}

/// The restart a cause asks for (rule 6), unless systemd's watchdog restarts the unit
/// (`quantum-watchdog exec`): then it is reported, never restarted by the agent.
fn restart_for(
    mem: &mut Memory,
    r: &mut UnitReport,
    (u, params): (&UnitState, &Params),
    cause: Option<RestartCause>,
) -> Option<Action> {
    match cause {
        Some(_) if u.exec_watchdog => {
            r.reason.push_str(
                "; restarted by systemd's watchdog (quantum-watchdog exec), not by the agent",
            );
            None
        }
        Some(cause) => restart_or_give_up(mem, r, params, cause),
        None => None,
    }
}

/// The unit's verdict, its reason, and the restart cause if one binding asks for a restart.
fn unit_verdict(
    cy: &Cycle<'_>,
    mem: &Memory,
    u: &UnitState,
    params: &Params,
    evals: &[BindingEval],
) -> (Verdict, String, Option<RestartCause>) {
    let um = mem.units.get(&u.name);
    if let Some(dep) = cy.deploys.get(&u.name) {
        return under_deploy(cy, um, u, params, evals, dep);
    }
    match &u.active_state {
        ActiveState::Failed if u.result == "start-limit-hit" => (
            Verdict::StartLimitHit,
            "systemd refused further starts (start-limit-hit); `systemctl reset-failed` after fixing the cause".into(),
            None,
        ),
        ActiveState::Failed => (Verdict::Failed, format!("failed (result {})", u.result), None),
        ActiveState::Inactive => (Verdict::Inactive, "stopped".into(), None),
        ActiveState::Active | ActiveState::Reloading => {
            let since = u
                .active_enter_mono_usec
                .max(um.map_or(0, |m| m.last_restart_usec.max(m.job_seen_usec)));
            let grace_end = since.saturating_add(params.startup_grace.as_micros());
            if u.load_state != LoadState::Loaded {
                (Verdict::NotFound, format!("load state {}", u.load_state), None)
            } else if cy.now() < grace_end {
                let left = (grace_end - cy.now()) / 1000;
                (
                    Verdict::Starting,
                    format!("within startup grace ({} left)", fmt_ms(left)),
                    None,
                )
            } else {
                from_bindings(u, evals)
            }
        }
        other => (Verdict::Starting, format!("{other} ({})", u.sub_state), None),
    }
}

/// A unit in a deploy's hands: its bindings are judged as usual (outside the startup grace of
/// its own start), and a hang is its verdict — its restart is held until the deploy ends or
/// `deploy_hold` runs out ([`super::holds::apply_deploys`]). Anything else is `starting`.
fn under_deploy(
    cy: &Cycle<'_>,
    um: Option<&UnitMemory>,
    u: &UnitState,
    params: &Params,
    evals: &[BindingEval],
    dep: &Deploy,
) -> (Verdict, String, Option<RestartCause>) {
    let since = u
        .active_enter_mono_usec
        .max(um.map_or(0, |m| m.last_restart_usec));
    let judged = u.active_state.is_up()
        && u.load_state == LoadState::Loaded
        && cy.now() >= since.saturating_add(params.startup_grace.as_micros());
    if judged && let (v, why, Some(cause)) = from_bindings(u, evals) {
        return (v, why, Some(cause));
    }
    (
        Verdict::Starting,
        format!(
            "{} (a deploy, an operator): judged again {} after that ends",
            dep.why,
            crate::config::format_duration(params.startup_grace.0)
        ),
        None,
    )
}

/// Rule 1 for bindings: an erroring binding counts for nothing but its own report; the unit
/// is unknown only when every binding errs.
fn from_bindings(u: &UnitState, evals: &[BindingEval]) -> (Verdict, String, Option<RestartCause>) {
    let ok: Vec<&BindingEval> = evals.iter().filter(|e| e.report.error.is_none()).collect();
    if ok.is_empty() && !evals.is_empty() {
        let why = evals
            .iter()
            .map(|e| e.report.reason.as_str())
            .collect::<Vec<_>>()
            .join("; ");
        return (Verdict::Unknown, why, None);
    }
    let Some(worst) = ok
        .iter()
        .map(|e| e.report.verdict)
        .max_by_key(|v| v.severity().rank())
    else {
        return (
            Verdict::Healthy,
            format!("{} ({})", u.active_state, u.sub_state),
            None,
        );
    };
    let why = ok
        .iter()
        .filter(|e| e.report.verdict == worst)
        .map(|e| e.report.reason.as_str())
        .collect::<Vec<_>>()
        .join("; ");
    (worst, why, ok.iter().find_map(|e| e.cause))
}

/// Rule 6: a confirmed restart within budget, else gave-up.
fn restart_or_give_up(
    mem: &mut Memory,
    r: &mut UnitReport,
    params: &Params,
    cause: RestartCause,
) -> Option<Action> {
    if r.streak < params.confirm {
        return None;
    }
    let m = mem.unit_mut(&r.unit);
    if m.restart_in_flight {
        r.reason.push_str("; a restart is in flight");
        return None;
    }
    if r.restarts_in_window >= params.restart_budget.max {
        r.verdict = Verdict::GaveUp;
        r.reason = format!(
            "{}; restart budget spent ({} restarts within {}), left to the operator",
            r.reason,
            r.restarts_in_window,
            crate::config::format_duration(params.restart_budget.within.0)
        );
        return None;
    }
    let mut streams: Vec<String> = r
        .bindings
        .iter()
        .filter(|b| b.error.is_none())
        .map(|b| b.stream.clone())
        .collect();
    streams.dedup();
    Some(Action::Restart {
        unit: r.unit.clone(),
        reason: r.reason.clone(),
        cause,
        streams,
    })
}

/// Updates the verdict streak; returns its length.
fn remember(mem: &mut Memory, unit: &str, v: Verdict) -> u32 {
    let m = mem.unit_mut(unit);
    if m.verdict == Some(v) {
        m.streak = m.streak.saturating_add(1);
    } else {
        m.verdict = Some(v);
        m.streak = 1;
    }
    m.streak
}

fn new_report(w: &Watch) -> BindingReport {
    BindingReport {
        stream: w.stream.clone(),
        group: w.group.clone(),
        consumer: None,
        consumer_present: false,
        idle_ms: None,
        inactive_ms: None,
        pending: None,
        group_pending: None,
        lag: None,
        work_waiting: None,
        verdict: Verdict::Unknown,
        reason: String::new(),
        error: None,
    }
}

/// The consumer binding `idx` judges: the one its MainPID renders, or else the live consumer
/// of the unit's cgroup that read last.
fn own_consumer<'a>(
    g: &'a GroupData,
    classes: Option<&Vec<Class>>,
    idx: usize,
    rendered: Option<&str>,
) -> Option<&'a ConsumerInfo> {
    if let Some(c) = rendered.and_then(|n| g.consumer(n)) {
        return Some(c);
    }
    let classes = classes?;
    g.consumers
        .iter()
        .zip(classes)
        .filter(|(_, k)| k.liveness == Liveness::Live && k.owner == Some(idx) && k.host.is_none())
        .map(|(c, _)| c)
        .min_by_key(|c| c.idle_ms)
}

/// The unit's other live consumers of binding `idx` that hold entries: the workers of a unit
/// that runs several processes. Each is judged as the unit's own consumer would be, so one
/// hung worker is not hidden behind a busy sibling.
fn workers<'a>(
    g: &'a GroupData,
    classes: Option<&'a Vec<Class>>,
    idx: usize,
    primary: Option<&'a ConsumerInfo>,
) -> impl Iterator<Item = &'a ConsumerInfo> {
    g.consumers
        .iter()
        .zip(classes.into_iter().flatten())
        .filter(move |(c, k)| {
            k.liveness == Liveness::Live
                && k.owner == Some(idx)
                && k.host.is_none()
                && c.pending > 0
                && primary.is_none_or(|p| p.name != c.name)
        })
        .map(|(c, _)| c)
}

/// The idle time not counting the time until the server was last found holding writes back
/// (`held`): no consumer can read then. Returns it and whether it was shortened.
fn discount_held(idle_ms: u64, held: Option<u64>, now_usec: u64) -> (u64, bool) {
    match held.map(|h| now_usec.saturating_sub(h) / 1000) {
        Some(since) if since < idle_ms => (since, true),
        _ => (idle_ms, false),
    }
}

/// The consumer's idle time, not counting claims to it: a claim resets it as a read would,
/// whoever made it (the agent, `recover`, a wrapper, another host's agent). Where the group's
/// claim traces say entries were claimed to it after its last read, the time since that read
/// (never less than its idle time). Returns the idle time in ms and whether a claim was
/// discounted.
pub fn progress_idle_ms(g: &GroupData, c: &ConsumerInfo) -> (u64, bool) {
    let Some(t) = g.claims.as_ref().filter(|t| t.error.is_none()) else {
        return (c.idle_ms, false);
    };
    let reset_at = t.now_ms.saturating_sub(c.idle_ms);
    match t.by_consumer.get(&*c.name) {
        Some(m) if plausible(m, t.now_ms, c) && reset_at <= m.at_ms + CLAIM_SLACK_MS => {
            (t.now_ms.saturating_sub(m.active_ms).max(c.idle_ms), true)
        }
        _ => (c.idle_ms, false),
    }
}

/// A trace a claim of ours could have left for `c`: made no later than now, its last read no
/// later than the claim, and `c` holding entries (a claim leaves it some). Another client's
/// trace that says otherwise is passed over: it never makes a reading consumer look hung.
fn plausible(m: &ClaimTrace, now_ms: u64, c: &ConsumerInfo) -> bool {
    m.at_ms <= now_ms + 1000 && m.active_ms <= m.at_ms && c.pending > 0
}

fn judge_binding(
    cy: &Cycle<'_>,
    mem: &mut Memory,
    classes: &Classes<'_>,
    idx: usize,
    u: &UnitState,
) -> BindingEval {
    let w = &cy.cfg.watch[idx];
    let key = w.key();
    let rendered = w.consumer.render(cy.host(), u.main_pid, &w.unit);
    let mut rep = new_report(w);
    let g = match cy.group(key) {
        Ok(g) => g,
        Err(why) => return unreadable(rep, rendered, why.to_string()),
    };
    let consumer = own_consumer(g, classes.get(key), idx, rendered.as_deref());
    fill_counts(&mut rep, g, consumer);
    let since = work_since(mem, &w.unit, key, g.work_waiting(), cy.now());
    let look = Look {
        now: cy.now(),
        held: mem.writes_held.get(&w.stream).copied(),
        w,
        g,
        consumer,
    };
    let judge = |l: &Look<'_>| match since {
        Some(since) => with_work(l, u, rendered.as_deref(), since),
        None => without_work(l),
    };
    let mut judged = judge(&look);
    if judged.0 != Verdict::Hung {
        // The unit's other processes: the worst of them counts if it is worse. A lagging
        // main consumer must not hide a hung sibling holding entries.
        let others = workers(g, classes.get(key), idx, consumer);
        let each = others.map(|c| {
            judge(&Look {
                consumer: Some(c),
                ..look
            })
        });
        judged = worse_of(judged, each);
    }
    let (verdict, mut reason, cause) = judged;
    if let Some(e) = g.claims.as_ref().and_then(|t| t.error.as_deref()) {
        // Claims to its consumer cannot be told from its reads: said, not guessed.
        reason.push_str(&format!("; claims are not told from progress ({e})"));
    }
    rep.verdict = verdict;
    rep.reason = reason;
    // The consumer judged, else the name the unit's process would read under.
    rep.consumer = consumer.map(|c| c.name.to_string()).or(rendered);
    BindingEval {
        report: rep,
        cause,
        own: consumer.cloned(),
    }
}

/// The worst of the unit's other processes' judgements if it is worse than `main`'s.
fn worse_of(main: Judged, others: impl Iterator<Item = Judged>) -> Judged {
    let rank = |j: &Judged| j.0.severity().rank();
    match others.max_by_key(rank) {
        Some(w) if rank(&w) > rank(&main) => {
            (w.0, format!("another process of the unit: {}", w.1), w.2)
        }
        _ => main,
    }
}

/// Rule 1 for a binding whose stream or group cannot be read: its error, and nothing else.
fn unreadable(mut rep: BindingReport, rendered: Option<String>, why: String) -> BindingEval {
    rep.consumer = rendered;
    rep.reason = format!("{}: {why}", rep.group);
    rep.error = Some(why);
    BindingEval {
        report: rep,
        cause: None,
        own: None,
    }
}

/// The binding report's figures: its consumer's and its group's.
fn fill_counts(rep: &mut BindingReport, g: &GroupData, consumer: Option<&ConsumerInfo>) {
    rep.consumer_present = consumer.is_some();
    rep.idle_ms = consumer.map(|c| c.idle_ms);
    rep.inactive_ms = consumer.and_then(|c| c.inactive_ms);
    rep.pending = consumer.map(|c| c.pending);
    rep.group_pending = Some(g.group.pending);
    rep.lag = g.group.lag;
    rep.work_waiting = Some(g.work_waiting());
}

/// Since when work has waited for this binding (remembered), or `None` if none waits now.
fn work_since(
    mem: &mut Memory,
    unit: &str,
    key: &GroupKey,
    waiting: bool,
    now: u64,
) -> Option<u64> {
    let m = mem.unit_mut(unit);
    if !waiting {
        m.work_since.remove(key);
        return None;
    }
    Some(*m.work_since.entry(key.clone()).or_insert(now))
}

fn backlog(g: &GroupData) -> String {
    match g.group.lag {
        Some(l) => format!("lag {l}"),
        None => format!(
            "lag null, last delivered {} behind stream's last {}",
            g.group.last_delivered_id, g.stream.last_generated_id
        ),
    }
}

type Judged = (Verdict, String, Option<RestartCause>);

/// What one binding's rules look at.
#[derive(Clone, Copy)]
struct Look<'a> {
    now: u64,
    /// When the stream's server was last found holding writes back (see [`Memory::writes_held`]).
    held: Option<u64>,
    w: &'a Watch,
    g: &'a GroupData,
    consumer: Option<&'a ConsumerInfo>,
}

/// How long without progress, while work waits, makes a binding lagging: `warn_percent` of
/// `hung_after`.
fn warn_ms(l: &Look<'_>) -> u64 {
    let p = &l.w.params;
    p.hung_after.as_millis() * u64::from(p.warn_percent.min(100)) / 100
}

/// Lagging, if `waited_ms` without progress lies between `warn_ms` and `hung_after`.
fn lagging(l: &Look<'_>, waited_ms: u64, subject: &str, backlog: &str) -> Option<Judged> {
    let hung_ms = l.w.params.hung_after.as_millis();
    (waited_ms >= warn_ms(l) && waited_ms < hung_ms).then(|| {
        let why = format!(
            "{subject} while work waits {}, hung at {} ({backlog})",
            fmt_ms(waited_ms),
            fmt_ms(hung_ms)
        );
        (Verdict::Lagging, why, None)
    })
}

/// Rule 3: work waits. Lagging from `warn_percent` of `hung_after` on; hung if the consumer
/// made no progress for `hung_after`, or none appeared for that long.
fn with_work(l: &Look<'_>, u: &UnitState, rendered: Option<&str>, since: u64) -> Judged {
    let Some(c) = l.consumer else {
        return no_consumer(l, u, rendered.unwrap_or("(none)"), since);
    };
    let backlog = backlog(l.g);
    let (idle, claimed) = progress_idle_ms(l.g, c);
    let (idle, paused) = discount_held(idle, l.held, l.now);
    let subject = format!("no progress from consumer {}", c.name);
    if let Some(j) = lagging(l, idle, &subject, &backlog) {
        return j;
    }
    if idle < l.w.params.hung_after.as_millis() {
        let note = match paused {
            true => "; redis held writes back moments ago",
            false => "",
        };
        return (
            Verdict::Healthy,
            format!("consuming ({backlog}){note}"),
            None,
        );
    }
    let note = match claimed {
        true => " (not counting claims to it)",
        false => "",
    };
    (
        Verdict::Hung,
        format!(
            "consumer {} idle {}{note} while work waits ({backlog})",
            c.name,
            fmt_ms(idle)
        ),
        Some(RestartCause::IdleWithWork),
    )
}

/// Rule 3 without a consumer: work has waited since `since` (or the unit's start, or the
/// end of a write hold) and no consumer `name` of the MainPID appeared: not consuming at
/// `hung_after`.
fn no_consumer(l: &Look<'_>, u: &UnitState, name: &str, since: u64) -> Judged {
    let backlog = backlog(l.g);
    let from = since.max(u.active_enter_mono_usec).max(l.held.unwrap_or(0));
    let waited_ms = l.now.saturating_sub(from) / 1000;
    let subject = format!("no consumer {name} for MainPID {}", u.main_pid);
    if let Some(j) = lagging(l, waited_ms, &subject, &backlog) {
        return j;
    }
    if waited_ms < l.w.params.hung_after.as_millis() {
        return (
            Verdict::Healthy,
            format!("consumer {name} not seen yet ({backlog})"),
            None,
        );
    }
    (
        Verdict::Hung,
        format!(
            "not consuming: no consumer {name} for MainPID {} while work waits {} ({backlog})",
            u.main_pid,
            fmt_ms(waited_ms)
        ),
        Some(RestartCause::NotConsuming),
    )
}

/// Rules 4 and 5: no work waits. Stuck in processing if the consumer's oldest entry has been
/// unacknowledged for `hung_after`; hung if it also stopped reading (7.2+).
fn without_work(l: &Look<'_>) -> Judged {
    let hung_ms = l.w.params.hung_after.as_millis();
    let head = l
        .consumer
        .and_then(|c| l.g.heads.get(&*c.name).cloned().flatten());
    let (Some(c), Some(e)) = (l.consumer, head.filter(|e| e.idle_ms >= hung_ms)) else {
        return (Verdict::Healthy, "no work waiting".into(), None);
    };
    let reads_7_2 = c.inactive_ms.is_some();
    let (idle, _) = progress_idle_ms(l.g, c);
    let (idle, _) = discount_held(idle, l.held, l.now);
    if reads_7_2 && idle >= hung_ms {
        return (
            Verdict::Hung,
            format!(
                "consumer {} stopped reading ({} since its last attempt) holding {} pending, oldest idle {} (entry {})",
                c.name,
                fmt_ms(idle),
                c.pending,
                fmt_ms(e.idle_ms),
                e.id
            ),
            Some(RestartCause::StoppedReading),
        );
    }
    let still = if reads_7_2 {
        ", but it still reads"
    } else {
        ""
    };
    (
        Verdict::StalePending,
        format!(
            "consumer {} holds {} pending; entry {} unacknowledged for {} ({} deliveries){still}",
            c.name,
            c.pending,
            e.id,
            fmt_ms(e.idle_ms),
            e.deliveries
        ),
        l.w.params
            .restart_on_stale_pending
            .then_some(RestartCause::StalePending),
    )
}
