//! `quantum-watchdog status`: one look at every watched unit, as a table or stable JSON, with
//! monitoring-plugin exit codes (0 ok, 1 warning, 2 critical, 3 unknown). [`build`] judges a
//! snapshot with a copy of the agent's memory; [`render`] and [`render_pipelines`] are pure
//! (the clock is the snapshot's), so their output is golden-tested
//! (`tests/golden/status/`).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::config::{Config, Mode};
use crate::model::{Snapshot, fmt_ms};
use crate::policy::{
    self, Action, BindingReport, ConsumerReport, Decision, FlagReport, GaugeReport, HeldAction,
    HostReport, HostState, Memory, PipelineReport, PoisonReport, Severity, UnitReport, Verdict,
};

use super::printable::{printable, printable_name};
use super::state::{AgentState, LastAction, Totals, latest};

/// The JSON format's version.
pub const JSON_VERSION: u32 = 1;

/// The running agent, as its state file shows it.
#[derive(Debug, Serialize)]
pub struct AgentInfo {
    /// Its state is fresh and its PID lives.
    pub running: bool,
    /// Its PID.
    pub pid: u32,
    /// Its mode.
    pub mode: Mode,
    /// When it last wrote its state (realtime µs).
    pub updated_usec: u64,
    /// Cycles completed.
    pub cycles: u64,
    /// The last cycle's duration.
    pub last_cycle_ms: f64,
    /// What it did.
    pub totals: Totals,
}

/// One unit's row, with the agent's last actions for it.
#[derive(Debug, Serialize)]
pub struct UnitStatus {
    /// The policy's report.
    #[serde(flatten)]
    pub report: UnitReport,
    /// The most recent action a running agent took for this unit.
    pub last_action: Option<LastAction>,
    /// The last action of each kind.
    pub last_actions: BTreeMap<String, LastAction>,
}

/// Everything `status` shows (`--json` prints it as it is).
#[derive(Debug, Serialize)]
pub struct Status {
    /// [`JSON_VERSION`].
    pub version: u32,
    /// When the look was taken (realtime µs).
    pub now_usec: u64,
    /// This host.
    pub hostname: String,
    /// Where the running agent's state file is read from.
    pub state_file: String,
    /// The configured mode.
    pub mode: Mode,
    /// The worst of everything.
    pub severity: Severity,
    /// The monitoring-plugin exit status.
    pub exit_code: i32,
    /// Why systemd could not be asked.
    pub systemd_error: Option<String>,
    /// Why Redis could not be read.
    pub redis_error: Option<String>,
    /// The running agent, if it has a state file.
    pub agent: Option<AgentInfo>,
    /// Every watched unit.
    pub units: Vec<UnitStatus>,
    /// Every consumer of a watched group.
    pub consumers: Vec<ConsumerReport>,
    /// Every pipeline.
    pub pipelines: Vec<PipelineReport>,
    /// Every gauge.
    pub gauges: Vec<GaugeReport>,
    /// Every flag.
    pub flags: Vec<FlagReport>,
    /// Poison entries seen.
    pub poison: Vec<PoisonReport>,
    /// What the agent would do next, by this look.
    pub proposed_actions: Vec<Action>,
    /// What it would do but a pause or a maintenance window holds back.
    pub held_actions: Vec<HeldAction>,
    /// Pause notes that do not count (a foreign owner, an unreadable file) and windows that
    /// cannot be evaluated.
    pub hold_errors: Vec<String>,
    /// The hosts of the fleet (`[fleet]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fleet: Vec<HostReport>,
    /// Why the fleet's heartbeats could not be read (`[fleet]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet_error: Option<String>,
}

/// The running agent as `status` finds it: its state file, and whether its PID lives.
pub struct AgentLook<'a> {
    /// The state file's content.
    pub state: &'a AgentState,
    /// `kill(pid, 0)` found its process.
    pub pid_alive: bool,
}

