//! The decision policy: the one place that says why a unit is restarted or a consumer touched.
//!
//! [`plan`] says what to read this cycle; [`decide`] takes the [`Snapshot`] read (units from
//! systemd, groups and consumers from Redis, the clock), the configuration and the agent's
//! [`Memory`] of earlier cycles, and returns verdicts and actions. Neither does any I/O.
//!
//! The rules, in order:
//!
//! 1. **Nothing is done on what cannot be seen.** If systemd or Redis could not be asked this
//!    cycle, bound units are `unknown` and no action is proposed at all. A binding whose
//!    stream or group cannot be read (NOGROUP, WRONGTYPE, NOPERM, …) reports its error with
//!    its own severity and counts for nothing else: the unit's other bindings are judged as
//!    usual, and an erroring binding never causes a restart.
//! 2. **Work waiting** means the group has entries not yet delivered to anyone: `lag > 0`, or,
//!    when Redis reports `lag` as null, its last-delivered ID is behind the stream's
//!    last-generated ID. With work waiting, every reader's `XREADGROUP … >` returns entries and
//!    resets its `idle` on every Redis version, so idle time is then a reliable signal.
//! 3. **Hung**: the unit is active and running past `startup_grace`, work is waiting, and its
//!    consumer's `idle` has reached `hung_after` — not counting claims to it, whoever made
//!    them (their traces in Redis say when), which reset `idle` too, nor the time until its stream's server was last found holding
//!    writes back — or no consumer of the unit has appeared though work has waited
//!    `hung_after` ("not consuming"). Every other consumer of the unit that holds entries (a
//!    worker of a multi-process unit) is judged the same way.
//! 4. **Stuck in processing**: no work waiting, but the oldest entry the consumer holds has
//!    been unacknowledged for `hung_after`. On 7.2+ servers (which report `inactive`), if the
//!    consumer's own `idle` (every read attempt) has also reached `hung_after` it stopped
//!    reading: hung. Otherwise it is `stale-pending`, a warning; it restarts only if the
//!    binding sets `restart_on_stale_pending`.
//! 5. An idle consumer with no work waiting and nothing stale pending is **healthy**, however
//!    long it has been idle.
//! 6. A verdict must hold `confirm` consecutive cycles before a restart. At most one restart per
//!    unit per cycle, none while one is in flight, none within `startup_grace` of the last, and
//!    at most `restart_budget.max` within `restart_budget.within`; then the unit "gave up".
//!    A restart names the streams it was judged on: it goes ahead only if their servers serve
//!    writes then (checked by the daemon; a paused server is no hang).
//! 7. **Whose a consumer is.** Its name fits a binding's template for this host. It is
//!    **live** if its PID is the MainPID of a bound unit or a process in that unit's cgroup.
//!    It is **dead** if the PID was an earlier MainPID of the unit, is no process, or is a
//!    process outside the unit (the PID was reused). A number above Linux's `PID_MAX_LIMIT`
//!    is no PID (unknown liveness).
//! 8. **Recovery.** A dead consumer's entries go by `claim_policy`: handed off to its unit's
//!    consumer or, when that cannot take them, to the live consumer of another binding of the
//!    same group holding least; parked; or requeued. The sweep that empties it deletes it
//!    (check-and-delete in one Lua script).
//! 9. **Zombie of unknown liveness**: a consumer no template of the group accounts for (another
//!    host, a name without PID): deleted only when idle ≥ `zombie_after` with nothing pending.
//!    One that still holds entries is reported and kept. At most
//!    [`consumers::DELETES_PER_GROUP`] deletes of a group a cycle.
//! 10. **Poison entries** (see [`poison`]): an entry delivered `dead_letter_after` times goes
//!     to the dead-letter stream (`redis.dead_letter_stream`); without that setting it is
//!     reported from 10 deliveries on.
//! 11. Never: take entries from a live consumer, delete a consumer holding entries, acknowledge
//!     an entry (except `requeue` and the dead-letter policy, which acknowledge the original
//!     only after copying it), or act on the agent's own unit.
//! 12. **Fleet** (`[fleet]`, see [`fleet`]): each agent's heartbeat vouches for its host's
//!     live consumers and names those it found dead. Another host's consumer is judged by that
//!     host's heartbeat; its host silent for `host_dead_after`, it is dead. Another host's
//!     consumer is recovered only under the group's recovery lease, whose fencing token the
//!     scripts check. Under a host name two agents write (a cloned machine) nothing of that
//!     name is dead.
//! 13. **Quarantine** (`poison_after_crashes`, see [`quarantine`]): an entry at the head of the
//!     unit's consumer at that many consecutive deaths, each after a read of it, goes to the
//!     dead-letter stream and is acknowledged.
//! 14. **Holds** (see [`holds`]): an operator's pause or an open maintenance window keeps every
//!     action on a unit and its consumers back; the verdict is still judged and shown, the
//!     action listed as held.
//! 15. **Deploys**: a unit with a systemd job or `NeedDaemonReload`, for less than
//!     `deploy_hold`, is not restarted and its consumers are not recovered; its startup grace
//!     counts from the job too.
//! 16. **Quiet groups** (see [`reuse`]): a group that holds nothing and gives nothing to do has
//!     its consumers read again only when its `XINFO GROUPS` entry or its units' MainPIDs
//!     change, or after `reread_after`; no consumer action is taken on consumers not read this
//!     look.
//!
//! [`decide`] runs the rules in stages ([`decide.rs`](decide)); the types every rule shares
//! are data files that import no rule: [`decision`] (what a look decides), [`cycle`] (what it
//! sees), [`memory`] (what it remembers), [`action`] and [`verdict`]. No file of the policy
//! imports one that imports it back (`tests/architecture.rs`).

pub mod action;
pub mod consumers;
pub mod cycle;
pub mod decide;
pub mod decision;
pub mod fleet;
pub mod flow;
pub mod holds;
pub mod keys;
pub mod memory;
pub mod plan;
pub mod poison;
pub mod quarantine;
pub mod reuse;
pub mod units;
pub mod verdict;

pub use action::{Action, RestartCause, to_execute};
pub use cycle::{Classes, Cycle, Deploy, Groups, group_bindings};
pub use decide::decide;
pub use decision::{
    BindingReport, Class, ConsumerReport, Decision, FlagReport, GaugeReport, HeldAction,
    HostReport, HostState, Liveness, PipelineReport, PoisonReport, UnitReport,
};
pub use memory::{GroupMemory, Memory, UnitMemory};
pub use plan::{pids_to_locate, pids_to_probe, plan, units_in_question};
pub use poison::POISON_REPORT_DELIVERIES;
pub use verdict::{Severity, Verdict};

#[cfg(test)]
mod tests;
