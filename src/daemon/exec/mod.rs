//! `quantum-watchdog exec -- CMD…`: systemd's own watchdog for a consumer that cannot be
//! changed. We run the command as our child and are the unit's main process (`Type=notify`):
//! `READY=1` once the child's consumer is in its group, `WATCHDOG=1` after every look in which
//! the agent's policy finds the unit not hung, `WATCHDOG=trigger` once it is hung (held
//! `confirm` looks) — systemd then records `Result=watchdog`, sends `WatchdogSignal=` and
//! restarts per `Restart=`. Around the child's life, the recovery of the old hooks: its
//! predecessors' entries handed to it at start, its own empty consumer deleted at stop. Only
//! Redis is needed, no D-Bus: the unit is the one whose cgroup we run in, and a consumer's
//! PID is the unit's if it runs in that cgroup.

pub mod child;
mod crash;
mod look;
pub mod watch;

use std::ffi::OsString;
use std::time::{Duration, Instant};

use anyhow::Context;
use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};

use crate::adapters::cgroup;
use crate::adapters::clock::mono_usec;
use crate::adapters::notify;
use crate::config::{Config, Secrets};
use crate::model::exec_protocol::WrapperArgs;
use crate::policy::{self, Action, Decision, Memory};
use crate::report::state::Totals;

use super::act::{self, Act};
use super::gather::World;
use child::End;
use watch::{Say, Seen, Watch};

/// Until READY=1, the first look's successor comes this soon (and each gap doubles).
const FIRST_LOOK_AFTER: Duration = Duration::from_millis(10);

/// One wrapped run.
struct Exec {
    cfg: Config,
    unit: String,
    cgroup: Option<String>,
    world: World,
    mem: Memory,
    child: u32,
    /// When the child started (CLOCK_MONOTONIC µs): its unit's `ActiveEnterTimestampMonotonic`.
    started_mono_usec: u64,
    started: Instant,
    /// `READY=1` was sent.
    ready: bool,
    /// Where the watchdog stands ([`watch::step`] moves it).
    watch: Watch,
    /// The child ended: the last look sees its consumer as dead.
    ended: bool,
    /// When a stop signal (SIGTERM, SIGINT) was last forwarded: for `--stop-timeout` after it
    /// the child drains (no trigger, no handoff to it); one still there after that is watched
    /// again.
    stop_asked: Option<Instant>,
    /// Between looks: `interval`, at most half of `WatchdogSec=`; also a look's time limit.
    every: Duration,
    /// What `exec` was asked: `--unit` (else the unit whose cgroup we run in),
    /// `--ready-timeout`, `--stop-timeout` (the child drains this long unwatched after a stop
    /// signal: the unit's TimeoutStopSec=), `--user`, the command.
    opts: WrapperArgs,
}

/// Our signal handlers: SIGCHLD, and those forwarded to the child.
struct Signals {
    chld: tokio::signal::unix::Signal,
    fwd: Vec<(Signal, tokio::signal::unix::Signal)>,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        let mut fwd = Vec::new();
        for s in child::FORWARDED {
            fwd.push((
                s,
                signal(SignalKind::from_raw(s as i32)).context("signals")?,
            ));
        }
        Ok(Signals {
            chld: signal(SignalKind::child()).context("SIGCHLD")?,
            fwd,
        })
    }
}

/// The unit we run for: `--unit`, else the one our cgroup names.
fn our_unit(o: &WrapperArgs) -> anyhow::Result<String> {
    if let Some(u) = &o.unit {
        return Ok(u.clone());
    }
    cgroup::own_cgroup()
        .as_deref()
        .and_then(cgroup::unit_of_cgroup)
        .context("not started as a systemd unit (no unit in /proc/self/cgroup): pass --unit")
}

/// Runs the command under watch until it ends, then ends as it did. Returns only on an error
/// before the command started.
pub async fn run(cfg: &Config, secrets: &Secrets, opts: WrapperArgs) -> anyhow::Result<u8> {
    let unit = our_unit(&opts)?;
    let cfg = super::sweep::narrowed(cfg, std::slice::from_ref(&unit));
    let world = World::new(&cfg, opts.user, secrets).context("redis configuration")?;
    // The handlers exist before the child does: a signal in between is forwarded, not fatal.
    let mut signals = Signals::new()?;
    let child = child::spawn(&opts.command).with_context(|| {
        format!(
            "cannot run {:?}",
            opts.command.first().unwrap_or(&OsString::new())
        )
    })?;
    tracing::info!(
        unit = unit.as_str(),
        "{unit}: running {:?} as PID {child} under watch ({} binding(s), mode {})",
        opts.command,
        cfg.watch.len(),
        cfg.mode
    );
    if notify::watchdog_interval().is_none() {
        tracing::warn!(
            unit = unit.as_str(),
            "WatchdogSec= is not set for {unit}: a hang still triggers systemd's watchdog action, but a wrapper that stops looking is not caught"
        );
    }
    let every = match notify::watchdog_interval() {
        Some(w) => cfg.interval.0.min(w / 2),
        None => cfg.interval.0,
    }
    .max(Duration::from_millis(100));
    let mut x = Exec {
        cgroup: cgroup::own_cgroup().and_then(|c| cgroup::unit_root(&c)),
        cfg,
        unit,
        world,
        mem: Memory::default(),
        child,
        started_mono_usec: mono_usec(),
        started: Instant::now(),
        ready: false,
        watch: Watch::Pinging,
        ended: false,
        stop_asked: None,
        every,
        opts,
    };
    let end = x.supervise(&mut signals).await;
    x.at_stop(end).await;
    child::mirror(end)
}

