//! What a look decides, as data: the [`Decision`] and every report in it. Shared by every rule
//! and by the report layer; it imports no rule, so any rule may use it.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;

use super::action::Action;
use super::verdict::{Severity, Verdict};

/// Everything one cycle decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// Every watched unit.
    pub units: Vec<UnitReport>,
    /// Every consumer of a watched group.
    pub consumers: Vec<ConsumerReport>,
    /// Every `[[pipeline]]`.
    pub pipelines: Vec<PipelineReport>,
    /// Every `[[gauge]]`.
    pub gauges: Vec<GaugeReport>,
    /// Every `[[flag]]`.
    pub flags: Vec<FlagReport>,
    /// Poison entries seen this cycle.
    pub poison: Vec<PoisonReport>,
    /// What to do.
    pub actions: Vec<Action>,
    /// What would be done but for a pause or a maintenance window.
    pub held: Vec<HeldAction>,
    /// Why systemd could not be asked.
    pub systemd_error: Option<String>,
    /// Why Redis could not be read.
    pub redis_error: Option<String>,
    /// The hosts of the fleet (`[fleet]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub fleet: Vec<HostReport>,
}

impl Decision {
    /// The worst severity of everything reported (a critical one is never hidden behind an
    /// unknown one); unknown as well if systemd or Redis could not be asked.
    pub fn severity(&self) -> Severity {
        let blind = (self.systemd_error.is_some() || self.redis_error.is_some())
            .then_some(Severity::Unknown);
        // A host name two agents write under: recovery of its consumers waits on the operator.
        let shared = self
            .fleet
            .iter()
            .any(|h| h.shared)
            .then_some(Severity::Critical);
        Severity::worst_of(
            self.units
                .iter()
                .map(|u| u.severity)
                .chain(self.consumers.iter().map(|c| c.severity))
                .chain(self.pipelines.iter().map(|p| p.severity))
                .chain(self.gauges.iter().map(|g| g.severity))
                .chain(self.poison.iter().map(|p| p.severity))
                .chain(shared)
                .chain(blind),
        )
    }
}

/// One unit as seen this cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UnitReport {
    /// The unit.
    pub unit: String,
    /// systemd's ActiveState.
    pub active_state: String,
    /// systemd's SubState.
    pub sub_state: String,
    /// systemd's MainPID.
    pub main_pid: u32,
    /// The verdict.
    pub verdict: Verdict,
    /// The worst of the verdict's severity and its bindings' errors.
    pub severity: Severity,
    /// Why.
    pub reason: String,
    /// Consecutive cycles with this verdict.
    pub streak: u32,
    /// How many a restart needs.
    pub confirm: u32,
    /// Restarts within the budget window.
    pub restarts_in_window: u32,
    /// The budget.
    pub restart_budget: u32,
    /// Each binding.
    pub bindings: Vec<BindingReport>,
    /// The pause or window that holds actions on it back, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hold: Option<String>,
}

/// One binding of a unit as seen this cycle.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BindingReport {
    /// The stream.
    pub stream: String,
    /// The group.
    pub group: String,
    /// The name the unit's process reads under (none without a MainPID).
    pub consumer: Option<String>,
    /// That consumer is listed in the group.
    pub consumer_present: bool,
    /// Its `idle`.
    pub idle_ms: Option<u64>,
    /// Its `inactive` (7.2+).
    pub inactive_ms: Option<i64>,
    /// Entries it holds.
    pub pending: Option<u64>,
    /// Entries the whole group holds.
    pub group_pending: Option<u64>,
    /// `null` when Redis reports it null, or the group could not be read.
    pub lag: Option<u64>,
    /// Entries wait for delivery (rule 2).
    pub work_waiting: Option<bool>,
    /// This binding's verdict.
    pub verdict: Verdict,
    /// Why.
    pub reason: String,
    /// The error reading this binding's keys, if any (it then counts for nothing else).
    pub error: Option<String>,
}

/// A consumer of a watched group, as reported.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConsumerReport {
    /// The stream (shared by the group's reports).
    pub stream: Arc<str>,
    /// The group.
    pub group: Arc<str>,
    /// The consumer's name.
    pub consumer: Arc<str>,
    /// The unit whose template accounts for it, if any.
    pub unit: Option<String>,
    /// Whether its process lives.
    pub liveness: Liveness,
    /// It is the consumer a unit's row in `status` shows.
    pub current: bool,
    /// Entries it holds.
    pub pending: u64,
    /// `XINFO CONSUMERS` idle.
    pub idle_ms: u64,
    /// Warning for entries nobody will process without the operator.
    pub severity: Severity,
    /// What the agent makes of it.
    pub note: Cow<'static, str>,
}

/// Whether a consumer's process lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Liveness {
    /// A process of a bound unit reads under this name.
    Live,
    /// No process of the unit reads under this name any more.
    Dead,
    /// It cannot be told (another host, a name no template accounts for, a PID not asked).
    Unknown,
    /// The consumer `park` moves entries to.
    Parked,
}

