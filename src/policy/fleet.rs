//! Rule 12 (`[fleet]`): many hosts, one Redis. Each agent's heartbeat vouches for its host's
//! live consumers and names those it found dead; it expires by itself when the agent stops.
//!
//! A consumer whose name fits a binding's template for another host of the fleet is judged by
//! that host's heartbeat ([`classify_other_host`]): vouched for, it is live (however idle);
//! named dead, it is dead; neither, the host's agent says nothing of it and it stays of
//! unknown liveness (the zombie rule). With the heartbeat gone, the host is silent — its
//! consumers are kept — until `host_dead_after` since its last beat; then the host is dead,
//! and so are its consumers. Another host's consumer is recovered only under the group's
//! recovery lease ([`under_lease`]), whose fencing token the scripts check.

use std::borrow::Cow;

use crate::config::Config;
use crate::model::consumer_name::NameMatch;
use crate::model::fleet::{FleetView, Heartbeat, HostBeat, Vouch, lease_holder};
use crate::model::{ConsumerInfo, GroupData, GroupKey, fmt_ms};

use super::action::Action;
use super::cycle::{Classes, Cycle, Groups};
use super::decision::{Class, Decision, HostReport, HostState, Liveness};
use super::memory::{FleetMemory, Memory};

pub use crate::model::fleet::{DEAD_NAMED, LIVE_NAMED};
/// A host's heartbeat seen to change hands twice within this many intervals: two agents write
/// under that name (a restart changes it once).
pub const SHARED_WINDOW_BEATS: u64 = 10;

/// Notes, from this look's heartbeats, which agent writes under each host name, and the
/// evidence that two do (with the server's time; older than [`SHARED_WINDOW_BEATS`] intervals,
/// forgotten): for this host, another agent's heartbeat standing under its name before this
/// look wrote its own (not its own, nor its predecessor's); for another host, its heartbeat
/// going back to an instance seen before — instances are random and new at each start, so
/// restarts never go back, while two agents overwriting each other do.
pub fn observe_instances(cfg: &Config, view: Option<&FleetView>, me: &str, f: &mut FleetMemory) {
    let Some(view) = view else {
        return;
    };
    let (now, window) = (view.now_ms, SHARED_WINDOW_BEATS * cfg.interval.as_millis());
    let ours = [f.instance.clone(), f.predecessor.clone()];
    if f.publish && !view.own_before.is_empty() {
        let w = f.instances.entry(me.to_string()).or_default();
        if !ours.contains(&view.own_before) {
            w.changes.push_back(now);
        }
        w.saw(&view.own_before, now, window);
    }
    for h in view
        .hosts
        .iter()
        .filter(|h| h.host != me && h.beat.is_some())
    {
        if h.instance.is_empty() {
            continue;
        }
        let w = f.instances.entry(h.host.clone()).or_default();
        let back = w.last != h.instance && w.seen.iter().any(|(i, _)| *i == h.instance);
        if back {
            w.changes.push_back(now);
        }
        w.saw(&h.instance, now, window);
    }
    let here: std::collections::BTreeSet<&str> =
        view.hosts.iter().map(|h| h.host.as_str()).collect();
    f.instances
        .retain(|h, _| h == me || here.contains(h.as_str()));
}

/// Whether two agents write under the host name `host` (a cloned machine): for this host
/// (`me`), another agent's heartbeat stood under its name twice within [`SHARED_WINDOW_BEATS`]
/// intervals (one seen once and never again was an agent before this one whose state was
/// lost); for another, its heartbeat went back to an earlier instance within them; or the
/// host's agent says so — unless that is this agent's own word (a look of `status` or
/// `recover` takes this host's agent at its word). Nothing is taken from a consumer of such a
/// name.
pub fn name_shared(view: Option<&FleetView>, f: &FleetMemory, host: &str, me: &str) -> bool {
    let needed = if host == me { 2 } else { 1 };
    let evidence = f
        .instances
        .get(host)
        .is_some_and(|w| w.changes.len() >= needed);
    let said = (host != me || !f.publish)
        && view
            .and_then(|v| v.hosts.iter().find(|h| h.host == host))
            .and_then(|h| h.beat.as_ref())
            .is_some_and(|b| b.shared);
    evidence || said
}

/// With `[fleet]`, this look's heartbeats: merged with those memory has
/// ([`merge_beats`]), and who writes under each host name noted ([`observe_instances`]).
pub fn look(cfg: &Config, snap: &crate::model::Snapshot, f: &mut FleetMemory) -> Option<FleetView> {
    if !cfg.fleet.enabled {
        return None;
    }
    let view = snap.fleet().map(|v| merge_beats(v, f));
    observe_instances(cfg, view.as_ref(), &snap.hostname, f);
    view
}

