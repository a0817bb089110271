//! The daemon loop: snapshot → [`policy::decide`] → act (enforce) or log (observe) → state
//! file and sd_notify. Nothing here decides anything.
//!
//! Supervision: `READY=1` after the first complete cycle; `WATCHDOG=1` only after a cycle that
//! completed within its budget (half of `WatchdogSec=`); `STATUS=` one line per cycle;
//! `RELOADING=1`/`READY=1` around a SIGHUP reload; `STOPPING=1` on SIGTERM.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use crate::catalog;
use crate::collect::World;
use crate::config::{self, Config, Mode};
use crate::execute::{self, Act, Totals};
use crate::metrics::{self, Metrics};
use crate::model::{fmt_ms, now_usec};
use crate::notify;
use crate::policy::{self, Action, Decision, Memory, Verdict};
use crate::state::{self, AgentState, LastAction};
use crate::streams::read_password;

/// How often the state file and the metrics textfile are written when nothing happened.
const STATE_EVERY: Duration = Duration::from_secs(5);
const TEXTFILE_EVERY: Duration = Duration::from_secs(10);

/// How long a restart job may take before the agent stops waiting for it.
const JOB_TIMEOUT: Duration = Duration::from_secs(300);

pub struct AgentOptions {
    pub config: Option<PathBuf>,
    pub root: PathBuf,
    pub user: bool,
}

pub fn load_config(o: &AgentOptions) -> Result<Config, config::ConfigError> {
    let env = std::env::var(config::MODE_ENV).ok();
    config::load(o.config.as_deref(), &o.root, env.as_deref())
}

struct Agent {
    cfg: Config,
    world: World,
    mem: Memory,
    state_path: PathBuf,
    last_actions: BTreeMap<String, BTreeMap<String, LastAction>>,
    totals: Totals,
    cycles: u64,
    /// Verdicts last logged, to log changes only.
    verdicts: BTreeMap<String, Verdict>,
    /// Observe mode: "would …" lines already logged while the proposal stands.
    would: BTreeSet<String>,
    jobs: mpsc::UnboundedSender<(String, Result<String, String>)>,
    metrics: Arc<Metrics>,
    last_save: Option<Instant>,
    last_textfile: Option<Instant>,
    /// Why the state file could not be written last time, if it could not.
    save_error: Option<String>,
}

/// Runs the agent until SIGTERM. `password`: the Redis password, read by the caller.
pub async fn run(o: AgentOptions, cfg: Config, password: Option<String>) -> anyhow::Result<()> {
    let world = World::new(&cfg, o.user, password).context("redis configuration")?;
    let state_path = state::state_file(&cfg, o.user);
    let previous = state::load(&state_path);
    let (jobs_tx, mut jobs_rx) = mpsc::unbounded_channel();
    let mut agent = Agent {
        mem: previous
            .as_ref()
            .map(|s| s.memory.clone())
            .unwrap_or_default(),
        last_actions: previous
            .as_ref()
            .map(|s| s.last_actions.clone())
            .unwrap_or_default(),
        totals: previous.map(|s| s.totals).unwrap_or_default(),
        cfg,
        world,
        state_path,
        cycles: 0,
        verdicts: BTreeMap::new(),
        would: BTreeSet::new(),
        jobs: jobs_tx,
        metrics: Arc::new(Metrics::new()),
        last_save: None,
        last_textfile: None,
        save_error: None,
    };
    let listen = state::metrics_listen(&agent.cfg, o.user);
    let _server = match listen.as_str() {
        "" => None,
        listen => match metrics::serve(listen, agent.metrics.clone()).await {
            Ok(h) => Some(h),
            Err(e) => {
                tracing::error!("metrics.listen {listen}: {e}; serving no metrics");
                None
            }
        },
    };
    // Restart jobs of an earlier agent process are not ours to wait for.
    for m in agent.mem.units.values_mut() {
        m.restart_in_flight = false;
    }
    let wd = notify::watchdog_interval();
    tracing::info!(
        mode = %agent.cfg.mode,
        "quantum-watchdog {} starting: mode {}, interval {}, {} binding(s), redis {}, {} manager{}",
        env!("CARGO_PKG_VERSION"),
        agent.cfg.mode,
        humantime::format_duration(agent.cfg.interval.0),
        agent.cfg.watch.len(),
        agent.world.streams.url(),
        if o.user { "user" } else { "system" },
        wd.map(|w| format!(", watchdog {}", humantime::format_duration(w))).unwrap_or_default()
    );

    if let Some(w) = wd
        && agent.cfg.interval.0 > w / 2
    {
        tracing::info!(
            "interval {} is longer than half of WatchdogSec={}: the watchdog is pinged between cycles while they keep completing",
            humantime::format_duration(agent.cfg.interval.0),
            humantime::format_duration(w)
        );
    }
    let mut term = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let mut hup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut ready = false;
    // Pings between cycles (an interval longer than half of WatchdogSec=), only while they
    // keep completing.
    let tick = wd.map_or(Duration::from_secs(3600), |w| w / 2);
    let mut pings = tokio::time::interval_at(tokio::time::Instant::now() + tick, tick);
    let mut last_ok: Option<Instant> = None;
    loop {
        let interval = agent.cfg.interval.0;
        // A cycle must finish well within the watchdog period, or it does not count.
        let budget = cycle_budget(wd, interval);
        let started = Instant::now();
        match tokio::time::timeout(budget, agent.cycle(started, budget)).await {
            Ok(line) => {
                if !ready {
                    notify::ready();
                    ready = true;
                }
                last_ok = Some(Instant::now());
                notify::watchdog();
                notify::status(&line);
            }
            Err(_) => {
                tracing::error!(
                    "cycle did not complete within {}; not pinging the watchdog",
                    humantime::format_duration(budget)
                );
            }
        }
        let next = tokio::time::Instant::from_std(started + interval);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => break,
                _ = pings.tick() => {
                    if wd.is_some() && last_ok.is_some_and(|t| t.elapsed() <= interval + budget) {
                        notify::watchdog();
                    }
                }
                _ = term.recv() => return agent.stop("SIGTERM"),
                _ = int.recv() => return agent.stop("SIGINT"),
                _ = hup.recv() => agent.reload(&o).await,
                Some((unit, r)) = jobs_rx.recv() => agent.job_finished(&unit, r),
            }
        }
    }
}