/// What a consumer is, before anything is done about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Class {
    /// Whether its process lives.
    pub liveness: Liveness,
    /// The binding (index into `config.watch`) whose template accounts for the name.
    pub owner: Option<usize>,
    /// Why, one phrase.
    pub why: Cow<'static, str>,
    /// The other host it is a consumer of (`[fleet]`); `None`: this host's, or unknown.
    pub host: Option<String>,
}

impl Class {
    /// A class of this host's (or of no host): `host` unset.
    pub fn new(
        liveness: Liveness,
        owner: Option<usize>,
        why: impl Into<Cow<'static, str>>,
    ) -> Class {
        Class {
            liveness,
            owner,
            why: why.into(),
            host: None,
        }
    }
}

/// An entry delivered again and again without being acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoisonReport {
    /// The stream.
    pub stream: String,
    /// The group.
    pub group: String,
    /// The entry.
    pub id: String,
    /// Who holds it.
    pub consumer: String,
    /// Its delivery count.
    pub deliveries: u64,
    /// Being moved to the dead-letter stream (`dead_letter_after` is set and reached).
    pub dead_letter: bool,
    /// The dead-letter stream it goes to (`redis.dead_letter_stream`).
    pub dead_stream: String,
    /// Warning while it stays pending.
    pub severity: Severity,
}

/// An action held back this cycle, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeldAction {
    /// The action as it would be taken.
    #[serde(flatten)]
    pub action: Action,
    /// The pause or window.
    pub held_by: String,
}

/// One host of the fleet, as `status --fleet` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HostReport {
    /// The host.
    pub host: String,
    /// Since its last heartbeat (ms, the server's clock).
    pub age_ms: u64,
    /// Alive, silent or dead.
    pub state: HostState,
    /// Its agent's version (empty once the heartbeat expired).
    pub version: String,
    /// Consumers it vouches for.
    pub vouched: usize,
    /// Groups whose recovery lease it holds (`stream group`).
    pub leases: Vec<String>,
    /// This host.
    pub this: bool,
    /// Two agents write under this host name (a cloned machine): nothing is taken from it.
    pub shared: bool,
}

/// What a host of the fleet is, by its heartbeat and this agent's watch of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum HostState {
    /// Its heartbeat is there.
    Alive,
    /// Its heartbeat is gone, not yet for `host_dead_after` (or not yet watched that long).
    Silent,
    /// Its last beat is `host_dead_after` old (and, for the judgement of its consumers, this
    /// agent has watched it silent, its own reads unbroken, for `host_dead_after` less the
    /// heartbeat's life).
    Dead,
}

impl HostState {
    /// Every state, in the order metrics list them.
    pub const ALL: [HostState; 3] = [HostState::Alive, HostState::Silent, HostState::Dead];

    /// The word for it.
    pub fn as_str(self) -> &'static str {
        match self {
            HostState::Alive => "alive",
            HostState::Silent => "silent",
            HostState::Dead => "dead",
        }
    }
}

/// One `[[pipeline]]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PipelineReport {
    /// Its name.
    pub name: String,
    /// Its streams in flow order.
    pub stages: Vec<StageReport>,
    /// Index of the first stalled stage.
    pub stalled_at: Option<usize>,
    /// Critical when stalled, unknown when a stage cannot be read.
    pub severity: Severity,
    /// One line.
    pub message: String,
}

/// One stream of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageReport {
    /// The stream.
    pub stream: String,
    /// Its length.
    pub length: Option<u64>,
    /// Entries added per minute.
    pub added_per_min: Option<f64>,
    /// The groups reading it.
    pub groups: Vec<GroupFlow>,
    /// Why it could not be read.
    pub error: Option<String>,
}

/// One group of a stage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupFlow {
    /// The group.
    pub group: String,
    /// Its lag.
    pub lag: Option<u64>,
    /// Entries wait for it.
    pub work_waiting: bool,
    /// Entries delivered per minute over the last minutes (7.0+: from entries-read).
    pub delivered_per_min: Option<f64>,
    /// Since when nothing was delivered (ms), as far as known.
    pub no_delivery_ms: u64,
    /// Work waits and nothing was delivered for `stall_after`.
    pub stalled: bool,
}

/// One `[[gauge]]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GaugeReport {
    /// Its name (the key if unnamed).
    pub name: String,
    /// The key read (placeholders expanded).
    pub key: String,
    /// Its value (0 when absent).
    pub value: Option<f64>,
    /// The limit.
    pub limit: f64,
    /// value / limit.
    pub ratio: Option<f64>,
    /// Warning from `warn_at`, critical at the limit.
    pub severity: Severity,
    /// One phrase.
    pub note: String,
}

/// One `[[flag]]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlagReport {
    /// Its name (the key if unnamed).
    pub name: String,
    /// The key read (placeholders expanded).
    pub key: String,
    /// Its value, if set.
    pub value: Option<String>,
}