/// Judges `snap` with a copy of the running agent's memory (restart budget, earlier MainPIDs,
/// streaks), so `status` agrees with the agent without changing anything.
pub fn build(
    cfg: &Config,
    snap: &Snapshot,
    agent: Option<AgentLook<'_>>,
    state_file: &std::path::Path,
) -> Status {
    let now = snap.now_usec;
    let look = agent.as_ref();
    let agent = look.map(|l| l.state);
    let mut mem: Memory = agent.map(|a| a.memory.clone()).unwrap_or_default();
    let d: Decision = policy::decide(cfg, snap, &mut mem);
    let severity = d.severity();
    Status {
        version: JSON_VERSION,
        now_usec: now,
        hostname: snap.hostname.clone(),
        state_file: state_file.display().to_string(),
        mode: cfg.mode,
        severity,
        exit_code: severity.exit_code(),
        systemd_error: d.systemd_error.clone(),
        redis_error: d.redis_error.clone(),
        agent: look.map(|l| agent_info(l, snap.mono_usec)),
        units: d
            .units
            .iter()
            .map(|u| {
                let all = agent
                    .and_then(|a| a.last_actions.get(&u.unit).cloned())
                    .unwrap_or_default();
                UnitStatus {
                    report: u.clone(),
                    last_action: latest(&all).cloned(),
                    last_actions: all,
                }
            })
            .collect(),
        consumers: d.consumers.clone(),
        pipelines: d.pipelines.clone(),
        gauges: d.gauges.clone(),
        flags: d.flags.clone(),
        poison: d.poison.clone(),
        proposed_actions: d.actions.clone(),
        held_actions: d.held.clone(),
        hold_errors: snap.holds.errors.clone(),
        fleet: d.fleet.clone(),
        fleet_error: snap
            .redis
            .as_ref()
            .ok()
            .and_then(|r| r.fleet.as_ref()?.as_ref().err())
            .map(|e| e.to_string()),
    }
}

/// `status --fleet`: every host, its heartbeat's age, its agent's version, the consumers it
/// vouches for and the recovery leases it holds.
pub fn render_fleet(st: &Status, color: bool) -> String {
    let mut o = String::new();
    if let Some(e) = st.fleet_error.as_ref().or(st.redis_error.as_ref()) {
        let _ = writeln!(
            o,
            "{}",
            paint(
                &format!("fleet: {}", printable(e)),
                Severity::Unknown,
                color
            )
        );
    } else if st.fleet.is_empty() {
        let _ = writeln!(
            o,
            "no hosts: [fleet] is not enabled, or no agent has published a heartbeat"
        );
    }
    if st.fleet.is_empty() {
        return o;
    }
    let _ = writeln!(
        o,
        "{:<32} {:<7} {:>10} {:<10} {:>8}  LEASES",
        "HOST", "STATE", "HEARTBEAT", "VERSION", "VOUCHED"
    );
    for h in &st.fleet {
        let (word, sev) = match h.state {
            _ if h.shared => ("shared", Severity::Critical),
            HostState::Alive => (h.state.as_str(), Severity::Ok),
            HostState::Silent => (h.state.as_str(), Severity::Warning),
            HostState::Dead => (h.state.as_str(), Severity::Critical),
        };
        let mark = if h.this { " (this host)" } else { "" };
        let _ = writeln!(
            o,
            "{:<32} {} {:>10} {:<10} {:>8}  {}",
            format!("{}{mark}", printable_name(&h.host)),
            paint(&format!("{word:<7}"), sev, color),
            format!("{} ago", fmt_ms(h.age_ms)),
            printable(if h.version.is_empty() {
                "-"
            } else {
                &h.version
            }),
            h.vouched,
            if h.leases.is_empty() {
                "-".to_string()
            } else {
                printable(&h.leases.join(", ")).into_owned()
            }
        );
    }
    o
}

