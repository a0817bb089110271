//! The systemd adapter: the system manager on the system bus, or (`--user`) the calling user's
//! manager on the session bus.
//!
//! Unit state is kept current by signals: after `Subscribe()`, every `PropertiesChanged` of a
//! unit marks it dirty, and only dirty (or new) units have their properties read again.
//! `ListUnitsByPatterns` finds units that appeared or went away, and their jobs: it is called
//! again when a signal came since the last list (a unit's properties, or the manager's
//! `UnitNew`, `UnitRemoved`, `JobNew`, `JobRemoved`, `Reloading`), and at least every
//! [`RELIST_EVERY`]; a look in which nothing signalled reuses the last list.
//! Every call has a timeout.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use zbus::proxy::CacheProperties;
use zbus_systemd::systemd1::{ManagerProxy, ServiceProxy, UnitProxy};

use crate::model::exec_protocol::{is_exec_wrapper, wrapper_acts};
use crate::model::hash::{HashMap, HashSet};
use crate::model::{ActiveState, JobResult, LoadState, ReadError, UnitState};

/// Why a systemd call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SystemdError {
    /// The bus cannot be reached or the connection was lost.
    #[error("D-Bus unreachable: {0}")]
    Unreachable(String),
    /// A call took longer than its timeout.
    #[error("D-Bus call timed out after {0:?}")]
    Timeout(Duration),
    /// polkit (or the bus policy) refused.
    #[error("access denied: {0}")]
    Denied(String),
    /// systemd answered with an error.
    #[error("{0}")]
    Call(String),
}

impl From<SystemdError> for ReadError {
    fn from(e: SystemdError) -> ReadError {
        let m = e.to_string();
        match e {
            SystemdError::Unreachable(_) => ReadError::Unreachable(m),
            SystemdError::Timeout(_) => ReadError::Timeout(m),
            SystemdError::Denied(_) => ReadError::Denied(m),
            SystemdError::Call(_) => ReadError::Server(m),
        }
    }
}

impl SystemdError {
    /// The connection is unusable; reconnect.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            SystemdError::Unreachable(_) | SystemdError::Timeout(_)
        )
    }
}

fn call_error(e: zbus::Error) -> SystemdError {
    let s = e.to_string();
    match &e {
        zbus::Error::InputOutput(_) | zbus::Error::Handshake(_) | zbus::Error::Address(_) => {
            SystemdError::Unreachable(s)
        }
        zbus::Error::MethodError(name, _, _)
            if name.as_str().ends_with("AccessDenied")
                || name.as_str().ends_with("InteractiveAuthorizationRequired") =>
        {
            SystemdError::Denied(s)
        }
        zbus::Error::FDO(f)
            if matches!(
                **f,
                zbus::fdo::Error::AccessDenied(_)
                    | zbus::fdo::Error::InteractiveAuthorizationRequired(_)
            ) =>
        {
            SystemdError::Denied(s)
        }
        _ => SystemdError::Call(s),
    }
}

async fn within<T>(
    t: Duration,
    f: impl std::future::Future<Output = zbus::Result<T>>,
) -> Result<T, SystemdError> {
    match tokio::time::timeout(t, f).await {
        Ok(r) => r.map_err(call_error),
        Err(_) => Err(SystemdError::Timeout(t)),
    }
}

/// One row of `ListUnitsByPatterns` as the reply has it: name, description, load, active and
/// sub state, followed unit, object path, job ID, job type, job path.
type ListedRow<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    zbus::ObjectPath<'a>,
    u32,
    &'a str,
    zbus::ObjectPath<'a>,
);

