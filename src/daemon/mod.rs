//! The daemon: cycles of gather ([`gather`]) → decide ([`crate::policy::decide`]) → act
//! ([`act`]) → report ([`crate::report`]), with signals, reload and systemd supervision.
//! Nothing here decides anything. [`sweep`] is the one-shot `recover`.
//!
//! Supervision: `READY=1` after the first complete cycle; `WATCHDOG=1` after each cycle that
//! completed within its budget (half of `WatchdogSec=`), and between cycles while they keep
//! completing; `STATUS=` one line per cycle; `RELOADING=1`/`READY=1` around a SIGHUP reload;
//! `STOPPING=1` on SIGTERM.

pub mod act;
pub mod exec;
pub mod gather;
pub mod sweep;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

use crate::adapters::clock::{boot_id, instance_id, mono_usec, now_usec};
use crate::adapters::heap::Heap;
use crate::adapters::{notify, state_file};
use crate::config::{self, Config, Mode, Secrets};
use crate::model::{Clock, JobResult};
use crate::policy::{self, Action, Decision, Memory};
use crate::report::journal::{self, Announced, log_action};
use crate::report::metrics::{self, AGENT_TEXTFILE, Metrics};
use crate::report::printable::printable;
use crate::report::state::{AgentState, LastAction, STATE_VERSION, Totals};
use crate::report::status_line::status_line;

use act::{Act, JobEnd};
use gather::World;

/// How often the state file and the metrics textfile are written when nothing happened.
const STATE_EVERY: Duration = Duration::from_secs(5);
const TEXTFILE_EVERY: Duration = Duration::from_secs(10);

/// Where the configuration comes from.
pub struct AgentOptions {
    /// `--config FILE`, instead of the layered files.
    pub config: Option<PathBuf>,
    /// The root the layered files are found under (`/`).
    pub root: PathBuf,
    /// `--user`.
    pub user: bool,
}

/// The configuration, with `QUANTUM_WATCHDOG_MODE` applied.
pub fn load_config(o: &AgentOptions) -> Result<Config, config::ConfigError> {
    let env = std::env::var(config::MODE_ENV).ok();
    config::load(o.config.as_deref(), &o.root, env.as_deref())
}

/// The running agent's state file, valid for this boot.
pub fn load_state(path: &Path) -> Option<AgentState> {
    let clock = Clock {
        now_usec: now_usec(),
        mono_usec: mono_usec(),
        utc_offset_secs: 0,
    };
    state_file::load::<AgentState>(path)?.for_boot(&boot_id(), clock)
}

struct Agent {
    cfg: Config,
    /// Where metrics are served, and the task serving them.
    server: Option<(String, tokio::task::JoinHandle<()>)>,
    world: World,
    mem: Memory,
    state_path: PathBuf,
    last_actions: BTreeMap<String, BTreeMap<String, LastAction>>,
    totals: Totals,
    cycles: u64,
    announced: Announced,
    /// Observe mode: "would …" lines already logged while the proposal stands.
    would: BTreeSet<String>,
    /// Held actions and pause-note errors already logged while they stand.
    held: BTreeSet<String>,
    /// Units whose restart waits for Redis to serve writes again (see `act`).
    held_back: BTreeSet<String>,
    /// The fleet's alarms already logged while they stand (a shared host name, heartbeats
    /// that cannot be read).
    fleet_alarms: BTreeSet<String>,
    jobs: mpsc::UnboundedSender<JobEnd>,
    metrics: Arc<Metrics>,
    last_save: Option<Instant>,
    last_textfile: Option<Instant>,
    /// Why the state file could not be written last time, if it could not.
    save_error: Option<String>,
}

/// The signals the agent answers.
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("SIGHUP handler")?,
        })
    }
}

/// systemd's watchdog: pinged after each complete cycle, and between cycles (an interval
/// longer than half of `WatchdogSec=`) while they keep completing.
struct Supervision {
    watchdog: Option<Duration>,
    ready: bool,
    last_ok: Option<Instant>,
    pings: tokio::time::Interval,
}

impl Supervision {
    fn new(watchdog: Option<Duration>) -> Supervision {
        let tick = watchdog.map_or(Duration::from_secs(3600), |w| w / 2);
        Supervision {
            watchdog,
            ready: false,
            last_ok: None,
            pings: tokio::time::interval_at(tokio::time::Instant::now() + tick, tick),
        }
    }