impl Exec {
    /// Looks every `every`, forwards signals, reaps; returns when the child ended. A look that
    /// takes longer than `every` is cut short, and the ping goes on: Redis being slow is not
    /// the child being hung.
    async fn supervise(&mut self, sig: &mut Signals) -> End {
        let mut next = tokio::time::Instant::now();
        let mut early = FIRST_LOOK_AFTER;
        loop {
            // The child may have ended before SIGCHLD was looked at.
            if let Some(end) = child::reap(self.child) {
                return end;
            }
            let forwarded = async {
                let waits = sig.fwd.iter_mut().map(|(s, st)| {
                    Box::pin(async move {
                        st.recv().await;
                        *s
                    })
                });
                futures_util::future::select_all(waits).await.0
            };
            tokio::select! {
                _ = sig.chld.recv() => {}
                s = forwarded => self.on_signal(s),
                _ = tokio::time::sleep_until(next) => {
                    let began = tokio::time::Instant::now();
                    if tokio::time::timeout(self.every, self.cycle()).await.is_err() {
                        self.blind(&format!("a look took over {:?}", self.every));
                    }
                    next = began + self.until_next_look(&mut early);
                }
            }
        }
    }

    /// `every`, once ready; until then looks follow each other at 10 ms, 20 ms, 40 ms, …
    /// (at most `every`), so that READY=1 follows the consumer's registration closely.
    fn until_next_look(&self, early: &mut Duration) -> Duration {
        if self.ready {
            return self.every;
        }
        let gap = (*early).min(self.every);
        *early = gap * 2;
        gap
    }

    fn on_signal(&mut self, s: Signal) {
        tracing::debug!("{}: forwarding {s} to PID {}", self.unit, self.child);
        if child::is_stop(s) {
            self.stop_asked = Some(Instant::now());
        }
        child::forward(self.child, s);
    }

    /// Whether the child is within `--stop-timeout` of its last stop signal. systemd honours
    /// `WATCHDOG=trigger` while it stops a unit: a trigger within the unit's own
    /// `TimeoutStopSec=` would abort a drain systemd allows.
    fn draining(&self) -> bool {
        self.stop_asked
            .is_some_and(|t| t.elapsed() < self.opts.stop_timeout)
    }

    /// Nothing could be seen: ping on (nothing is decided on what cannot be seen), and say so.
    fn blind(&mut self, why: &str) {
        self.ping(Seen::Blind, None);
        let prefix = crate::model::exec_protocol::status_prefix(self.cfg.mode);
        notify::status(&format!("{prefix} {why}; watchdog pings go on"));
    }

    /// One look: the policy's verdict decides the ping, its consumer actions are carried out.
    async fn cycle(&mut self) {
        if self.draining() {
            return self.blind("stopping: the child drains");
        }
        act::recheck_held_writes(&mut self.world, &mut self.mem).await;
        let snap = look::snapshot(self).await;
        let redis_error = snap.redis.as_ref().err().map(ToString::to_string);
        let d = policy::decide(&self.cfg, &snap, &mut self.mem);
        self.readiness(&d);
        self.watchdog(&d).await;
        if redis_error.is_none() {
            self.consumer_actions(&d).await;
        }
        notify::status(&look::status_line(
            look::ours(&d, &self.unit),
            self.cfg.mode,
            redis_error.as_deref(),
        ));
    }

    /// `READY=1` once every binding's consumer is in its group, or at `ready_timeout`.
    fn readiness(&mut self, d: &Decision) {
        if self.ready {
            return;
        }
        let seen = match look::ours(d, &self.unit) {
            Some(u) => !u.bindings.is_empty() && u.bindings.iter().all(|b| b.consumer_present),
            None => true,
        };
        let late = self.started.elapsed() >= self.opts.ready_timeout;
        if !seen && !late {
            return;
        }
        if !seen {
            tracing::warn!(
                unit = self.unit.as_str(),
                "{}: consumer not seen in its group after {:?}; ready anyway (before Redis 7.2 a reader of a quiet stream is listed only once served an entry)",
                self.unit,
                self.opts.ready_timeout
            );
        }
        self.ready = true;
        notify::ready();
    }