/// The agent as its state file shows it: running if the state is fresh (three intervals, at
/// least 30 s, on the monotonic clock) and its PID lives.
fn agent_info(l: &AgentLook<'_>, mono_usec: u64) -> AgentInfo {
    let a = l.state;
    let fresh = mono_usec.saturating_sub(a.updated_mono_usec)
        < a.interval_ms
            .saturating_mul(3)
            .max(30_000)
            .saturating_mul(1000);
    AgentInfo {
        running: fresh && l.pid_alive,
        pid: a.pid,
        mode: a.mode,
        updated_usec: a.updated_usec,
        cycles: a.cycles,
        last_cycle_ms: a.last_cycle_ms,
        totals: a.totals.clone(),
    }
}

fn paint(s: &str, sev: Severity, color: bool) -> String {
    if !color {
        return s.to_string();
    }
    let code = match sev {
        Severity::Ok => "32",
        Severity::Warning => "33",
        Severity::Critical => "31;1",
        Severity::Unknown => "35",
    };
    format!("\x1b[{code}m{s}\x1b[0m")
}

fn ago(now_usec: u64, at_usec: u64) -> String {
    format!("{} ago", fmt_ms(now_usec.saturating_sub(at_usec) / 1000))
}

fn dash() -> String {
    "-".to_string()
}

/// The human table.
pub fn render(st: &Status, color: bool) -> String {
    let mut o = String::new();
    header(&mut o, st, color);
    let _ = writeln!(
        o,
        "{:<34} {:<18} {:>8}  {:<34} {:>7} {:>8} {:>7} {:>6}  {:<16} LAST ACTION",
        "UNIT", "STATE", "PID", "CONSUMER", "IDLE", "INACTIVE", "PENDING", "LAG", "VERDICT"
    );
    for u in &st.units {
        unit_rows(&mut o, st.now_usec, u, color);
    }
    other_consumers(&mut o, st, color);
    keys_and_poison(&mut o, st, color);
    for p in st.pipelines.iter().filter(|p| p.severity != Severity::Ok) {
        let _ = writeln!(
            o,
            "pipeline {}: {}",
            p.name,
            paint(&p.message, p.severity, color)
        );
    }
    if !st.held_actions.is_empty() {
        let _ = writeln!(o, "\nheld actions:");
        for h in &st.held_actions {
            let described = super::journal::describe(&h.action);
            let _ = writeln!(o, "  {}: {}", printable(&described), printable(&h.held_by));
        }
    }
    if !st.proposed_actions.is_empty() {
        let _ = writeln!(o, "\nnext actions ({}):", st.mode);
        for a in &st.proposed_actions {
            let described = super::journal::describe(a);
            let _ = writeln!(o, "  {}: {}", printable(&described), printable(a.reason()));
        }
    }
    o
}

/// The agent's line and what could not be read.
fn header(o: &mut String, st: &Status, color: bool) {
    let head = match &st.agent {
        Some(a) if a.running => format!(
            "agent: running (pid {}, mode {}, {} cycles, last {:.1} ms; restarted {}, claimed {}, deleted {})",
            a.pid,
            a.mode,
            a.cycles,
            a.last_cycle_ms,
            a.totals.restarts,
            a.totals.claimed + a.totals.requeued,
            a.totals.deleted
        ),
        Some(a) => format!(
            "agent: not running (last seen {}, pid {})",
            ago(st.now_usec, a.updated_usec),
            a.pid
        ),
        None => format!(
            "agent: no state file at {}: no agent runs here, or it cannot write there (see its log)",
            st.state_file
        ),
    };
    let _ = writeln!(o, "{head} on {}; configured mode {}", st.hostname, st.mode);
    for e in &st.hold_errors {
        let line = format!("pauses: {}", printable(e));
        let _ = writeln!(o, "{}", paint(&line, Severity::Warning, color));
    }
    for (what, e) in [("systemd", &st.systemd_error), ("redis", &st.redis_error)] {
        if let Some(e) = e {
            let line = format!("{what}: {}", printable(e));
            let _ = writeln!(o, "{}", paint(&line, Severity::Unknown, color));
        }
    }
}