/// How long one cycle may take: half of `WatchdogSec=`, or (without a watchdog) three
/// intervals and at least 30 s.
fn cycle_budget(wd: Option<Duration>, interval: Duration) -> Duration {
    wd.map(|w| w / 2)
        .unwrap_or(interval.max(Duration::from_secs(10)) * 3)
}

impl Agent {
    fn stop(&mut self, why: &str) -> anyhow::Result<()> {
        notify::stopping();
        tracing::info!("{why}: stopping");
        self.save(0.0);
        Ok(())
    }

    async fn reload(&mut self, o: &AgentOptions) {
        notify::reloading();
        match load_config(o) {
            Ok(new) => {
                let redis_changed = new.redis != self.cfg.redis;
                if redis_changed {
                    match read_password(&new.redis)
                        .map_err(|e| e.to_string())
                        .and_then(|pw| World::new(&new, o.user, pw).map_err(|e| e.to_string()))
                    {
                        Ok(w) => self.world = w,
                        Err(e) => {
                            tracing::error!("reload: keeping the old configuration: {e}");
                            notify::ready();
                            return;
                        }
                    }
                }
                tracing::info!(mode = %new.mode, "reloaded configuration: mode {}, {} binding(s)", new.mode, new.watch.len());
                self.cfg = new;
            }
            Err(e) => tracing::error!("reload: keeping the old configuration: {e}"),
        }
        notify::ready();
    }

    fn job_finished(&mut self, unit: &str, r: Result<String, String>) {
        self.mem.note_restart_finished(unit);
        match r {
            Ok(result) if result == "done" => {
                tracing::info!(
                    unit,
                    action = "restart-done",
                    "restart of {unit} finished: {result}"
                )
            }
            Ok(result) => tracing::error!(
                unit,
                action = "restart-failed",
                "restart job of {unit} ended: {result}"
            ),
            Err(e) => tracing::error!(
                unit,
                action = "restart-failed",
                "restart job of {unit}: {e}"
            ),
        }
    }