    /// `WATCHDOG=1` unless the policy would restart the unit; then, once, `WATCHDOG=trigger`
    /// (enforce mode) with the evidence in the journal. A pause holds the trigger back (the
    /// policy then proposes no restart), and so does a Redis that serves no writes: no
    /// consumer can read then (a `CLIENT PAUSE`, a failover), and a restart would not help.
    async fn watchdog(&mut self, d: &Decision) {
        let hung = d
            .actions
            .iter()
            .find(|a| matches!(a, Action::Restart { .. }) && a.unit() == Some(self.unit.as_str()));
        let Some(a) = hung else {
            return self.ping(Seen::NotHung, None);
        };
        let mut writes_held = None;
        if watch::needs_write_probe(self.watch, self.cfg.mode) {
            let streams: Vec<String> = (self.cfg.watch.iter())
                .filter(|w| w.unit == self.unit)
                .map(|w| w.stream.clone())
                .collect();
            writes_held = act::probe_writes(&mut self.world, &mut self.mem, &streams).await;
        }
        let seen = Seen::Hung {
            writes_held: writes_held.is_some(),
        };
        self.ping(seen, Some((a, d, writes_held.as_deref())));
    }

    /// One step of the watchdog ([`watch::step`]): sends its ping and logs what it says.
    fn ping(&mut self, seen: Seen, hung: Option<(&Action, &Decision, Option<&str>)>) {
        let s = watch::step(self.watch, self.cfg.mode, seen);
        self.watch = s.next;
        if let (Some(say), Some((a, d, held))) = (s.say, hung) {
            self.say(say, a, d, held.unwrap_or(""));
        }
        match s.ping {
            watch::Ping::None => {}
            watch::Ping::Alive => notify::watchdog(),
            watch::Ping::Trigger => notify::watchdog_trigger(),
        }
    }

    /// The journal line of a watchdog step.
    fn say(&self, say: Say, a: &Action, d: &Decision, held: &str) {
        let (unit, why) = (self.unit.as_str(), a.reason());
        match say {
            Say::Would => tracing::warn!(
                unit,
                action = "would-watchdog-trigger",
                reason = why,
                "would trigger systemd's watchdog for {unit}: {why}"
            ),
            Say::Held => tracing::warn!(
                unit,
                action = "restart-held",
                "not triggering systemd's watchdog for {unit} yet: {held}"
            ),
            Say::Trigger => {
                let evidence = look::evidence(d, unit);
                tracing::warn!(
                    unit,
                    action = "watchdog-trigger",
                    reason = why,
                    evidence = evidence.as_str(),
                    "triggering systemd's watchdog for {unit}: {why} [{evidence}]"
                )
            }
        }
    }

    /// The consumer actions of our unit's bindings (enforce mode; logged in observe mode).
    async fn consumer_actions(&mut self, d: &Decision) {
        let units = std::slice::from_ref(&self.unit);
        let actions = super::sweep::select(&self.cfg, d.actions.clone(), units);
        self.carry_out(&actions, self.every.mul_f32(0.5)).await;
    }

    /// Carries out consumer actions as the agent does, until `within` has passed: no metrics
    /// and no restart jobs (systemd's watchdog restarts the unit).
    async fn carry_out(&mut self, actions: &[Action], within: Duration) {
        let mut totals = Totals::default();
        let mut x = Act {
            world: &mut self.world,
            mode: self.cfg.mode,
            deadline: Instant::now() + within,
            totals: &mut totals,
            metrics: None,
            mem: &mut self.mem,
            jobs: None,
            held_back: None,
        };
        for a in actions {
            if Instant::now() >= x.deadline {
                break;
            }
            act::consumer_action(&mut x, a).await;
        }
    }

    /// The child ended: one last look with it gone, so its consumer is deleted if it holds
    /// nothing (else left to its successor's handoff, or parked per `claim_policy`).
    async fn at_stop(&mut self, end: End) {
        tracing::info!(
            unit = self.unit.as_str(),
            "{}: PID {} {end}",
            self.unit,
            self.child
        );
        self.ended = true;
        let bound = self.cfg.redis.timeout.0 * 3;
        if tokio::time::timeout(bound, self.note_death(end))
            .await
            .is_err()
        {
            tracing::warn!("{}: noting the death took over {bound:?}; left", self.unit);
        }
        let last = async {
            let snap = look::snapshot(self).await;
            if snap.redis.is_ok() {
                let d = policy::decide(&self.cfg, &snap, &mut self.mem);
                self.consumer_actions(&d).await;
            }
        };
        if tokio::time::timeout(bound, last).await.is_err() {
            tracing::warn!(
                "{}: the last look at stop took over {bound:?}; left",
                self.unit
            );
        }
    }
}