/// What the next heartbeat says, from this look: what this look wrote stands (unless the
/// script asked for it whole: while it is the same only its time to live is renewed), then the
/// look's time, whether the name is shared, the vouches; and the fleet's report.
pub fn remember(
    cy: &Cycle<'_>,
    mem: &mut Memory,
    (groups, classes): (&Groups<'_>, &Classes<'_>),
    as_of_ms: u64,
    d: &mut Decision,
) {
    // What the look wrote stands, unless the script asked for it whole.
    mem.fleet.sent = cy.fleet.filter(|v| !v.resend).and_then(|v| v.written);
    mem.fleet.as_of_ms = as_of_ms;
    mem.fleet.shared = cy.shared_name;
    mem.fleet.vouches = vouches(cy, groups, classes, d);
    d.fleet = report(cy, &mem.fleet, groups);
}

/// The heartbeats as read, with each one the read did not copy (unchanged since this reader's
/// last read) taken from memory; memory keeps this read's for the next. The next read may
/// skip the unchanged ones only if every heartbeat there is now known.
pub fn merge_beats(view: &FleetView, f: &mut FleetMemory) -> FleetView {
    let mut out = view.clone();
    let mut complete = true;
    for h in &mut out.hosts {
        if h.unchanged {
            h.beat = f.beats.get(&h.host).cloned();
            complete &= h.beat.is_some();
        }
        match &h.beat {
            Some(b) => f.beats.insert(h.host.clone(), std::sync::Arc::clone(b)),
            None => f.beats.remove(&h.host),
        };
    }
    let here: std::collections::BTreeSet<&str> =
        view.hosts.iter().map(|h| h.host.as_str()).collect();
    f.beats.retain(|host, _| here.contains(host.as_str()));
    f.since_ms = if complete { view.now_ms } else { 0 };
    out
}

/// Classifies a consumer no template of the group accounts for on this host as another
/// host's, by that host's heartbeat. `None`: it is no consumer of a host of the fleet, its name
/// reads as more than one host's, or that host's agent says nothing of it (today's rule
/// applies: a zombie of unknown liveness).
pub fn classify_other_host(
    cy: &Cycle<'_>,
    mem: &Memory,
    idxs: &[usize],
    c: &ConsumerInfo,
) -> Option<Class> {
    let view = cy.fleet()?;
    let (i, hb) = reading(cy, idxs, &c.name)?;
    let host = hb.host.as_str();
    let w = &cy.cfg.watch[i];
    let (liveness, why) = match &hb.beat {
        _ if name_shared(Some(view), &mem.fleet, host, cy.host()) => (
            Liveness::Unknown,
            format!("host name {host} is written by two agents: nothing is taken from it"),
        ),
        // A heartbeat dated ahead of the server's clock is not one of ours: no word.
        Some(_) if hb.as_of_ms > view.now_ms.saturating_add(1000) => return None,
        Some(beat) => match beat.vouch(&w.stream, &w.group) {
            Some(v) if v.live.binary_search_by(|n| n.as_str().cmp(&c.name)).is_ok() => (
                Liveness::Live,
                format!("host {host}'s agent vouches for it"),
            ),
            // Not read since that look: the agent's word on it still stands.
            Some(v)
                if v.dead.binary_search_by(|n| n.as_str().cmp(&c.name)).is_ok()
                    && hb.as_of_ms > 0
                    && c.idle_ms > view.now_ms.saturating_sub(hb.as_of_ms) + 1000 =>
            {
                (Liveness::Dead, format!("host {host}'s agent found it dead"))
            }
            _ => return None,
        },
        None => silent_host(cy, mem, hb, c),
    };
    let mut class = Class::new(liveness, Some(i), why);
    class.host = Some(host.to_string());
    Some(class)
}

/// The one binding and host of the fleet (not this one) whose template reads `name`; `None`
/// when none does, or when two readings differ.
fn reading<'a>(cy: &Cycle<'a>, idxs: &[usize], name: &str) -> Option<(usize, &'a HostBeat)> {
    let known = |h: &str| h != cy.host() && cy.hosts.contains_key(h);
    let mut found: Option<(usize, &str, NameMatch)> = None;
    for &i in idxs {
        let w = &cy.cfg.watch[i];
        let Some((h, m)) = w.consumer.matches_some_host(name, &w.unit, &known) else {
            continue;
        };
        match found {
            Some((_, fh, fm)) if fh != h || fm != m => return None,
            Some(_) => {}
            None => found = Some((i, h, m)),
        }
    }
    let (i, h, _) = found?;
    Some((i, *cy.hosts.get(h)?))
}