/// A unit's rows: one per binding, the unit's columns on the first.
fn unit_rows(o: &mut String, now: u64, u: &UnitStatus, color: bool) {
    let r = &u.report;
    let state = if r.active_state.is_empty() {
        dash()
    } else {
        format!("{}/{}", r.active_state, r.sub_state)
    };
    let verdict = if r.verdict == Verdict::Hung && r.streak < r.confirm {
        format!("hung ({}/{})", r.streak, r.confirm)
    } else {
        r.verdict.as_str().to_string()
    };
    let last = last_action(now, u);
    let pid = if r.main_pid == 0 {
        dash()
    } else {
        r.main_pid.to_string()
    };
    let rows: Vec<Option<&BindingReport>> = if r.bindings.is_empty() {
        vec![None]
    } else {
        r.bindings.iter().map(Some).collect()
    };
    for (i, b) in rows.into_iter().enumerate() {
        let [consumer, idle, inactive, pending, lag] = binding_cells(b);
        let first = i == 0;
        let pick = |s: &str| if first { s.to_string() } else { String::new() };
        let v = format!("{:<16}", pick(&verdict));
        let _ = writeln!(
            o,
            "{:<34} {:<18} {:>8}  {:<34} {:>7} {:>8} {:>7} {:>6}  {} {}",
            pick(&r.unit),
            pick(&state),
            pick(&pid),
            consumer,
            idle,
            inactive,
            pending,
            lag,
            paint(&v, r.severity, color && first),
            pick(&last)
        );
    }
    if let Some(h) = &r.hold {
        let _ = writeln!(o, "    held: {}", printable(h));
    }
    if r.severity != Severity::Ok {
        let _ = writeln!(o, "    {}", printable(&r.reason));
        for b in r.bindings.iter().filter(|b| b.error.is_some()) {
            if !r.reason.contains(&b.reason) {
                let _ = writeln!(o, "    {}", printable(&b.reason));
            }
        }
    }
}

/// The most recent action, and the last restart if that was something else.
fn last_action(now: u64, u: &UnitStatus) -> String {
    let mut last = u
        .last_action
        .as_ref()
        .map(|a| {
            format!(
                "{} {} ({})",
                a.action,
                ago(now, a.at_usec),
                printable(&a.outcome)
            )
        })
        .unwrap_or_else(dash);
    if let Some(r) = u.last_actions.get("restart")
        && u.last_action
            .as_ref()
            .is_some_and(|l| l.action != "restart")
    {
        last.push_str(&format!("; restart {}", ago(now, r.at_usec)));
    }
    last
}

/// CONSUMER, IDLE, INACTIVE, PENDING, LAG of one binding.
fn binding_cells(b: Option<&BindingReport>) -> [String; 5] {
    let Some(b) = b else {
        return [dash(), dash(), dash(), dash(), dash()];
    };
    let consumer = b
        .consumer
        .as_deref()
        .map(|c| {
            let c = printable_name(c);
            if b.consumer_present {
                c.into_owned()
            } else {
                format!("{c}?")
            }
        })
        .unwrap_or_else(dash);
    let inactive = b
        .inactive_ms
        .map(|v| {
            if v < 0 {
                "never".into()
            } else {
                fmt_ms(v as u64)
            }
        })
        .unwrap_or_else(dash);
    let lag = match (b.lag, b.work_waiting) {
        (Some(l), _) => l.to_string(),
        (None, Some(true)) => "null>0".into(),
        (None, _) => "null".into(),
    };
    [
        consumer,
        b.idle_ms.map(fmt_ms).unwrap_or_else(dash),
        inactive,
        b.pending.map(|v| v.to_string()).unwrap_or_else(dash),
        lag,
    ]
}

