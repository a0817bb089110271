//! `quantum-watchdog status`: one look at every watched unit, as a table or stable JSON, with
//! monitoring-plugin exit codes (0 ok, 1 warning, 2 critical, 3 unknown).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use crate::config::{Config, Mode};
use crate::execute::printable;
use crate::model::{Snapshot, fmt_ms};
use crate::pipeline::{FlagReport, GaugeReport, PipelineReport};
use crate::policy::{
    self, Action, ConsumerReport, Decision, Memory, PoisonReport, Severity, UnitReport, Verdict,
};
use crate::state::{AgentState, LastAction};

pub const JSON_VERSION: u32 = 1;

#[derive(Debug, Serialize)]
pub struct AgentInfo {
    pub running: bool,
    pub pid: u32,
    pub mode: Mode,
    pub updated_usec: u64,
    pub cycles: u64,
    pub last_cycle_ms: f64,
    pub totals: crate::execute::Totals,
}

#[derive(Debug, Serialize)]
pub struct UnitStatus {
    #[serde(flatten)]
    pub report: UnitReport,
    /// The most recent action a running agent took for this unit.
    pub last_action: Option<LastAction>,
    /// The last action of each kind.
    pub last_actions: BTreeMap<String, LastAction>,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub version: u32,
    /// When the look was taken (realtime µs).
    pub now_usec: u64,
    pub hostname: String,
    /// Where the running agent's state file is read from.
    pub state_file: String,
    pub mode: Mode,
    pub severity: Severity,
    pub exit_code: i32,
    pub systemd_error: Option<String>,
    pub redis_error: Option<String>,
    pub agent: Option<AgentInfo>,
    pub units: Vec<UnitStatus>,
    pub consumers: Vec<ConsumerReport>,
    pub pipelines: Vec<PipelineReport>,
    pub gauges: Vec<GaugeReport>,
    pub flags: Vec<FlagReport>,
    pub poison: Vec<PoisonReport>,
    /// What the agent would do next, by this look.
    pub proposed_actions: Vec<Action>,
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
    let running = look.is_some_and(|l| {
        let a = l.state;
        let fresh = now.saturating_sub(a.updated_usec)
            < a.interval_ms
                .saturating_mul(3)
                .max(30_000)
                .saturating_mul(1000);
        fresh && l.pid_alive
    });
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
        agent: agent.map(|a| AgentInfo {
            running,
            pid: a.pid,
            mode: a.mode,
            updated_usec: a.updated_usec,
            cycles: a.cycles,
            last_cycle_ms: a.last_cycle_ms,
            totals: a.totals.clone(),
        }),
        units: d
            .units
            .iter()
            .map(|u| {
                let all = agent
                    .and_then(|a| a.last_actions.get(&u.unit).cloned())
                    .unwrap_or_default();
                UnitStatus {
                    report: u.clone(),
                    last_action: crate::state::latest(&all).cloned(),
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

/// The human table.
pub fn render(st: &Status, color: bool) -> String {
    let mut o = String::new();
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
    let _ = writeln!(
        o,
        "{} on {}; configured mode {}",
        head, st.hostname, st.mode
    );
    if let Some(e) = &st.systemd_error {
        let _ = writeln!(
            o,
            "{}",
            paint(&format!("systemd: {e}"), Severity::Unknown, color)
        );
    }
    if let Some(e) = &st.redis_error {
        let _ = writeln!(
            o,
            "{}",
            paint(&format!("redis: {e}"), Severity::Unknown, color)
        );
    }
    let _ = writeln!(
        o,
        "{:<34} {:<18} {:>8}  {:<34} {:>7} {:>8} {:>7} {:>6}  {:<16} LAST ACTION",
        "UNIT", "STATE", "PID", "CONSUMER", "IDLE", "INACTIVE", "PENDING", "LAG", "VERDICT"
    );
    for u in &st.units {
        let r = &u.report;
        let state = if r.active_state.is_empty() {
            "-".to_string()
        } else {
            format!("{}/{}", r.active_state, r.sub_state)
        };
        let verdict = if r.verdict == Verdict::Hung && r.streak < r.confirm {
            format!("hung ({}/{})", r.streak, r.confirm)
        } else {
            r.verdict.as_str().to_string()
        };
        let mut last = u
            .last_action
            .as_ref()
            .map(|a| {
                format!(
                    "{} {} ({})",
                    a.action,
                    ago(st.now_usec, a.at_usec),
                    printable(&a.outcome)
                )
            })
            .unwrap_or_else(|| "-".into());
        if let Some(r) = u.last_actions.get("restart")
            && u.last_action
                .as_ref()
                .is_some_and(|l| l.action != "restart")
        {
            last.push_str(&format!("; restart {}", ago(st.now_usec, r.at_usec)));
        }
        let pid = if r.main_pid == 0 {
            "-".to_string()
        } else {
            r.main_pid.to_string()
        };
        let rows: Vec<_> = if r.bindings.is_empty() {
            vec![None]
        } else {
            r.bindings.iter().map(Some).collect()
        };
        for (i, b) in rows.into_iter().enumerate() {
            let dash = || "-".to_string();
            let (consumer, idle, inactive, pending, lag) = match b {
                Some(b) => (
                    b.consumer
                        .as_deref()
                        .map(|c| {
                            let c = printable(c);
                            if b.consumer_present {
                                c.into_owned()
                            } else {
                                format!("{c}?")
                            }
                        })
                        .unwrap_or_else(dash),
                    b.idle_ms.map(fmt_ms).unwrap_or_else(dash),
                    b.inactive_ms
                        .map(|v| {
                            if v < 0 {
                                "never".into()
                            } else {
                                fmt_ms(v as u64)
                            }
                        })
                        .unwrap_or_else(dash),
                    b.pending.map(|v| v.to_string()).unwrap_or_else(dash),
                    match (b.lag, b.work_waiting) {
                        (Some(l), _) => l.to_string(),
                        (None, Some(true)) => "null>0".into(),
                        (None, _) => "null".into(),
                    },
                ),
                None => (dash(), dash(), dash(), dash(), dash()),
            };
            let (name, st_, pid_, v, la) = if i == 0 {
                (
                    r.unit.as_str(),
                    state.as_str(),
                    pid.as_str(),
                    verdict.as_str(),
                    last.as_str(),
                )
            } else {
                ("", "", "", "", "")
            };
            let v = format!("{v:<16}");
            let _ = writeln!(
                o,
                "{:<34} {:<18} {:>8}  {:<34} {:>7} {:>8} {:>7} {:>6}  {} {}",
                name,
                st_,
                pid_,
                consumer,
                idle,
                inactive,
                pending,
                lag,
                paint(&v, r.severity, color && i == 0),
                la
            );
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
    // Every consumer of a watched group that no unit row shows: none is invisible.
    let others: Vec<_> = st.consumers.iter().filter(|c| !c.current).collect();
    if !others.is_empty() {
        let _ = writeln!(o, "\nother consumers:");
        for c in others {
            let _ = writeln!(
                o,
                "  {} {} / {}: {} pending, idle {}: {}",
                paint(
                    &format!("{:?}", c.liveness).to_lowercase(),
                    c.severity,
                    color
                ),
                printable(&c.group),
                printable(&c.consumer),
                c.pending,
                fmt_ms(c.idle_ms),
                printable(&c.note)
            );
        }
    }
    for g in &st.gauges {
        let v = g
            .value
            .map(|v| format!("{v}"))
            .unwrap_or_else(|| "-".into());
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
        let _ = writeln!(
            o,
            "flag {} ({}): {}",
            f.name,
            f.key,
            f.value.as_deref().unwrap_or("(unset)")
        );
    }
    for p in &st.poison {
        let what = if p.dead_letter {
            format!("going to {}:dead", p.stream)
        } else {
            "stays pending (set dead_letter_after to move such entries aside)".to_string()
        };
        let _ = writeln!(
            o,
            "{} entry {} of {} in {}: delivered {} times, never acknowledged; {what}",
            paint("poison", p.severity, color),
            p.id,
            printable(&p.consumer),
            printable(&p.group),
            p.deliveries
        );
    }
    for p in &st.pipelines {
        if p.severity != Severity::Ok {
            let _ = writeln!(
                o,
                "pipeline {}: {}",
                p.name,
                paint(&p.message, p.severity, color)
            );
        }
    }
    if !st.proposed_actions.is_empty() {
        let _ = writeln!(o, "\nnext actions ({}):", st.mode);
        for a in &st.proposed_actions {
            let _ = writeln!(
                o,
                "  {}: {}",
                printable(&a.describe()),
                printable(a.reason())
            );
        }
    }
    o
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
    o
}