/// Whether a row says of its unit what the last list said.
fn same_row((row, l): (&ListedRow<'_>, &Listed)) -> bool {
    let (name, _, load, active, sub, _, path, job_id, job_type, _) = row;
    *name == l.name
        && *load == l.load
        && *active == l.active
        && *sub == l.sub
        && path.as_str() == l.path
        && l.job.as_deref() == (*job_id != 0).then_some(*job_type)
}

impl Listed {
    fn from_row(row: &ListedRow<'_>) -> Listed {
        let (name, _, load, active, sub, _, path, job_id, job_type, _) = row;
        Listed {
            name: name.to_string(),
            load: load.to_string(),
            active: active.to_string(),
            sub: sub.to_string(),
            path: path.to_string(),
            job: (*job_id != 0).then(|| job_type.to_string()),
        }
    }
}

/// Forgets what the cache holds of units not in `listed`: their state, and their
/// `PropertiesChanged` marks. Every unit of the manager signals (sessions, timers, transient
/// units), so the marks would otherwise grow for as long as the agent runs; a unit not
/// listed now is read afresh when it is.
fn forget_unlisted(cache: &mut Cache, listed: &[Listed]) {
    let names: HashSet<&str> = listed.iter().map(|u| u.name.as_str()).collect();
    cache.units.retain(|n, _| names.contains(n.as_str()));
    if !cache.dirty.is_empty() {
        let paths: HashSet<&str> = listed.iter().map(|u| u.path.as_str()).collect();
        cache.dirty.retain(|p| paths.contains(p.as_str()));
    }
}

/// One unit of `ListUnitsByPatterns`: what the list says of it.
#[derive(Clone)]
struct Listed {
    name: String,
    load: String,
    active: String,
    sub: String,
    path: String,
    /// The type of the unit's job, if one is queued or running.
    job: Option<String>,
}

#[derive(Default)]
struct Cache {
    units: HashMap<String, (UnitState, String)>,
    /// Object paths that changed since they were last read.
    dirty: HashSet<String>,
    /// The signal stream ended: the connection is gone.
    lost: bool,
    /// `NeedDaemonReload` as last read, by unit.
    need_reload: HashMap<String, bool>,
    /// Where the next look's turn of `NeedDaemonReload` reads starts.
    reload_turn: usize,
    /// Signals received so far (any unit's properties, any manager signal).
    signals: u64,
    /// The last list (shared with the look that uses it), and the count of signals before
    /// it was asked for.
    last: Option<LastList>,
}

/// A `ListUnitsByPatterns` answer kept for the looks in which nothing signalled.
struct LastList {
    patterns: Vec<String>,
    signals: u64,
    at: Instant,
    units: Arc<Vec<Listed>>,
}

/// The list is asked for again at least this often, signals or not.
pub const RELIST_EVERY: Duration = Duration::from_secs(30);

/// Bound units whose `NeedDaemonReload` a look reads besides the urgent ones (a call of
/// about 0.2 ms each): up to 8 bound units, all every look; with 1 000, each every 125 looks.
/// A unit whose verdict is on its way to a restart is urgent, read every look: a changed unit
/// file holds it back at once; a healthy unit's is noticed within the rotation.
pub const NEED_RELOAD_PER_LOOK: usize = 8;

/// Calls in flight at once. systemd answers one call after another, so more in flight is
/// no faster: it only holds more futures and replies in memory at once (a first look at
/// 1 000 units had 9 000 in flight).
pub const CALLS_AT_ONCE: usize = 256;

/// Units whose properties are read at the same time (up to eight calls each).
pub const UNITS_READ_AT_ONCE: usize = CALLS_AT_ONCE / 8;

/// A connection to one systemd manager.
pub struct Systemd {
    conn: zbus::Connection,
    mgr: ManagerProxy<'static>,
    timeout: Duration,
    cache: Arc<Mutex<Cache>>,
    listener: tokio::task::JoinHandle<()>,
    self_unit: Option<String>,
    /// Signals keep the cache current; without them every unit is read afresh.
    watch: bool,
}

impl Drop for Systemd {
    fn drop(&mut self) {
        self.listener.abort();
    }
}

impl Systemd {
    /// Connects for a long-running watch: subscribes to unit signals and finds our own unit.
    pub async fn connect(user: bool, timeout: Duration) -> Result<Systemd, SystemdError> {
        Self::connect_with(user, timeout, true).await
    }

    /// `watch = false` for one look (`status`, `recover`): no signal subscription, no own-unit
    /// lookup, every unit read afresh.
    pub async fn connect_with(
        user: bool,
        timeout: Duration,
        watch: bool,
    ) -> Result<Systemd, SystemdError> {
        let bus = async {
            if user {
                zbus::Connection::session().await
            } else {
                zbus::Connection::system().await
            }
        };
        let conn = match tokio::time::timeout(timeout, bus).await {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(SystemdError::Unreachable(e.to_string())),
            Err(_) => return Err(SystemdError::Timeout(timeout)),
        };
        let mgr = within(timeout, ManagerProxy::new(&conn)).await?;
        let cache = Arc::new(Mutex::new(Cache::default()));
        let mut sd = Systemd {
            listener: tokio::spawn(async {}),
            conn,
            mgr,
            timeout,
            cache,
            self_unit: None,
            watch,
        };
        if watch {
            sd.listener = sd.listen().await?;
            sd.self_unit = sd.own_unit().await;
        }
        Ok(sd)
    }

    /// Subscribes to unit and manager signals: every `PropertiesChanged` marks its unit
    /// dirty, and any signal makes the next look list the units again.
    async fn listen(&self) -> Result<tokio::task::JoinHandle<()>, SystemdError> {
        // Signals flow only after Subscribe(); add our match rules first so nothing is missed.
        let signal = || {
            zbus::MatchRule::builder()
                .msg_type(zbus::message::Type::Signal)
                .sender("org.freedesktop.systemd1")
        };
        let units = signal()
            .interface("org.freedesktop.DBus.Properties")
            .member("PropertiesChanged")
            .path_namespace("/org/freedesktop/systemd1/unit")
            .build();
        let manager = signal()
            .interface("org.freedesktop.systemd1.Manager")
            .path("/org/freedesktop/systemd1")
            .build();
        let rule = |r: zbus::Result<zbus::MatchRule<'static>>| {
            r.map_err(|e| SystemdError::Call(e.to_string()))
        };
        let stream_of = |r| zbus::MessageStream::for_match_rule(r, &self.conn, None);
        let units = within(self.timeout, stream_of(rule(units)?)).await?;
        let manager = within(self.timeout, stream_of(rule(manager)?)).await?;
        within(self.timeout, self.mgr.subscribe()).await?;
        let mut stream = futures_util::stream::select(units, manager);
        let cache = self.cache.clone();
        Ok(tokio::spawn(async move {
            while let Some(msg) = stream.next().await {
                let Ok(m) = msg else { continue };
                let h = m.header();
                let mut c = cache.lock().unwrap();
                c.signals += 1;
                if h.interface()
                    .is_some_and(|i| i == "org.freedesktop.DBus.Properties")
                    && let Some(p) = h.path()
                {
                    c.dirty.insert(p.to_string());
                }
            }
            cache.lock().unwrap().lost = true;
        }))
    }

    /// Our own unit, so that we never act on it.
    async fn own_unit(&self) -> Option<String> {
        let path = within(self.timeout, self.mgr.get_unit_by_pid(std::process::id()))
            .await
            .ok()?;
        let u = unit_proxy(&self.conn, path.to_string()).await.ok()?;
        within(self.timeout, u.id()).await.ok()
    }

    /// The unit this process runs in, if systemd knows it.
    pub fn self_unit(&self) -> Option<&str> {
        self.self_unit.as_deref()
    }

    /// The units matching `patterns`, plus each of `bound` (reported as not-found or inactive
    /// when systemd has not loaded it).
    /// `urgent`: bound units whose `NeedDaemonReload` must be read this look (the policy's
    /// units in question); the others' is read in turn (see [`NEED_RELOAD_PER_LOOK`]).
    pub async fn units(
        &self,
        patterns: &[String],
        bound: &[String],
        urgent: &[String],
    ) -> Result<Vec<UnitState>, SystemdError> {
        if self.cache.lock().unwrap().lost {
            return Err(SystemdError::Unreachable(
                "the bus connection was lost".into(),
            ));
        }
        let listed = self.list(patterns).await?;
        let (mut fresh, to_read) = self.select_stale(&listed);
        let changed: Vec<String> = to_read.iter().map(|l| l.name.clone()).collect();
        fresh.extend(self.read_all(to_read).await?);
        let urgent: HashSet<&str> = urgent.iter().chain(&changed).map(String::as_str).collect();
        self.read_need_reload(&mut fresh, bound, &urgent).await;
        let missing: Vec<String> = {
            let have: HashSet<&str> = fresh.iter().map(|u| u.name.as_str()).collect();
            bound
                .iter()
                .filter(|b| !have.contains(b.as_str()))
                .cloned()
                .collect()
        };
        fresh.extend(self.not_loaded(missing).await?);
        fresh.retain(|u| u.load_state != LoadState::NotFound);
        fresh.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(fresh)
    }

    /// The units `patterns` match: the last list if no signal came since it was asked for
    /// (and it is younger than [`RELIST_EVERY`]), else a new one. Without signals, always new.
    async fn list(&self, patterns: &[String]) -> Result<Arc<Vec<Listed>>, SystemdError> {
        let (signals, last) = {
            let c = self.cache.lock().unwrap();
            let last = c.last.as_ref().filter(|l| l.patterns == patterns);
            if let Some(l) = last
                .filter(|l| self.watch && l.signals == c.signals && l.at.elapsed() < RELIST_EVERY)
            {
                tracing::debug!("units: no signal since the last list; reused");
                return Ok(l.units.clone());
            }
            (c.signals, last.map(|l| Arc::clone(&l.units)))
        };
        let at = Instant::now();
        let reply = within(
            self.timeout,
            self.mgr
                .inner()
                .call_method("ListUnitsByPatterns", &(Vec::<&str>::new(), patterns)),
        )
        .await?;
        let body = reply.body();
        // Read in place: the rows are copied only when the list is not the last one.
        let rows: Vec<ListedRow<'_>> = body.deserialize().map_err(call_error)?;
        let listed = match last {
            Some(last)
                if last.len() == rows.len() && rows.iter().zip(last.iter()).all(same_row) =>
            {
                last
            }
            _ => Arc::new(rows.iter().map(Listed::from_row).collect()),
        };
        self.cache.lock().unwrap().last = Some(LastList {
            patterns: patterns.to_vec(),
            signals,
            at,
            units: Arc::clone(&listed),
        });
        Ok(listed)
    }

    /// Splits the listed units into those the cache holds current and those to read again:
    /// new ones, changed ones (a `PropertiesChanged`, or a state the list shows differently),
    /// and every one when no signals keep the cache.
    fn select_stale(&self, listed: &[Listed]) -> (Vec<UnitState>, Vec<Listed>) {
        let mut cache = self.cache.lock().unwrap();
        forget_unlisted(&mut cache, listed);
        let (mut fresh, mut to_read) = (Vec::new(), Vec::new());
        for l in listed {
            let current = cache.units.get(&l.name).filter(|(u, _)| {
                self.watch
                    && !cache.dirty.contains(&l.path)
                    && u.active_state.as_str() == l.active
                    && u.sub_state == l.sub
            });
            match current {
                // The job comes from the list, fresh every cycle.
                Some((u, _)) => fresh.push(UnitState {
                    job: l.job.clone(),
                    ..u.clone()
                }),
                None => {
                    cache.dirty.remove(&l.path);
                    to_read.push(l.clone());
                }
            }
        }
        (fresh, to_read)
    }

    /// Reads the listed units' properties, [`UNITS_READ_AT_ONCE`] at a time, within one timeout.
    async fn read_all(&self, to_read: Vec<Listed>) -> Result<Vec<UnitState>, SystemdError> {
        let reads = futures_util::stream::iter(to_read)
            .map(|l| self.read_unit(l))
            .buffer_unordered(UNITS_READ_AT_ONCE)
            .collect::<Vec<_>>();
        let read = tokio::time::timeout(self.timeout, reads)
            .await
            .map_err(|_| SystemdError::Timeout(self.timeout))?;
        let mut cache = self.cache.lock().unwrap();
        let mut out = Vec::new();
        for r in read {
            let (u, path) = r?;
            cache.units.insert(u.name.clone(), (u.clone(), path));
            out.push(u);
        }
        Ok(out)
    }

    /// `NeedDaemonReload` of the bound units that are up. systemd signals no change of it, so
    /// it is read (one call a unit, [`CALLS_AT_ONCE`] at a time, all within one timeout): for
    /// the `urgent` ones (in question, or whose state just changed) and
    /// [`NEED_RELOAD_PER_LOOK`] others in turn — every one each look without signals
    /// (`status`, `recover`). The rest keep the value last read.
    async fn read_need_reload(
        &self,
        units: &mut [UnitState],
        bound: &[String],
        urgent: &HashSet<&str>,
    ) {
        let bound: HashSet<&str> = bound.iter().map(String::as_str).collect();
        let paths: Vec<(usize, String)> = {
            let mut cache = self.cache.lock().unwrap();
            let up: Vec<usize> = (0..units.len())
                .filter(|&i| {
                    let u = &units[i];
                    u.active_state.is_up()
                        && bound.contains(u.name.as_str())
                        && cache.units.contains_key(&u.name)
                })
                .collect();
            let n = up.len().max(1);
            let turn = cache.reload_turn % n;
            cache.reload_turn = turn + NEED_RELOAD_PER_LOOK;
            let in_turn = |k: usize| (k + n - turn) % n < NEED_RELOAD_PER_LOOK;
            // Only the paths of the units read this look are copied.
            up.into_iter()
                .enumerate()
                .filter(|&(k, i)| {
                    !self.watch || in_turn(k) || urgent.contains(units[i].name.as_str())
                })
                .filter_map(|(_, i)| cache.units.get(&units[i].name).map(|(_, p)| (i, p.clone())))
                .collect()
        };
        let reads = paths.into_iter().map(|(i, path)| async move {
            let unit = unit_proxy(&self.conn, path).await?;
            let need = within(self.timeout, unit.need_daemon_reload()).await?;
            Ok::<_, SystemdError>((i, need))
        });
        // One unit that cannot be asked (or not within the timeout, all of them together) is
        // taken as not changed; the rest of the look stands.
        let read = self.batch("NeedDaemonReload", reads.collect()).await;
        let mut cache = self.cache.lock().unwrap();
        for r in read {
            match r {
                Ok((i, need)) => {
                    cache.need_reload.insert(units[i].name.clone(), need);
                }
                Err(e) => tracing::debug!("NeedDaemonReload: {e}"),
            }
        }
        let names: HashSet<&str> = units.iter().map(|u| u.name.as_str()).collect();
        cache.need_reload.retain(|n, _| names.contains(n.as_str()));
        for u in units.iter_mut() {
            u.need_daemon_reload = u.active_state.is_up()
                && bound.contains(u.name.as_str())
                && cache.need_reload.get(&u.name).copied().unwrap_or(false);
        }
    }

    /// Bound units systemd has not loaded: a unit file may exist (stopped, unloaded) or not.
    async fn not_loaded(&self, missing: Vec<String>) -> Result<Vec<UnitState>, SystemdError> {
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        // An instance (`quantum-tpl@1.service`) has no file of its own: its template's counts.
        let mut patterns = missing.clone();
        patterns.extend(missing.iter().filter_map(|m| template_of(m)));
        let files = within(
            self.timeout,
            self.mgr.list_unit_files_by_patterns(vec![], patterns),
        )
        .await?;
        let known: BTreeSet<&str> = files
            .iter()
            .filter_map(|(path, _)| path.rsplit('/').next())
            .collect();
        let has_file = |m: &str| {
            known.contains(m) || template_of(m).is_some_and(|t| known.contains(t.as_str()))
        };
        Ok(missing
            .into_iter()
            .map(|m| UnitState {
                load_state: if has_file(&m) {
                    LoadState::Loaded
                } else {
                    LoadState::NotFound
                },
                name: m,
                active_state: ActiveState::Inactive,
                sub_state: "dead".into(),
                main_pid: 0,
                active_enter_mono_usec: 0,
                result: String::new(),
                job: None,
                n_restarts: 0,
                exit_status: String::new(),
                need_daemon_reload: false,
                exec_watchdog: false,
            })
            .collect())
    }

    /// A service's own properties, read in one concurrent batch, with its unit's
    /// `ActiveEnterTimestampMonotonic`.
    async fn read_service(
        &self,
        unit: &UnitProxy<'_>,
        path: &str,
    ) -> Result<(u64, ServiceRead), SystemdError> {
        let svc = ServiceProxy::builder(&self.conn)
            .path(path.to_owned())
            .cache_properties(CacheProperties::No)
            .build()
            .await
            .map_err(call_error)?;
        let t = self.timeout;
        let (a, m, r, n, code, status, text, start) = tokio::join!(
            within(t, unit.active_enter_timestamp_monotonic()),
            within(t, svc.main_pid()),
            within(t, svc.result()),
            within(t, svc.n_restarts()),
            within(t, svc.exec_main_code()),
            within(t, svc.exec_main_status()),
            within(t, svc.status_text()),
            within(t, svc.exec_start()),
        );
        // Wrapped, and the wrapper says it acts (`exec enforce:`): a wrapper in observe
        // mode triggers nothing, so the agent restarts as for any unit.
        let wrapped = start?
            .iter()
            .any(|(path, argv, ..)| is_exec_wrapper(path, argv));
        let acting = wrapper_acts(&text?);
        let read = ServiceRead {
            main_pid: m?,
            result: r?,
            n_restarts: n?,
            exit_status: exit_status(code?, status?),
            exec_watchdog: wrapped && acting,
        };
        Ok((a?, read))
    }

    async fn read_unit(&self, l: Listed) -> Result<(UnitState, String), SystemdError> {
        let Listed {
            name,
            load,
            active,
            sub,
            path,
            job,
        } = l;
        // The states come from the list call; the rest in one concurrent batch of reads. A
        // change in between marks the unit dirty again (PropertiesChanged) for the next cycle.
        let unit = unit_proxy(&self.conn, path.clone()).await?;
        let (active_enter, svc_state) = if name.ends_with(".service") {
            self.read_service(&unit, &path).await?
        } else {
            let t = within(self.timeout, unit.active_enter_timestamp_monotonic()).await?;
            (t, ServiceRead::default())
        };
        let (active_state, sub_state) = (active, sub);
        Ok((
            UnitState {
                name,
                load_state: load.as_str().into(),
                active_state: active_state.as_str().into(),
                sub_state,
                main_pid: svc_state.main_pid,
                active_enter_mono_usec: active_enter,
                result: svc_state.result,
                job,
                n_restarts: svc_state.n_restarts,
                exit_status: svc_state.exit_status,
                need_daemon_reload: false,
                exec_watchdog: svc_state.exec_watchdog,
            },
            path,
        ))
    }

    /// The unit a process runs in (`GetUnitByPID`): `None` if it runs in none.
    pub async fn unit_of_pid(&self, pid: u32) -> Result<Option<String>, SystemdError> {
        match tokio::time::timeout(self.timeout, self.mgr.get_unit_by_pid(pid)).await {
            Err(_) => Err(SystemdError::Timeout(self.timeout)),
            Ok(Ok(path)) => Ok(unit_name_of_path(path.as_str())),
            Ok(Err(zbus::Error::MethodError(name, _, _)))
                if name.as_str() == "org.freedesktop.systemd1.NoUnitForPID" =>
            {
                Ok(None)
            }
            Ok(Err(e)) => Err(call_error(e)),
        }
    }

    /// The units each of `pids` runs in; PIDs systemd could not be asked about (within one
    /// timeout for all) are left out.
    pub async fn units_of_pids(
        &self,
        pids: impl IntoIterator<Item = u32>,
    ) -> BTreeMap<u32, Option<String>> {
        let asks = pids
            .into_iter()
            .map(|p| async move { (p, self.unit_of_pid(p).await) });
        self.batch("GetUnitByPID", asks.collect())
            .await
            .into_iter()
            .filter_map(|(p, r)| r.ok().map(|u| (p, u)))
            .collect()
    }

    /// The answers of `calls` ([`CALLS_AT_ONCE`] in flight at a time) that come within one
    /// timeout for all of them; how many did not is said in a debug line.
    async fn batch<F: std::future::Future>(&self, what: &str, calls: Vec<F>) -> Vec<F::Output> {
        let asked = calls.len();
        let answers: Vec<_> = futures_util::stream::iter(calls)
            .buffer_unordered(CALLS_AT_ONCE)
            .take_until(tokio::time::sleep(self.timeout))
            .collect()
            .await;
        if answers.len() < asked {
            tracing::debug!(
                "{what}: {} of {asked} not answered within {:?}",
                asked - answers.len(),
                self.timeout
            );
        }
        answers
    }

    /// Issues `RestartUnit(unit, "replace")` and returns a task that waits (up to `job_timeout`)
    /// for the job's result (`done`, `failed`, `timeout`, …).
    pub async fn restart(
        &self,
        unit: &str,
        job_timeout: Duration,
    ) -> Result<tokio::task::JoinHandle<Result<JobResult, SystemdError>>, SystemdError> {
        // Subscribe to JobRemoved before the call, or a fast job's end could be missed.
        let mut removed = within(self.timeout, self.mgr.receive_job_removed()).await?;
        let job = within(
            self.timeout,
            self.mgr.restart_unit(unit.to_string(), "replace".into()),
        )
        .await?;
        let job = job.to_string();
        Ok(tokio::spawn(async move {
            let wait = async {
                while let Some(sig) = removed.next().await {
                    if let Ok(args) = sig.args()
                        && args.job.to_string() == job
                    {
                        return Ok(JobResult::parse(&args.result));
                    }
                }
                Err(SystemdError::Unreachable("signal stream ended".into()))
            };
            match tokio::time::timeout(job_timeout, wait).await {
                Ok(r) => r,
                Err(_) => Err(SystemdError::Timeout(job_timeout)),
            }
        }))
    }
}

