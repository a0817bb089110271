//! The actions the policy proposes. The daemon carries them out in enforce mode and only logs
//! them in observe mode.

use serde::Serialize;

use crate::config::ClaimPolicy;
use crate::model::GroupKey;

/// Why a unit is restarted (the `reason` label of `quantum_watchdog_restarts_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestartCause {
    /// Its consumer was idle `hung_after` while work waited (rule 3).
    IdleWithWork,
    /// No consumer of the unit appeared though work waited `hung_after` (rule 3).
    NotConsuming,
    /// 7.2+: it holds stale entries and made no read attempt for `hung_after` (rule 4).
    StoppedReading,
    /// It holds stale entries and the binding opted in (`restart_on_stale_pending`).
    StalePending,
}

impl RestartCause {
    /// Every cause, in the order metrics list them.
    pub const ALL: [RestartCause; 4] = [
        RestartCause::IdleWithWork,
        RestartCause::NotConsuming,
        RestartCause::StoppedReading,
        RestartCause::StalePending,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            RestartCause::IdleWithWork => "idle-with-work",
            RestartCause::NotConsuming => "not-consuming",
            RestartCause::StoppedReading => "stopped-reading",
            RestartCause::StalePending => "stale-pending",
        }
    }
}

/// What the agent should do. In `observe` mode it only logs "would …".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Action {
    /// Restart a hung unit (`RestartUnit`, mode `replace`).
    Restart {
        /// The unit.
        unit: String,
        /// The evidence, one line.
        reason: String,
        /// Which rule.
        cause: RestartCause,
        /// The streams it was judged on: their servers must be serving writes when the restart
        /// is carried out (checked then), or its consumers' stall is the server's, not theirs.
        streams: Vec<String>,
    },
    /// Claim `from`'s pending entries to `to` (a live consumer of the group, or the parked one).
    Claim {
        /// The unit `from` belonged to.
        unit: String,
        /// The stream and the group.
        #[serde(flatten)]
        key: GroupKey,
        /// The dead consumer.
        from: String,
        /// The recipient.
        to: String,
        /// `handoff` or `park`.
        policy: ClaimPolicy,
        /// What `from` held at the look.
        pending: u64,
        /// When the recipient last really read (the server's ms), for the claim's trace, so
        /// that the claim, which resets its idle time, is not taken for its progress; `None`:
        /// unknown (the parked consumer; traces not read this look).
        to_active_ms: Option<u64>,
        /// The evidence, one line.
        reason: String,
    },
    /// Copy `from`'s pending entries to the stream's end and acknowledge the originals.
    Requeue {
        /// The unit `from` belonged to.
        unit: String,
        /// The stream and the group.
        #[serde(flatten)]
        key: GroupKey,
        /// The dead consumer.
        from: String,
        /// What `from` held at the look.
        pending: u64,
        /// The evidence, one line.
        reason: String,
    },
    /// Move a poison entry (delivered `deliveries` ≥ `dead_letter_after` times) to the
    /// dead-letter stream and acknowledge the original (checked atomically).
    DeadLetter {
        /// The binding's unit.
        unit: String,
        /// The stream and the group.
        #[serde(flatten)]
        key: GroupKey,
        /// The dead-letter stream (`redis.dead_letter_stream`; in the stream's slot on a cluster).
        dead: String,
        /// The entry.
        id: String,
        /// Who holds it.
        consumer: String,
        /// Its delivery count at the look.
        deliveries: u64,
        /// `dead_letter_after`, checked again in the script.
        min_deliveries: u64,
        /// The evidence, one line.
        reason: String,
    },
    /// Move the entry a unit kept dying on (`poison_after_crashes`) to the dead-letter stream
    /// and acknowledge it, if (checked atomically) `consumer` still holds it.
    Quarantine {
        /// The unit.
        unit: String,
        /// The stream and the group.
        #[serde(flatten)]
        key: GroupKey,
        /// The dead-letter stream.
        dead: String,
        /// The entry.
        id: String,
        /// The consumer of the dead process, which holds it.
        consumer: String,
        /// Consecutive deaths with it at the head.
        crashes: u32,
        /// How the last death ended.
        exit_status: String,
        /// The evidence, one line.
        reason: String,
    },
    /// Delete a consumer if (checked atomically) it holds nothing and has been idle `min_idle_ms`.
    Delete {
        /// The unit it belonged to, if known.
        unit: Option<String>,
        /// The stream and the group.
        #[serde(flatten)]
        key: GroupKey,
        /// The consumer.
        consumer: String,
        /// Idle time it must still have in the script (0 for dead consumers).
        min_idle_ms: u64,
        /// The evidence, one line.
        reason: String,
    },
    /// A claim, requeue or delete of another host's consumer (`[fleet]`): carried out only
    /// under the group's recovery lease, whose fencing token every script checks.
    Fenced {
        /// The host whose consumer it is.
        host: String,
        /// This host: the lease is taken in its name.
        me: String,
        /// How long the lease lives (ms).
        lease_ms: u64,
        /// The action.
        of: Box<Action>,
    },
}