/// Every consumer of a watched group that no unit row shows: none is invisible.
fn other_consumers(o: &mut String, st: &Status, color: bool) {
    let others: Vec<_> = st.consumers.iter().filter(|c| !c.current).collect();
    if others.is_empty() {
        return;
    }
    let _ = writeln!(o, "\nother consumers:");
    for c in others {
        let liveness = format!("{:?}", c.liveness).to_lowercase();
        let _ = writeln!(
            o,
            "  {} {} / {}: {} pending, idle {}: {}",
            paint(&liveness, c.severity, color),
            printable_name(&c.group),
            printable_name(&c.consumer),
            c.pending,
            fmt_ms(c.idle_ms),
            printable(&c.note)
        );
    }
}

/// Gauges, flags and poison entries.
fn keys_and_poison(o: &mut String, st: &Status, color: bool) {
    for g in &st.gauges {
        let v = g.value.map(|v| format!("{v}")).unwrap_or_else(dash);
        let _ = writeln!(
            o,
            "gauge {}: {v} / {} ({}) {}",
            g.name,
            g.limit,
            g.key,
            paint(&g.note, g.severity, color)
        );
    }
    for f in &st.flags {
        let value = f.value.as_deref().map(printable);
        let _ = writeln!(
            o,
            "flag {} ({}): {}",
            f.name,
            f.key,
            value.as_deref().unwrap_or("(unset)")
        );
    }
    for p in &st.poison {
        let what = if p.dead_letter {
            format!("going to {}", printable(&p.dead_stream))
        } else {
            "stays pending (set dead_letter_after to move such entries aside)".to_string()
        };
        let _ = writeln!(
            o,
            "{} entry {} of {} in {}: delivered {} times, never acknowledged; {what}",
            paint("poison", p.severity, color),
            p.id,
            printable_name(&p.consumer),
            printable_name(&p.group),
            p.deliveries
        );
    }
}

fn per_min(v: Option<f64>) -> String {
    v.map(|r| format!("{r:.1}/min"))
        .unwrap_or_else(|| "-".into())
}

/// `status --pipeline`: each stream's arrival rate, each group's lag and delivery rate, and
/// where flow stops.
pub fn render_pipelines(st: &Status, color: bool) -> String {
    let mut o = String::new();
    if st.pipelines.is_empty() {
        let _ = writeln!(o, "no [[pipeline]] configured");
    }
    for p in &st.pipelines {
        pipeline_rows(&mut o, p, color);
    }
    o
}

fn pipeline_rows(o: &mut String, p: &PipelineReport, color: bool) {
    {
        let _ = writeln!(
            o,
            "pipeline {}: {}",
            p.name,
            paint(&p.message, p.severity, color)
        );
        for (i, s) in p.stages.iter().enumerate() {
            let mark = if p.stalled_at == Some(i) { ">>" } else { "  " };
            let _ = writeln!(
                o,
                "{mark} {:<40} length {:>8}  added {:>10}{}",
                s.stream,
                s.length
                    .map(|l| l.to_string())
                    .unwrap_or_else(|| "-".into()),
                per_min(s.added_per_min),
                s.error
                    .as_ref()
                    .map(|e| format!("  ({e})"))
                    .unwrap_or_default()
            );
            for g in &s.groups {
                let state = if g.stalled {
                    paint("STALLED", Severity::Critical, color)
                } else if g.work_waiting {
                    "behind".to_string()
                } else {
                    "caught up".to_string()
                };
                let _ = writeln!(
                    o,
                    "     group {:<36} lag {:>8}  delivered {:>10}  last delivery {:>7} ago  {state}",
                    g.group,
                    g.lag
                        .map(|l| l.to_string())
                        .unwrap_or_else(|| "null".into()),
                    per_min(g.delivered_per_min),
                    fmt_ms(g.no_delivery_ms)
                );
            }
        }
    }
}