/// What is read of a service besides the unit's own properties.
#[derive(Default)]
struct ServiceRead {
    main_pid: u32,
    result: String,
    n_restarts: u32,
    exit_status: String,
    exec_watchdog: bool,
}

/// The template of an instance name: `quantum-tpl@1.service` → `quantum-tpl@.service`.
pub fn template_of(name: &str) -> Option<String> {
    let (prefix, rest) = name.split_once('@')?;
    let (instance, suffix) = rest.rsplit_once('.')?;
    (!instance.is_empty()).then(|| format!("{prefix}@.{suffix}"))
}

/// `ExecMainCode`/`ExecMainStatus` as systemd shows them (`CLD_EXITED` 1, `CLD_KILLED` 2,
/// `CLD_DUMPED` 3): `exited 1`, `killed KILL`, `dumped ABRT`; empty before any exit.
fn exit_status(code: i32, status: i32) -> String {
    let signal = || {
        nix::sys::signal::Signal::try_from(status)
            .map(|s| s.as_str().trim_start_matches("SIG").to_string())
            .unwrap_or_else(|_| status.to_string())
    };
    match code {
        1 => format!("exited {status}"),
        2 => format!("killed {}", signal()),
        3 => format!("dumped {}", signal()),
        _ => String::new(),
    }
}