impl Action {
    /// The `ACTION=` journal field.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Restart { .. } => "restart",
            Action::Claim {
                policy: ClaimPolicy::Park,
                ..
            } => "park",
            Action::Claim { .. } => "handoff",
            Action::Requeue { .. } => "requeue",
            Action::DeadLetter { .. } => "dead-letter",
            Action::Quarantine { .. } => "quarantine",
            Action::Delete { .. } => "delete",
            Action::Fenced { of, .. } => of.kind(),
        }
    }

    /// The action itself: the one a [`Action::Fenced`] carries.
    pub fn inner(&self) -> &Action {
        match self {
            Action::Fenced { of, .. } => of.inner(),
            a => a,
        }
    }

    /// The unit the action is for, if any.
    pub fn unit(&self) -> Option<&str> {
        match self {
            Action::Restart { unit, .. }
            | Action::Claim { unit, .. }
            | Action::Requeue { unit, .. }
            | Action::DeadLetter { unit, .. }
            | Action::Quarantine { unit, .. } => Some(unit),
            Action::Delete { unit, .. } => unit.as_deref(),
            Action::Fenced { of, .. } => of.unit(),
        }
    }

    /// `(stream, group, consumer)` of a consumer action; empty strings for a restart.
    pub fn target(&self) -> (&str, &str, &str) {
        match self {
            Action::Restart { .. } => ("", "", ""),
            Action::Fenced { of, .. } => of.target(),
            Action::Claim { key, from, .. } | Action::Requeue { key, from, .. } => {
                (&key.stream, &key.group, from)
            }
            Action::Delete { key, consumer, .. }
            | Action::DeadLetter { key, consumer, .. }
            | Action::Quarantine { key, consumer, .. } => (&key.stream, &key.group, consumer),
        }
    }

    /// The group of a consumer action; `None` for a restart.
    pub fn key(&self) -> Option<&GroupKey> {
        match self {
            Action::Restart { .. } => None,
            Action::Fenced { of, .. } => of.key(),
            Action::Claim { key, .. }
            | Action::Requeue { key, .. }
            | Action::Delete { key, .. }
            | Action::DeadLetter { key, .. }
            | Action::Quarantine { key, .. } => Some(key),
        }
    }

    /// The evidence.
    pub fn reason(&self) -> &str {
        match self {
            Action::Restart { reason, .. }
            | Action::Claim { reason, .. }
            | Action::Requeue { reason, .. }
            | Action::DeadLetter { reason, .. }
            | Action::Quarantine { reason, .. }
            | Action::Delete { reason, .. } => reason,
            Action::Fenced { of, .. } => of.reason(),
        }
    }
}

/// The actions to carry out in `mode`: none in observe mode, which only reports.
pub fn to_execute(mode: crate::config::Mode, actions: &[Action]) -> &[Action] {
    match mode {
        crate::config::Mode::Observe => &[],
        crate::config::Mode::Enforce => actions,
    }
}
