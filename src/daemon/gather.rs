//! Gather: one [`Snapshot`] from the adapters — systemd (a list call when signals say so,
//! signal-driven reads), Redis (the policy's plan, one pipelined round trip), PID probes and
//! the units live PIDs run in. Keeps the connections between cycles and reconnects with
//! backoff; an unreachable side becomes an `Err` in the snapshot, never a reason to act.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use jiff::tz::TimeZone;

use crate::adapters::cgroup;
use crate::adapters::clock::{hostname, mono_usec, now_usec, utc_offset_secs};
use crate::adapters::liveness::pid_alive;
use crate::adapters::pause_store;
use crate::adapters::redis::{ClientError, RedisClient};
use crate::adapters::systemd::{Systemd, SystemdError};
use crate::config::{Config, Secrets};
use crate::model::holds::Holds;
use crate::model::{Clock, Snapshot, UnitState};
use crate::policy::{self, Memory};

/// The adapters one process keeps between looks.
pub struct World {
    /// `--user`: the calling user's manager on the session bus.
    pub user: bool,
    /// systemd, once connected.
    pub systemd: Option<Systemd>,
    /// Redis.
    pub streams: RedisClient,
    hostname: String,
    dbus_timeout: Duration,
    next_dbus_attempt: Option<Instant>,
    dbus_backoff: Duration,
    self_unit: Option<String>,
    /// Keep unit state current by signals (the agent), or look once (status, recover).
    watch: bool,
}

impl World {
    /// Never fails for an unreachable bus or server; only for a configuration it cannot use.
    pub fn new(cfg: &Config, user: bool, secrets: &Secrets) -> Result<World, ClientError> {
        Ok(World {
            user,
            systemd: None,
            streams: RedisClient::new(&cfg.redis, secrets)?,
            hostname: hostname(),
            dbus_timeout: cfg.dbus_timeout.0,
            next_dbus_attempt: None,
            dbus_backoff: Duration::ZERO,
            self_unit: None,
            watch: true,
        })
    }

    /// For one look (`status`, `recover`): no signal subscription.
    pub fn oneshot(mut self) -> World {
        self.watch = false;
        self
    }

    /// This host's name.
    pub fn hostname(&self) -> &str {
        &self.hostname
    }

    /// The unit this process runs in, if systemd knows it.
    pub fn self_unit(&self) -> Option<&str> {
        self.self_unit.as_deref()
    }

    async fn systemd(&mut self) -> Result<&Systemd, SystemdError> {
        if self.systemd.is_none() {
            if let Some(t) = self.next_dbus_attempt
                && Instant::now() < t
            {
                return Err(SystemdError::Unreachable("reconnecting to D-Bus".into()));
            }
            match Systemd::connect_with(self.user, self.dbus_timeout, self.watch).await {
                Ok(s) => {
                    self.self_unit = s.self_unit().map(str::to_string);
                    self.systemd = Some(s);
                    self.dbus_backoff = Duration::ZERO;
                    self.next_dbus_attempt = None;
                }
                Err(e) => {
                    self.dbus_backoff = (self.dbus_backoff * 2)
                        .clamp(Duration::from_millis(500), Duration::from_secs(30));
                    self.next_dbus_attempt = Some(Instant::now() + self.dbus_backoff);
                    return Err(e);
                }
            }
        }
        Ok(self.systemd.as_ref().expect("connected above"))
    }

    /// Drops the D-Bus connection after a fatal error, so the next cycle reconnects.
    pub fn systemd_failed(&mut self, e: &SystemdError) {
        if e.is_fatal() {
            self.systemd = None;
        }
    }

    /// One look: units from the seat, then what the policy's plan asks of Redis, then the
    /// liveness of the PIDs in consumer names and the units the live ones run in.
    pub async fn snapshot(&mut self, cfg: &Config, mem: &Memory) -> Snapshot {
        self.look(cfg, mem, &Seat::Systemd).await
    }