/// The unit name a unit's object path encodes
/// (`/org/freedesktop/systemd1/unit/quantum_2dx_2eservice` → `quantum-x.service`).
pub fn unit_name_of_path(path: &str) -> Option<String> {
    let enc = path.strip_prefix("/org/freedesktop/systemd1/unit/")?;
    let b = enc.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'_' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn unit_proxy(
    conn: &zbus::Connection,
    path: String,
) -> Result<UnitProxy<'static>, SystemdError> {
    UnitProxy::builder(conn)
        .path(path)
        .cache_properties(CacheProperties::No)
        .build()
        .await
        .map_err(call_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_instance_has_its_templates_file() {
        for (name, want) in [
            ("quantum-tpl@1.service", Some("quantum-tpl@.service")),
            ("quantum-tpl@a.b.service", Some("quantum-tpl@.service")),
            ("quantum-tpl@.service", None),
            ("quantum-router.service", None),
        ] {
            assert_eq!(template_of(name).as_deref(), want, "{name}");
        }
    }

    #[test]
    fn marks_of_units_not_listed_are_forgotten() {
        let listed = |name: &str| Listed {
            name: name.into(),
            load: "loaded".into(),
            active: "active".into(),
            sub: "running".into(),
            path: format!(
                "/org/freedesktop/systemd1/unit/{}",
                name.replace(['-', '.'], "_")
            ),
            job: None,
        };
        let router = listed("quantum-router.service");
        let mut cache = Cache::default();
        cache.dirty.insert(router.path.clone());
        // A thousand sessions came and went, each signalling.
        for i in 0..1000 {
            cache.dirty.insert(format!(
                "/org/freedesktop/systemd1/unit/session_2d{i}_2escope"
            ));
        }
        forget_unlisted(&mut cache, std::slice::from_ref(&router));
        assert_eq!(cache.dirty.len(), 1);
        assert!(
            cache.dirty.contains(&router.path),
            "a listed unit's mark stays"
        );
        forget_unlisted(&mut cache, &[]);
        assert!(cache.dirty.is_empty());
    }

    #[test]
    fn unit_names_from_object_paths() {
        for (path, want) in [
            (
                "/org/freedesktop/systemd1/unit/quantum_2dexecution_2eservice",
                Some("quantum-execution.service"),
            ),
            (
                "/org/freedesktop/systemd1/unit/user_40_2eservice",
                Some("user@.service"),
            ),
            (
                "/org/freedesktop/systemd1/unit/init_2escope",
                Some("init.scope"),
            ),
            ("/org/freedesktop/systemd1/job/7", None),
            ("/org/freedesktop/systemd1/unit/bad_2", None),
        ] {
            assert_eq!(unit_name_of_path(path).as_deref(), want, "{path}");
        }
    }
}