/// A host whose heartbeat expired: silent, its consumers kept, until its last beat is
/// `host_dead_after` old and this agent itself has watched it silent, its own reads unbroken,
/// for `host_dead_after` less the heartbeat's life; then its consumers that have not read for
/// `host_dead_after` are dead. (A fleet that went silent with the server — a restart, a
/// failover, a network cut — is not found dead at once when the server comes back: its
/// agents beat again before this one has watched long enough, and its consumers read.)
fn silent_host(
    cy: &Cycle<'_>,
    mem: &Memory,
    hb: &HostBeat,
    c: &ConsumerInfo,
) -> (Liveness, String) {
    let view = cy.fleet().expect("a heartbeat was read");
    let (host, age_ms) = (&hb.host, view.age_ms(hb));
    let dead_after = cy.cfg.fleet.host_dead_after.as_millis();
    let silent = format!("host {host}'s agent silent for {}", fmt_ms(age_ms));
    if host_state(cy, mem, view, hb) != HostState::Dead {
        let why = format!(
            "{silent}: kept until host_dead_after {}",
            fmt_ms(dead_after)
        );
        return (Liveness::Unknown, why);
    }
    if c.idle_ms < dead_after {
        let why = format!("{silent}, but it read {} ago: kept", fmt_ms(c.idle_ms));
        return (Liveness::Unknown, why);
    }
    let why = format!("host {host} is dead: no heartbeat for {}", fmt_ms(age_ms));
    (Liveness::Dead, why)
}

/// A host's state as `status` shows it, by its heartbeat's age alone: a look of its own has
/// no watch of the host (see [`host_state`], which the judgement of its consumers takes).
fn reported_state(cy: &Cycle<'_>, hb: &HostBeat, age_ms: u64) -> HostState {
    match (&hb.beat, age_ms >= cy.cfg.fleet.host_dead_after.as_millis()) {
        (Some(_), _) => HostState::Alive,
        (None, false) => HostState::Silent,
        (None, true) => HostState::Dead,
    }
}

/// A host's state for the judgement of its consumers.
fn host_state(cy: &Cycle<'_>, mem: &Memory, view: &FleetView, hb: &HostBeat) -> HostState {
    if hb.beat.is_some() {
        return HostState::Alive;
    }
    let dead_after = cy.cfg.fleet.host_dead_after.as_millis();
    let ttl = crate::config::FleetConfig::heartbeat_ttl(cy.cfg.interval.0).as_millis() as u64;
    let watched = mem
        .fleet
        .silent_since
        .get(&hb.host)
        .map_or(0, |&t| view.now_ms.saturating_sub(t));
    if view.age_ms(hb) >= dead_after && watched >= dead_after.saturating_sub(ttl) {
        HostState::Dead
    } else {
        HostState::Silent
    }
}

/// Notes, from this agent's own reads, since when each host's heartbeat has been gone. A read
/// that failed, or a gap between reads longer than two intervals and a timeout (this agent
/// was cut off, the server restarted or failed over), starts the watch again.
pub fn observe_silence(cfg: &Config, view: Option<&FleetView>, f: &mut FleetMemory) {
    let Some(view) = view else {
        return;
    };
    let gap = 2 * cfg.interval.as_millis() + cfg.redis.timeout.as_millis() + 1000;
    if f.last_read_ms == 0 || view.now_ms < f.last_read_ms || view.now_ms - f.last_read_ms > gap {
        f.silent_since.clear();
    }
    f.last_read_ms = view.now_ms;
    let silent: std::collections::BTreeSet<&str> = view
        .hosts
        .iter()
        .filter(|h| h.beat.is_none())
        .map(|h| h.host.as_str())
        .collect();
    f.silent_since.retain(|h, _| silent.contains(h.as_str()));
    for h in silent {
        f.silent_since.entry(h.to_string()).or_insert(view.now_ms);
    }
}

/// Another host's dead consumer is recovered only under the group's lease: the action goes
/// out fenced, or not at all while another agent holds the lease.
pub fn under_lease(
    cy: &Cycle<'_>,
    g: &GroupData,
    host: &str,
    note: Cow<'static, str>,
    action: Option<Action>,
) -> (Cow<'static, str>, Option<Action>) {
    let Some(action) = action else {
        return (note, None);
    };
    if let Some(v) = &g.lease
        && lease_holder(v) != cy.host()
    {
        let holder = lease_holder(v);
        return (
            format!("{note}; left to {holder}, which holds the recovery lease").into(),
            None,
        );
    }
    let fenced = Action::Fenced {
        host: host.to_string(),
        me: cy.host().to_string(),
        lease_ms: crate::config::FleetConfig::lease_ttl(cy.cfg.interval.0).as_millis() as u64,
        of: Box::new(action),
    };
    (
        format!("{note}, under the recovery lease").into(),
        Some(fenced),
    )
}

