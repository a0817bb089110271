//! Where the wrapper's watchdog stands, and the pure step from one look to the next: what the
//! policy found goes in, the ping to send and the line to log come out. The wrapper does the
//! I/O (`sd_notify`, the journal, the write probe); this decides.

use crate::config::Mode;

/// Where the wrapper's watchdog stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watch {
    /// The unit is not hung: every look pings.
    Pinging,
    /// Observe mode, and the policy would restart the unit: said once, and pings go on.
    Would,
    /// Enforce mode, hung, but Redis holds writes back (no consumer could read): said once,
    /// pings go on until the hold ends.
    Held,
    /// `WATCHDOG=trigger` was sent: no ping again; systemd restarts the unit.
    Triggered,
}

/// What one look found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seen {
    /// Nothing could be seen (a look cut short, Redis unreachable, a drain): nothing is
    /// decided on it.
    Blind,
    /// The policy proposes no restart of the unit.
    NotHung,
    /// The policy proposes a restart; `writes_held`: Redis held writes back when asked
    /// ([`needs_write_probe`]).
    Hung {
        /// Redis held writes back when asked.
        writes_held: bool,
    },
}

/// What to tell systemd after a look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ping {
    /// Nothing (already triggered).
    None,
    /// `WATCHDOG=1`.
    Alive,
    /// `WATCHDOG=trigger`.
    Trigger,
}

/// What to log, once per change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Say {
    /// `would-watchdog-trigger`.
    Would,
    /// `restart-held`.
    Held,
    /// `watchdog-trigger`, with the evidence.
    Trigger,
}

/// One step: the next state, the ping, and what to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// The state after the look.
    pub next: Watch,
    /// What to send.
    pub ping: Ping,
    /// What to log, if anything.
    pub say: Option<Say>,
}

/// Whether a hung look needs the write probe before [`step`]: only in enforce mode, before
/// the trigger (a trigger is for good).
pub fn needs_write_probe(w: Watch, mode: Mode) -> bool {
    mode == Mode::Enforce && w != Watch::Triggered
}

/// The step from `w` after a look that found `seen`, in `mode`.
pub fn step(w: Watch, mode: Mode, seen: Seen) -> Step {
    let go = |next, ping, say| Step { next, ping, say };
    let once = |s: Say, was: Watch, now: Watch| (was != now).then_some(s);
    match (w, seen) {
        (Watch::Triggered, _) => go(Watch::Triggered, Ping::None, None),
        (_, Seen::Blind) => go(w, Ping::Alive, None),
        (_, Seen::NotHung) => go(Watch::Pinging, Ping::Alive, None),
        (_, Seen::Hung { .. }) if mode == Mode::Observe => {
            go(Watch::Would, Ping::Alive, once(Say::Would, w, Watch::Would))
        }
        (_, Seen::Hung { writes_held: true }) => {
            go(Watch::Held, Ping::Alive, once(Say::Held, w, Watch::Held))
        }
        (_, Seen::Hung { writes_held: false }) => {
            go(Watch::Triggered, Ping::Trigger, Some(Say::Trigger))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HUNG: Seen = Seen::Hung { writes_held: false };
    const HELD: Seen = Seen::Hung { writes_held: true };

    /// Every state against every look, in both modes.
    #[test]
    fn steps() {
        use Mode::{Enforce, Observe};
        use Watch::*;
        for (w, mode, seen, next, ping, say) in [
            (Pinging, Enforce, Seen::NotHung, Pinging, Ping::Alive, None),
            (Pinging, Enforce, Seen::Blind, Pinging, Ping::Alive, None),
            (
                Pinging,
                Enforce,
                HUNG,
                Triggered,
                Ping::Trigger,
                Some(Say::Trigger),
            ),
            (Pinging, Enforce, HELD, Held, Ping::Alive, Some(Say::Held)),
            (Held, Enforce, HELD, Held, Ping::Alive, None),
            (
                Held,
                Enforce,
                HUNG,
                Triggered,
                Ping::Trigger,
                Some(Say::Trigger),
            ),
            (Held, Enforce, Seen::NotHung, Pinging, Ping::Alive, None),
            (Held, Enforce, Seen::Blind, Held, Ping::Alive, None),
            (Pinging, Observe, HUNG, Would, Ping::Alive, Some(Say::Would)),
            (Would, Observe, HUNG, Would, Ping::Alive, None),
            (Would, Observe, Seen::NotHung, Pinging, Ping::Alive, None),
            (Would, Observe, Seen::Blind, Would, Ping::Alive, None),
            (
                Triggered,
                Enforce,
                Seen::NotHung,
                Triggered,
                Ping::None,
                None,
            ),
            (Triggered, Enforce, Seen::Blind, Triggered, Ping::None, None),
            (Triggered, Enforce, HUNG, Triggered, Ping::None, None),
        ] {
            assert_eq!(
                step(w, mode, seen),
                Step { next, ping, say },
                "{w:?} {mode:?} {seen:?}"
            );
        }
    }

    /// The probe is asked for only where its answer can change the step.
    #[test]
    fn the_write_probe_only_where_it_matters() {
        for w in [Watch::Pinging, Watch::Would, Watch::Held] {
            assert!(needs_write_probe(w, Mode::Enforce));
            assert!(!needs_write_probe(w, Mode::Observe));
            let held = step(w, Mode::Observe, HELD);
            assert_eq!(
                held,
                step(w, Mode::Observe, HUNG),
                "observe mode ignores it"
            );
        }
        assert!(!needs_write_probe(Watch::Triggered, Mode::Enforce));
    }
}
