//! Verdicts and severities: the vocabulary every report shares. A leaf: it imports nothing of
//! the crate.

use serde::{Deserialize, Serialize};

/// How bad a report is, as monitoring plugins count it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Nothing to do.
    Ok,
    /// Someone should look (entries wait for the operator, a binding is misconfigured).
    Warning,
    /// Work stops (hung, failed, gave up, stalled).
    Critical,
    /// It could not be seen.
    Unknown,
}

impl Severity {
    /// Monitoring-plugin exit status (0 ok, 1 warning, 2 critical, 3 unknown).
    pub fn exit_code(self) -> i32 {
        match self {
            Severity::Ok => 0,
            Severity::Warning => 1,
            Severity::Critical => 2,
            Severity::Unknown => 3,
        }
    }

    /// Rank for combining several reports into one: a critical report is never hidden behind
    /// an unknown one (ok < warning < unknown < critical).
    pub fn rank(self) -> u8 {
        match self {
            Severity::Ok => 0,
            Severity::Warning => 1,
            Severity::Unknown => 2,
            Severity::Critical => 3,
        }
    }

    /// The worse of two severities by [`Severity::rank`].
    pub fn worst(self, other: Severity) -> Severity {
        if other.rank() > self.rank() {
            other
        } else {
            self
        }
    }

    /// The worst of many; `Ok` for none.
    pub fn worst_of(it: impl IntoIterator<Item = Severity>) -> Severity {
        it.into_iter().fold(Severity::Ok, Severity::worst)
    }
}

/// What a unit (or one binding of it) is judged to be this cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Consuming, or nothing to consume.
    Healthy,
    /// Activating, or within `startup_grace`.
    Starting,
    /// Stopped (not failed).
    Inactive,
    /// Bound in the configuration but not loaded in systemd.
    NotFound,
    /// Work waits and it made no progress for `warn_percent` of `hung_after`: hung soon.
    Lagging,
    /// Holds entries idle past `hung_after` while still reading (or on a server that cannot tell).
    StalePending,
    /// Makes no progress while work waits.
    Hung,
    /// Hung, but the restart budget is spent.
    GaveUp,
    /// systemd says failed.
    Failed,
    /// systemd refuses further starts.
    StartLimitHit,
    /// It could not be seen (systemd or Redis unreachable, the binding's keys unreadable).
    Unknown,
}

impl Verdict {
    /// Every verdict, in the order metrics list them.
    pub const ALL: [Verdict; 11] = [
        Verdict::Healthy,
        Verdict::Starting,
        Verdict::Inactive,
        Verdict::NotFound,
        Verdict::Lagging,
        Verdict::StalePending,
        Verdict::Hung,
        Verdict::GaveUp,
        Verdict::Failed,
        Verdict::StartLimitHit,
        Verdict::Unknown,
    ];

    /// The severity this verdict reports with.
    pub fn severity(self) -> Severity {
        match self {
            Verdict::Healthy | Verdict::Starting | Verdict::Inactive => Severity::Ok,
            Verdict::NotFound | Verdict::Lagging | Verdict::StalePending => Severity::Warning,
            Verdict::Hung | Verdict::GaveUp | Verdict::Failed | Verdict::StartLimitHit => {
                Severity::Critical
            }
            Verdict::Unknown => Severity::Unknown,
        }
    }

    /// The name used in logs, JSON and metrics (`stale-pending`, `gave-up`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Healthy => "healthy",
            Verdict::Starting => "starting",
            Verdict::Inactive => "inactive",
            Verdict::NotFound => "not-found",
            Verdict::Lagging => "lagging",
            Verdict::StalePending => "stale-pending",
            Verdict::Hung => "hung",
            Verdict::GaveUp => "gave-up",
            Verdict::Failed => "failed",
            Verdict::StartLimitHit => "start-limit-hit",
            Verdict::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn critical_is_never_hidden_behind_unknown() {
        use Severity::*;
        let cases = [
            (vec![], Ok),
            (vec![Ok, Warning], Warning),
            (vec![Warning, Unknown], Unknown),
            (vec![Unknown, Critical], Critical),
            (vec![Critical, Unknown, Warning], Critical),
        ];
        for (v, want) in cases {
            assert_eq!(Severity::worst_of(v.clone()), want, "{v:?}");
        }
    }
}