/// What this host's next heartbeat says, from this cycle's decision: per group judged, the
/// consumers of this host found live (or not judged), and those found dead whose recovery
/// this agent does not hold back (a deploy, a pause, a window): another host may take them.
/// In the groups' order.
pub fn vouches(
    cy: &Cycle<'_>,
    groups: &Groups<'_>,
    classes: &Classes<'_>,
    d: &Decision,
) -> Vec<Vouch> {
    let mut out = Vec::new();
    for key in groups.keys() {
        let (Ok(g), Some(classes)) = (cy.group(key), classes.get(key)) else {
            continue;
        };
        let mut v = Vouch {
            stream: key.stream.clone(),
            group: key.group.clone(),
            live: Vec::new(),
            dead: Vec::new(),
        };
        for (c, class) in g.consumers.iter().zip(classes) {
            let Some(owner) = class.owner.filter(|_| class.host.is_none()) else {
                continue;
            };
            match class.liveness {
                Liveness::Live | Liveness::Unknown if v.live.len() < LIVE_NAMED => {
                    v.live.push(c.name.to_string())
                }
                // An observing agent's finding is no one's to act on; under a shared host name
                // this agent cannot tell its consumers from the other agent's.
                Liveness::Dead
                    if cy.cfg.mode == crate::config::Mode::Enforce
                        && !cy.shared_name
                        && v.dead.len() < DEAD_NAMED
                        && !held(cy, d, key, owner, c) =>
                {
                    v.dead.push(c.name.to_string())
                }
                _ => {}
            }
        }
        out.push(v);
    }
    out
}

/// This agent holds back the recovery of `c` (a deploy of its unit, a pause, a window).
fn held(cy: &Cycle<'_>, d: &Decision, key: &GroupKey, owner: usize, c: &ConsumerInfo) -> bool {
    cy.deploys.contains_key(&cy.cfg.watch[owner].unit)
        || d.held
            .iter()
            .any(|h| h.action.target() == (key.stream.as_str(), key.group.as_str(), &c.name))
}

/// The fleet as read this cycle: every host and the leases it holds.
pub fn report(cy: &Cycle<'_>, f: &FleetMemory, groups: &Groups<'_>) -> Vec<HostReport> {
    let Some(view) = cy.fleet() else {
        return Vec::new();
    };
    let leases: Vec<(String, String)> = groups
        .keys()
        .filter_map(|k| {
            let v = cy.group(k).ok()?.lease.as_deref()?;
            Some((
                lease_holder(v).to_string(),
                format!("{} {}", k.stream, k.group),
            ))
        })
        .collect();
    view.hosts
        .iter()
        .map(|h| HostReport {
            host: h.host.clone(),
            age_ms: view.age_ms(h),
            state: reported_state(cy, h, view.age_ms(h)),
            version: h
                .beat
                .as_ref()
                .map(|b| b.version.clone())
                .unwrap_or_default(),
            vouched: h
                .beat
                .as_ref()
                .map_or(0, |b| b.groups.iter().map(|v| v.live.len()).sum()),
            leases: leases
                .iter()
                .filter(|(holder, _)| *holder == h.host)
                .map(|(_, g)| g.clone())
                .collect(),
            this: h.host == cy.host(),
            shared: name_shared(Some(view), f, &h.host, cy.host()),
        })
        .collect()
}

/// A host silent this long is dropped from the fleet's list of hosts.
pub const FORGET_HOST_MS: u64 = 7 * 24 * 3600 * 1000;

/// This host's heartbeat, as JSON: what the last look found of its own consumers. What changes
/// every look (its time) goes in the meta, so the heartbeat changes only when its word does.
pub fn heartbeat(cfg: &Config, hostname: &str, mem: &Memory) -> String {
    let beat = Heartbeat {
        host: hostname.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        interval_ms: cfg.interval.as_millis(),
        as_of_ms: 0,
        groups: mem.fleet.vouches.clone(),
        instance: mem.fleet.instance.clone(),
        shared: mem.fleet.shared,
    };
    serde_json::to_string(&beat).expect("a heartbeat serialises")
}

/// The digest of a heartbeat: whether it is the one last written.
pub fn digest(text: &str) -> u64 {
    crate::model::hash::fnv1a(text.as_bytes())
}