    /// One cycle; returns the STATUS= line.
    async fn cycle(&mut self, started: Instant, budget: Duration) -> String {
        let snap = self.world.snapshot(&self.cfg, &self.mem).await;
        let t_decide = Instant::now();
        let d = policy::decide(&self.cfg, &snap, &mut self.mem);
        let t_decide = t_decide.elapsed();
        self.log_verdicts(&d);
        let mode = self.cfg.mode;
        let proposed: BTreeSet<String> = d.actions.iter().map(Action::describe).collect();
        self.would.retain(|w| proposed.contains(w));
        // Consumer work may use up to 60% of the cycle budget.
        let deadline = started + budget.mul_f32(0.6);
        if mode == Mode::Observe {
            for a in &d.actions {
                if self.would.insert(a.describe()) {
                    execute::log_action(a, mode, "", true);
                }
            }
        }
        for a in policy::to_execute(mode, &d.actions) {
            let outcome = match a {
                Action::Restart { unit, reason, .. } => self.restart(a, unit, reason, &d).await,
                _ => {
                    let mut act = Act {
                        streams: &mut self.world.streams,
                        mode,
                        deadline,
                        totals: &mut self.totals,
                        metrics: &self.metrics,
                        mem: &mut self.mem,
                    };
                    execute::consumer_action(&mut act, a).await
                }
            };
            let key = a.unit().map(str::to_string).unwrap_or_else(|| match a {
                Action::Delete { stream, group, .. } => format!("{stream} {group}"),
                _ => String::new(),
            });
            self.last_actions.entry(key).or_default().insert(
                a.kind().to_string(),
                LastAction {
                    action: a.kind().to_string(),
                    outcome,
                    at_usec: now_usec(),
                },
            );
        }
        self.cycles += 1;
        let took = started.elapsed();
        let line = status_line(&d, mode, &self.totals, took);
        let acted = !policy::to_execute(mode, &d.actions).is_empty();
        let t_metrics = Instant::now();
        self.metrics.observe(&self.cfg, snap, d, took);
        self.metrics.round_trips(self.world.streams.round_trips);
        // The textfile collector reads every 15 s or so: write at most every 10 s.
        if let Some(dir) = &self.cfg.metrics.textfile_dir
            && self
                .last_textfile
                .is_none_or(|t| t.elapsed() >= TEXTFILE_EVERY)
        {
            self.last_textfile = Some(Instant::now());
            if let Err(e) = self.metrics.write_textfile(dir) {
                tracing::warn!("metrics.textfile_dir {}: {e}", dir.display());
            }
        }
        let t_metrics = t_metrics.elapsed();
        // The state file after every action, else every few seconds (status reads it).
        let t_save = Instant::now();
        if acted || self.last_save.is_none_or(|t| t.elapsed() >= STATE_EVERY) {
            self.last_save = Some(Instant::now());
            self.save(took.as_secs_f64() * 1000.0);
        }
        tracing::debug!(
            "cycle {:.2} ms: decide {:.2} ms; then metrics {:.2} ms, state {:.2} ms",
            took.as_secs_f64() * 1e3,
            t_decide.as_secs_f64() * 1e3,
            t_metrics.as_secs_f64() * 1e3,
            t_save.elapsed().as_secs_f64() * 1e3
        );
        line
    }