    /// The one look of every command; `seat` is what differs between them.
    pub async fn look(&mut self, cfg: &Config, mem: &Memory, seat: &Seat) -> Snapshot {
        let t0 = Instant::now();
        let units = self.units(cfg, mem, seat).await;
        let t_units = t0.elapsed();
        let clock = Clock {
            now_usec: now_usec(),
            mono_usec: mono_usec(),
            utc_offset_secs: utc_offset_secs(),
        };
        let listed = units.as_deref().unwrap_or(&[]);
        let plan = policy::plan(cfg, &self.hostname, listed, mem, clock);
        let t1 = Instant::now();
        let redis = self.streams.snapshot(&plan).await;
        let t_redis = t1.elapsed();
        let t2 = Instant::now();
        let (mut live_pids, mut pid_units) = (BTreeMap::new(), BTreeMap::new());
        if let Ok(r) = &redis {
            let probe = policy::pids_to_probe(cfg, &self.hostname, r, listed);
            for &pid in &probe {
                if let Some(alive) = pid_alive(pid) {
                    live_pids.insert(pid, alive);
                }
            }
            let locate = policy::pids_to_locate(&probe, &live_pids);
            pid_units = self.locate(seat, locate).await;
        }
        tracing::debug!(
            "snapshot: units {:.2} ms, redis {:.2} ms ({}), PIDs {:.2} ms ({} probed, {} located)",
            t_units.as_secs_f64() * 1e3,
            t_redis.as_secs_f64() * 1e3,
            if redis.is_ok() { "read" } else { "not read" },
            t2.elapsed().as_secs_f64() * 1e3,
            live_pids.len(),
            pid_units.len(),
        );
        Snapshot {
            now_usec: clock.now_usec,
            mono_usec: clock.mono_usec,
            hostname: self.hostname.clone(),
            self_unit: matches!(seat, Seat::Systemd)
                .then(|| self.self_unit.clone())
                .flatten(),
            units: units.map_err(Into::into),
            redis: redis.map_err(Into::into),
            live_pids,
            pid_units,
            utc_offset_secs: clock.utc_offset_secs,
            holds: read_holds(cfg, self.user, clock.now_usec),
        }
    }

    /// The units of the look: systemd's (those in question read in full), or the wrapper's one.
    async fn units(
        &mut self,
        cfg: &Config,
        mem: &Memory,
        seat: &Seat,
    ) -> Result<Vec<UnitState>, SystemdError> {
        if let Seat::Wrapper { unit, .. } = seat {
            return Ok(vec![UnitState::clone(unit)]);
        }
        let patterns = cfg.unit_patterns();
        let bound: Vec<String> = cfg.watch.iter().map(|w| w.unit.clone()).collect();
        let units = match self.systemd().await {
            Ok(s) => {
                s.units(&patterns, &bound, &policy::units_in_question(mem))
                    .await
            }
            Err(e) => Err(e),
        };
        if let Err(e) = &units {
            self.systemd_failed(e);
        }
        units
    }

    /// The units live PIDs run in: systemd's `GetUnitByPID`, or, for the wrapper, their cgroups.
    async fn locate(&self, seat: &Seat, pids: BTreeSet<u32>) -> BTreeMap<u32, Option<String>> {
        match seat {
            Seat::Systemd if pids.is_empty() => BTreeMap::new(),
            Seat::Systemd => match &self.systemd {
                Some(sd) => sd.units_of_pids(pids).await,
                None => BTreeMap::new(),
            },
            Seat::Wrapper { unit, cgroup } => pids
                .into_iter()
                .filter_map(|p| Some((p, wrapped_unit_of_pid(&unit.name, cgroup.as_deref(), p)?)))
                .collect(),
        }
    }
}

/// Where a look's units come from and how its PIDs are located — the one thing that differs
/// between the agent, `status`, `recover` (systemd over D-Bus) and `exec` (no D-Bus).
pub enum Seat {
    /// systemd over D-Bus.
    Systemd,
    /// `exec`: its own unit as it knows it (it is the unit's main process), PIDs located by
    /// their cgroups against its own (`None`: the root).
    Wrapper {
        /// The unit, as systemd would show it.
        unit: Box<UnitState>,
        /// The unit's cgroup.
        cgroup: Option<String>,
    },
}

/// The unit `pid` runs in, as GetUnitByPID would say it: `unit` if it runs in its cgroup, else
/// the unit its cgroup names (a sibling unit sharing the template: its consumer lives), else
/// none (a reused PID). `None` when `/proc` does not tell.
fn wrapped_unit_of_pid(unit: &str, ours: Option<&str>, pid: u32) -> Option<Option<String>> {
    let theirs = cgroup::cgroup_of(pid)?;
    if cgroup::is_within(&theirs, ours.unwrap_or("/")) {
        return Some(Some(unit.to_string()));
    }
    Some(cgroup::unit_of_cgroup(&theirs))
}

/// The operators' pauses and budget resets from the pause directory, and the maintenance
/// windows open at `now` (a window's own zone, else local time).
pub fn read_holds(cfg: &Config, user: bool, now: u64) -> Holds {
    let mut h = Holds::default();
    pause_store::read(cfg, user, &mut h);
    let zone = |name: Option<&str>| match name {
        None => Ok(TimeZone::system()),
        Some(n) => jiff::tz::db().get(n),
    };
    h.windows = policy::holds::open_windows(&cfg.window, now, zone, &mut h.errors);
    h
}