    /// How long one cycle may take: half of `WatchdogSec=`, or (without a watchdog) three
    /// intervals and at least 30 s.
    fn budget(&self, interval: Duration) -> Duration {
        self.watchdog
            .map(|w| w / 2)
            .unwrap_or(interval.max(Duration::from_secs(10)) * 3)
    }

    fn completed(&mut self, line: &str) {
        if !self.ready {
            notify::ready();
            self.ready = true;
        }
        self.last_ok = Some(Instant::now());
        notify::watchdog();
        notify::status(line);
    }

    /// A ping between cycles, if the last one completed within `fresh`.
    fn between(&self, fresh: Duration) {
        if self.watchdog.is_some() && self.last_ok.is_some_and(|t| t.elapsed() <= fresh) {
            notify::watchdog();
        }
    }
}

/// Runs the agent until SIGTERM. `secrets`: what `[redis]` names, read by the caller.
pub async fn run(o: AgentOptions, cfg: Config, secrets: Secrets) -> anyhow::Result<()> {
    let world = World::new(&cfg, o.user, &secrets).context("redis configuration")?;
    let (jobs_tx, mut jobs_rx) = mpsc::unbounded_channel();
    let mut agent = Agent::new(&o, cfg, world, jobs_tx);
    agent.server = agent.serve_metrics(&o).await;
    let mut sup = Supervision::new(notify::watchdog_interval());
    agent.announce_start(&o, sup.watchdog);
    let mut sig = Signals::new()?;
    let mut heap = Heap::default();
    loop {
        let interval = agent.cfg.interval.0;
        let budget = sup.budget(interval);
        let started = Instant::now();
        match tokio::time::timeout(budget, agent.cycle(started, budget)).await {
            Ok(line) => sup.completed(&line),
            Err(_) => tracing::error!(
                "cycle did not complete within {}; not pinging the watchdog",
                crate::config::format_duration(budget)
            ),
        }
        if heap.after_look() {
            tracing::debug!("freed heap given back");
        }
        let next = tokio::time::Instant::from_std(started + interval);
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(next) => break,
                _ = sup.pings.tick() => sup.between(interval + budget),
                _ = sig.term.recv() => return agent.stop("SIGTERM"),
                _ = sig.int.recv() => return agent.stop("SIGINT"),
                _ = sig.hup.recv() => agent.reload(&o).await,
                Some((unit, r)) = jobs_rx.recv() => agent.job_finished(&unit, r),
            }
        }
    }
}

impl Agent {
    fn new(
        o: &AgentOptions,
        cfg: Config,
        world: World,
        jobs: mpsc::UnboundedSender<JobEnd>,
    ) -> Agent {
        let state_path = state_file::state_file(&cfg, o.user);
        let previous = load_state(&state_path);
        let mut mem = previous
            .as_ref()
            .map(|s| s.memory.clone())
            .unwrap_or_default();
        // Restart jobs of an earlier agent process are not ours to wait for.
        for m in mem.units.values_mut() {
            m.restart_in_flight = false;
        }
        // The agent, alone of the processes that look, publishes the host's heartbeat.
        mem.fleet.publish = true;
        mem.fleet.instance = instance_id();
        if let Some(p) = &previous {
            mem.fleet.predecessor = p.fleet_instance.clone();
        }
        Agent {
            mem,
            last_actions: previous
                .as_ref()
                .map(|s| s.last_actions.clone())
                .unwrap_or_default(),
            totals: previous.map(|s| s.totals).unwrap_or_default(),
            cfg,
            world,
            state_path,
            cycles: 0,
            announced: Announced::default(),
            would: BTreeSet::new(),
            held: BTreeSet::new(),
            held_back: BTreeSet::new(),
            fleet_alarms: BTreeSet::new(),
            jobs,
            metrics: Arc::new(Metrics::new()),
            last_save: None,
            last_textfile: None,
            save_error: None,
            server: None,
        }
    }