    async fn restart(&mut self, a: &Action, unit: &str, reason: &str, d: &Decision) -> String {
        let evidence = d
            .units
            .iter()
            .find(|u| u.unit == unit)
            .map(|u| {
                u.bindings
                    .iter()
                    .map(|b| {
                        format!(
                            "{} idle={} lag={} pending={} group_pending={}",
                            b.consumer.as_deref().unwrap_or("-"),
                            b.idle_ms.map(fmt_ms).unwrap_or("-".into()),
                            b.lag.map(|l| l.to_string()).unwrap_or("null".into()),
                            b.pending.map(|l| l.to_string()).unwrap_or("-".into()),
                            b.group_pending.map(|l| l.to_string()).unwrap_or("-".into()),
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default();
        let now = now_usec();
        let Some(sd) = self.world.systemd.as_ref() else {
            return "systemd unreachable".into();
        };
        match sd.restart(unit, JOB_TIMEOUT).await {
            Ok(job) => {
                self.mem.note_restart(unit, now);
                self.totals.restarts += 1;
                self.metrics.record(a, 0, true);
                tracing::warn!(
                    unit, action = "restart", reason, evidence = %evidence, mode = "enforce",
                    message_id = catalog::RESTART,
                    "restarting {unit}: {reason} [{evidence}]"
                );
                let tx = self.jobs.clone();
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
                // A refused or failed attempt counts against the budget too: no hammering.
                self.mem.note_restart(unit, now);
                self.mem.note_restart_finished(unit);
                self.totals.errors += 1;
                let outcome = e.to_string();
                execute::log_action(a, Mode::Enforce, &outcome, false);
                self.world.systemd_failed(&e);
                outcome
            }
        }
    }

    fn log_verdicts(&mut self, d: &Decision) {
        for u in &d.units {
            let before = self.verdicts.insert(u.unit.clone(), u.verdict);
            if before != Some(u.verdict) {
                let verdict = u.verdict.as_str();
                let was = before.map(|v| v.as_str()).unwrap_or("-");
                let (unit, reason) = (u.unit.as_str(), u.reason.as_str());
                match u.severity {
                    policy::Severity::Ok => tracing::info!(
                        unit,
                        verdict,
                        reason,
                        action = "verdict",
                        message_id = catalog::VERDICT,
                        "{unit}: {was} -> {verdict}: {reason}"
                    ),
                    _ => tracing::warn!(
                        unit,
                        verdict,
                        reason,
                        action = "verdict",
                        message_id = catalog::VERDICT,
                        "{unit}: {was} -> {verdict}: {reason}"
                    ),
                }
            }
        }
        for p in &d.pipelines {
            let key = format!("\0pipeline {}", p.name);
            let now = if p.stalled_at.is_some() {
                Verdict::Hung
            } else {
                Verdict::Healthy
            };
            let before = self.verdicts.insert(key, now);
            if before != Some(now) && (now == Verdict::Hung || before.is_some()) {
                let (pipeline, reason) = (p.name.as_str(), p.message.as_str());
                if now == Verdict::Hung {
                    tracing::error!(
                        pipeline,
                        reason,
                        action = "stall",
                        message_id = catalog::STALL,
                        "pipeline {pipeline} stalled: {reason}"
                    );
                } else {
                    tracing::info!(
                        pipeline,
                        action = "stall-cleared",
                        "pipeline {pipeline} flows again"
                    );
                }
            }
        }
        for (what, e) in [("systemd", &d.systemd_error), ("redis", &d.redis_error)] {
            let key = format!("\0{what}");
            let now = if e.is_some() {
                Verdict::Unknown
            } else {
                Verdict::Healthy
            };
            let before = self.verdicts.insert(key, now);
            match (before, e) {
                (Some(Verdict::Healthy) | None, Some(e)) => {
                    tracing::error!("{what}: {e}; reporting unknown, taking no action")
                }
                (Some(Verdict::Unknown), None) => tracing::info!("{what}: reachable again"),
                _ => {}
            }
        }
    }

    fn save(&mut self, last_cycle_ms: f64) {
        let st = AgentState {
            version: state::STATE_VERSION,
            boot_id: state::boot_id(),
            pid: std::process::id(),
            unit: self.world.self_unit().map(str::to_string),
            mode: self.cfg.mode,
            updated_usec: now_usec(),
            interval_ms: self.cfg.interval.as_millis(),
            cycles: self.cycles,
            last_cycle_ms,
            memory: self.mem.clone(),
            last_actions: self.last_actions.clone(),
            totals: self.totals.clone(),
        };
        match state::save(&self.state_path, &st) {
            Ok(()) => {
                if self.save_error.take().is_some() {
                    tracing::info!("state file {} written again", self.state_path.display());
                }
            }
            Err(e) => {
                let e = e.to_string();
                if self.save_error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(
                        "cannot write the state file {}: {e}; restart budgets and earlier MainPIDs will not survive an agent restart, and `status` cannot see this agent",
                        self.state_path.display()
                    );
                }
                self.save_error = Some(e);
            }
        }
    }
}

/// `STATUS=` for `systemctl status`.
pub fn status_line(d: &Decision, mode: Mode, t: &Totals, took: Duration) -> String {
    let count = |v: Verdict| d.units.iter().filter(|u| u.verdict == v).count();
    let mut s = format!(
        "{mode}: {} unit(s), {} hung, {} gave up, {} failed; restarted {}, claimed {}, deleted {}; cycle {}ms",
        d.units.len(),
        count(Verdict::Hung),
        count(Verdict::GaveUp),
        count(Verdict::Failed) + count(Verdict::StartLimitHit),
        t.restarts,
        t.claimed + t.requeued,
        t.deleted,
        took.as_millis()
    );
    if d.redis_error.is_some() {
        s.push_str("; redis unreachable");
    }
    if d.systemd_error.is_some() {
        s.push_str("; D-Bus unreachable");
    }
    s
}