    async fn serve_metrics(
        &self,
        o: &AgentOptions,
    ) -> Option<(String, tokio::task::JoinHandle<()>)> {
        let listen = state_file::metrics_listen(&self.cfg, o.user);
        if listen.is_empty() {
            return None;
        }
        match metrics::serve(&listen, self.metrics.clone()).await {
            Ok(h) => Some((listen, h)),
            Err(e) => {
                tracing::error!("metrics.listen {listen}: {e}; serving no metrics");
                None
            }
        }
    }

    /// After a reload: serves on the new `metrics.listen`, if it changed. The old listener is
    /// closed only once the new one is bound; if it cannot be, the old one stays, loudly.
    async fn follow_listen(&mut self, o: &AgentOptions) {
        let want = state_file::metrics_listen(&self.cfg, o.user);
        let had = self
            .server
            .as_ref()
            .map(|(l, _)| l.clone())
            .unwrap_or_default();
        if metrics::serve::same_address(&want, &had) {
            return;
        }
        let new = if want.is_empty() {
            None
        } else {
            match metrics::serve(&want, self.metrics.clone()).await {
                Ok(h) => Some((want.clone(), h)),
                Err(e) => {
                    let still = if had.is_empty() { "none" } else { &had };
                    tracing::error!("reload: metrics.listen {want}: {e}; still serving on {still}");
                    return;
                }
            }
        };
        if let Some((l, h)) = std::mem::replace(&mut self.server, new) {
            h.abort();
            if let Some(path) = l.strip_prefix("unix:") {
                let _ = std::fs::remove_file(path);
            }
        }
        let now = if want.is_empty() { "nowhere" } else { &want };
        tracing::info!("reload: metrics now served on {now} (was {had})");
    }

    fn announce_start(&self, o: &AgentOptions, wd: Option<Duration>) {
        tracing::info!(
            mode = %self.cfg.mode,
            "quantum-watchdog {} starting: mode {}, interval {}, {} binding(s), redis {}, {} manager{}",
            env!("CARGO_PKG_VERSION"),
            self.cfg.mode,
            crate::config::format_duration(self.cfg.interval.0),
            self.cfg.watch.len(),
            self.world.streams.describe(),
            if o.user { "user" } else { "system" },
            wd.map(|w| format!(", watchdog {}", crate::config::format_duration(w)))
                .unwrap_or_default()
        );
        if let Some(w) = wd
            && self.cfg.interval.0 > w / 2
        {
            tracing::info!(
                "interval {} is longer than half of WatchdogSec={}: the watchdog is pinged between cycles while they keep completing",
                crate::config::format_duration(self.cfg.interval.0),
                crate::config::format_duration(w)
            );
        }
    }

    fn stop(&mut self, why: &str) -> anyhow::Result<()> {
        // A stop does not leave the fleet: a host shut down with entries held by its consumers
        // is found dead after host_dead_after and its entries recovered (its consumers still
        // reading are not: see the idle rule of policy::fleet).
        notify::stopping();
        tracing::info!("{why}: stopping");
        self.save(0.0);
        Ok(())
    }

    /// `[fleet]` switched off: this host's heartbeat and name leave the fleet, and the others
    /// treat its consumers as of a host without an agent (the zombie rule), never as dead.
    async fn leave_fleet(&mut self) {
        let host = self.world.hostname().to_string();
        let wait = self.cfg.redis.timeout.0;
        match tokio::time::timeout(wait, self.world.streams.leave_fleet(&host)).await {
            Ok(Ok(())) => tracing::info!("left the fleet: the heartbeat of {host} removed"),
            Ok(Err(e)) => tracing::warn!("could not leave the fleet: {e}"),
            Err(_) => tracing::warn!("could not leave the fleet: timed out"),
        }
    }

    async fn reload(&mut self, o: &AgentOptions) {
        notify::reloading();
        match self.reloaded(o) {
            Ok(new) => {
                tracing::info!(mode = %new.mode, "reloaded configuration: mode {}, {} binding(s)", new.mode, new.watch.len());
                if self.cfg.fleet.enabled && !new.fleet.enabled {
                    self.leave_fleet().await;
                }
                self.cfg = new;
                self.follow_listen(o).await;
            }
            Err(e) => tracing::error!("reload: keeping the old configuration: {e}"),
        }
        notify::ready();
    }

    /// The new configuration, with a new Redis client if `[redis]` changed.
    fn reloaded(&mut self, o: &AgentOptions) -> Result<Config, String> {
        let new = load_config(o).map_err(|e| e.to_string())?;
        if new.redis != self.cfg.redis {
            let secrets = config::read_secrets(&new.redis).map_err(|e| e.to_string())?;
            self.world = World::new(&new, o.user, &secrets).map_err(|e| e.to_string())?;
        }
        Ok(new)
    }

    fn job_finished(&mut self, unit: &str, r: Result<JobResult, String>) {
        self.mem.note_restart_finished(unit);
        match r {
            Ok(result @ JobResult::Done) => {
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
        self.recheck_held_writes().await;
        let t_decide = Instant::now();
        let d = policy::decide(&self.cfg, &snap, &mut self.mem);
        let t_acted = Instant::now();
        let t_decide = t_acted - t_decide;
        self.announced.announce(&d);
        self.log_would(&d);
        self.log_held(&d, &snap.holds.errors);
        self.log_fleet(&d, &snap);
        // Consumer work may use up to 60% of the cycle budget.
        self.act(&d, started + budget.mul_f32(0.6)).await;
        self.cycles += 1;
        let took = started.elapsed();
        let t_acted = t_acted.elapsed();
        let line = status_line(&d, self.cfg.mode, &self.totals, took);
        let acted = !policy::to_execute(self.cfg.mode, &d.actions).is_empty();
        let t_report = Instant::now();
        self.metrics.observe(&self.cfg, snap, d, took);
        self.metrics.round_trips(self.world.streams.round_trips);
        self.write_textfile();
        // The state file after every action, else every few seconds (status reads it).
        if acted || self.last_save.is_none_or(|t| t.elapsed() >= STATE_EVERY) {
            self.last_save = Some(Instant::now());
            self.save(took.as_secs_f64() * 1000.0);
        }
        tracing::debug!(
            "cycle {:.2} ms: decide {:.2} ms, logs and actions {:.2} ms; then metrics and state {:.2} ms",
            took.as_secs_f64() * 1e3,
            t_decide.as_secs_f64() * 1e3,
            t_acted.as_secs_f64() * 1e3,
            t_report.elapsed().as_secs_f64() * 1e3
        );
        line
    }

    /// See [`act::recheck_held_writes`]; says when a hold ended.
    async fn recheck_held_writes(&mut self) {
        let served = act::recheck_held_writes(&mut self.world, &mut self.mem).await;
        if !served.is_empty() {
            tracing::info!("redis serves writes again on {}", served.join(", "));
        }
    }

    /// What keeps the fleet from working as it should, as an error once while it stands (and
    /// once more when it ends): a host name two agents write under, heartbeats that cannot be
    /// read. Neither turns the fleet off in silence.
    fn log_fleet(&mut self, d: &Decision, snap: &crate::model::Snapshot) {
        if !self.cfg.fleet.enabled {
            return;
        }
        let shared = d.fleet.iter().filter(|h| h.shared).map(|h| {
            format!(
                "host name {} is written by two agents (a cloned machine?): nothing is taken from its consumers; give each machine its own host name",
                printable(&h.host)
            )
        });
        let unread = snap
            .redis
            .as_ref()
            .ok()
            .and_then(|r| r.fleet.as_ref()?.as_ref().err())
            .map(|e| format!("the fleet's heartbeats cannot be read: {e}: other hosts cannot be judged, nor this one by them, until it is fixed"));
        let now: BTreeSet<String> = shared.chain(unread).collect();
        for line in now.difference(&self.fleet_alarms) {
            tracing::error!(action = "fleet-alarm", "{line}");
        }
        for line in self.fleet_alarms.difference(&now) {
            tracing::info!(action = "fleet-alarm-ended", "no longer: {line}");
        }
        self.fleet_alarms = now;
    }

    /// Each held action and each note that does not count, logged once while it stands.
    fn log_held(&mut self, d: &Decision, errors: &[String]) {
        let lines: BTreeSet<String> = d
            .held
            .iter()
            .map(journal::held_line)
            .chain(errors.iter().cloned())
            .collect();
        for line in lines.difference(&self.held) {
            match d.held.iter().find(|h| *line == journal::held_line(h)) {
                Some(h) => tracing::info!(
                    unit = h.action.unit().unwrap_or_default(),
                    action = "held",
                    reason = h.action.reason(),
                    "{}",
                    printable(line)
                ),
                None => tracing::warn!(action = "pause-note", "{}", printable(line)),
            }
        }
        self.held = lines;
    }

    /// Observe mode: each proposal logged once while it stands.
    fn log_would(&mut self, d: &Decision) {
        let proposed: BTreeSet<String> = d.actions.iter().map(journal::describe).collect();
        self.would.retain(|w| proposed.contains(w));
        if self.cfg.mode == Mode::Observe {
            for a in &d.actions {
                if self.would.insert(journal::describe(a)) {
                    log_action(a, Mode::Observe, "", true);
                }
            }
        }
    }

    /// Enforce mode: every action, and its outcome remembered for `status`.
    /// Restarts first; consumer actions until `deadline`, the rest on the next cycle (the
    /// policy proposes them again from a fresh look).
    async fn act(&mut self, d: &Decision, deadline: Instant) {
        let mode = self.cfg.mode;
        let actions = policy::to_execute(mode, &d.actions);
        let (restarts, others): (Vec<&Action>, Vec<&Action>) = actions
            .iter()
            .partition(|a| matches!(a, Action::Restart { .. }));
        // A unit no longer proposed for a restart is no longer held back.
        self.held_back
            .retain(|u| restarts.iter().any(|a| a.unit() == Some(u.as_str())));
        for (done, a) in restarts.into_iter().chain(others).enumerate() {
            if !matches!(a, Action::Restart { .. }) && Instant::now() >= deadline {
                tracing::debug!(
                    "cycle budget used: {} action(s) left for the next cycle",
                    actions.len() - done
                );
                break;
            }
            let mut x = Act {
                world: &mut self.world,
                mode,
                deadline,
                totals: &mut self.totals,
                metrics: Some(&self.metrics),
                mem: &mut self.mem,
                jobs: Some(&self.jobs),
                held_back: Some(&mut self.held_back),
            };
            let outcome = act::carry_out(&mut x, a, d).await;
            let key = a.unit().map(str::to_string).unwrap_or_else(|| {
                let (stream, group, _) = a.target();
                format!("{stream} {group}")
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
    }

    /// The textfile collector reads every 15 s or so: written at most every 10 s.
    fn write_textfile(&mut self) {
        let Some(dir) = &self.cfg.metrics.textfile_dir else {
            return;
        };
        if self
            .last_textfile
            .is_some_and(|t| t.elapsed() < TEXTFILE_EVERY)
        {
            return;
        }
        self.last_textfile = Some(Instant::now());
        let text = self.metrics.encode_textfile();
        if let Err(e) = state_file::write_atomically(&dir.join(AGENT_TEXTFILE), &text) {
            tracing::warn!("metrics.textfile_dir {}: {e}", dir.display());
        }
    }

    fn save(&mut self, last_cycle_ms: f64) {
        let st = AgentState {
            version: STATE_VERSION,
            boot_id: boot_id(),
            pid: std::process::id(),
            unit: self.world.self_unit().map(str::to_string),
            mode: self.cfg.mode,
            updated_usec: now_usec(),
            updated_mono_usec: mono_usec(),
            interval_ms: self.cfg.interval.as_millis(),
            cycles: self.cycles,
            last_cycle_ms,
            memory: self.mem.clone(),
            last_actions: self.last_actions.clone(),
            totals: self.totals.clone(),
            fleet_instance: self.mem.fleet.instance.clone(),
        };
        match state_file::save(&self.state_path, &st) {
            Ok(()) => {
                if self.save_error.take().is_some() {
                    tracing::info!("state file {} written again", self.state_path.display());
                }
            }
            Err(e) => self.save_failed(e.to_string()),
        }
    }

    /// Warns once per kind of failure, not every cycle.
    fn save_failed(&mut self, e: String) {
        if self.save_error.as_deref() != Some(e.as_str()) {
            tracing::warn!(
                "cannot write the state file {}: {e}; restart budgets and earlier MainPIDs will not survive an agent restart, and `status` cannot see this agent",
                self.state_path.display()
            );
        }
        self.save_error = Some(e);
    }
}
