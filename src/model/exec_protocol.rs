//! The protocol between `quantum-watchdog exec`, the wrapper it becomes
//! (`quantum-watchdog-exec`) and the agent, defined once: the wrapper's command line, which
//! `exec` writes and the wrapper reads, and the `STATUS=` prefix the wrapper sends and the
//! agent reads to know that systemd's watchdog, not the agent, restarts the unit.
//!
//! ```text
//! quantum-watchdog-exec [--config FILE] [--user] [--verbose] [--unit UNIT]
//!                       --ready-timeout-ms MS [--stop-timeout-ms MS] -- COMMAND [ARG]...
//! ```

use std::ffi::OsString;
use std::fmt::Display;
use std::path::PathBuf;
use std::time::Duration;

/// The stop timeout when the command line names none (systemd's `TimeoutStopSec=` default).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(90);

/// What the wrapper is asked: the options `exec` checked, and the command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WrapperArgs {
    /// `--config FILE`.
    pub config: Option<PathBuf>,
    /// `--user`: the user's manager and paths.
    pub user: bool,
    /// `--verbose`.
    pub verbose: bool,
    /// `--unit UNIT`; else the wrapper's own cgroup names it.
    pub unit: Option<String>,
    /// `--ready-timeout-ms MS`.
    pub ready_timeout: Duration,
    /// `--stop-timeout-ms MS`.
    pub stop_timeout: Duration,
    /// Everything after `--`.
    pub command: Vec<OsString>,
}

/// Why a wrapper command line is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgvError {
    /// The command line ended before `--`.
    #[error("no `--` before the command")]
    NoSeparator,
    /// An option without its value.
    #[error("{0} needs a value")]
    NoValue(String),
    /// A value that is not a number of milliseconds.
    #[error("{0}: a number of milliseconds")]
    NotMillis(String),
    /// Something the protocol does not have.
    #[error("unexpected argument {0:?}")]
    Unexpected(OsString),
    /// `--ready-timeout-ms` is not optional.
    #[error("--ready-timeout-ms is required")]
    NoReadyTimeout,
    /// Nothing to run.
    #[error("no command after `--`")]
    NoCommand,
}

impl WrapperArgs {
    /// `command` with every option at its default (`--ready-timeout-ms` 0).
    pub fn new(command: Vec<OsString>) -> WrapperArgs {
        WrapperArgs {
            config: None,
            user: false,
            verbose: false,
            unit: None,
            ready_timeout: Duration::ZERO,
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            command,
        }
    }

    /// The command line, in the protocol's order.
    pub fn to_argv(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::new();
        if let Some(c) = &self.config {
            v.extend(["--config".into(), c.into()]);
        }
        for (on, flag) in [(self.user, "--user"), (self.verbose, "--verbose")] {
            if on {
                v.push(flag.into());
            }
        }
        if let Some(u) = &self.unit {
            v.extend(["--unit".into(), u.into()]);
        }
        for (flag, d) in [
            ("--ready-timeout-ms", self.ready_timeout),
            ("--stop-timeout-ms", self.stop_timeout),
        ] {
            v.extend([flag.into(), d.as_millis().to_string().into()]);
        }
        v.push("--".into());
        v.extend(self.command.iter().cloned());
        v
    }

    /// Reads a command line `to_argv` wrote (the program's name left out).
    pub fn parse(mut it: impl Iterator<Item = OsString>) -> Result<WrapperArgs, ArgvError> {
        let mut a = WrapperArgs::new(Vec::new());
        let mut ready = None;
        loop {
            let arg = it.next().ok_or(ArgvError::NoSeparator)?;
            let name = arg.to_string_lossy().into_owned();
            let mut value = || it.next().ok_or_else(|| ArgvError::NoValue(name.clone()));
            match arg.to_str() {
                Some("--config") => a.config = Some(value()?.into()),
                Some("--user") => a.user = true,
                Some("--verbose") => a.verbose = true,
                Some("--unit") => a.unit = Some(value()?.to_string_lossy().into_owned()),
                Some("--ready-timeout-ms") => ready = Some(millis(&name, value()?)?),
                Some("--stop-timeout-ms") => a.stop_timeout = millis(&name, value()?)?,
                Some("--") => break,
                _ => return Err(ArgvError::Unexpected(arg)),
            }
        }
        a.ready_timeout = ready.ok_or(ArgvError::NoReadyTimeout)?;
        a.command = it.collect();
        if a.command.is_empty() {
            return Err(ArgvError::NoCommand);
        }
        Ok(a)
    }
}

/// A value of milliseconds.
fn millis(flag: &str, v: OsString) -> Result<Duration, ArgvError> {
    v.to_str()
        .and_then(|s| s.parse::<u64>().ok())
        .map(Duration::from_millis)
        .ok_or_else(|| ArgvError::NotMillis(flag.to_string()))
}

/// The start of every `STATUS=` the wrapper sends: `exec <mode>:`.
pub fn status_prefix(mode: impl Display) -> String {
    format!("exec {mode}:")
}

/// The wrapper acts on a hang (its `STATUS=` starts `exec enforce:`): systemd's watchdog
/// restarts the unit, so the agent does not. A wrapper in observe mode triggers nothing.
pub fn wrapper_acts(status_text: &str) -> bool {
    status_text.starts_with(&status_prefix("enforce"))
}

/// A unit's `ExecStart=` runs its command under `quantum-watchdog exec`.
pub fn is_exec_wrapper(path: &str, argv: &[String]) -> bool {
    let ours = |p: &str| p.rsplit('/').next() == Some("quantum-watchdog");
    (ours(path) || argv.first().is_some_and(|a| ours(a)))
        && argv
            .iter()
            .skip(1)
            .take_while(|a| *a != "--")
            .any(|a| a == "exec")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Result<WrapperArgs, ArgvError> {
        WrapperArgs::parse(s.iter().map(OsString::from))
    }

    /// What `exec` writes, the wrapper reads back unchanged, whatever the command holds.
    #[test]
    fn the_command_line_round_trips() {
        let full = WrapperArgs {
            config: Some("/etc/q w/c.toml".into()),
            user: true,
            verbose: true,
            unit: Some("quantum-execution@a b.service".into()),
            ready_timeout: Duration::from_millis(1500),
            stop_timeout: Duration::from_secs(30),
            command: ["sh", "-c", "--unit", "--", "--config"]
                .map(OsString::from)
                .to_vec(),
        };
        let bare = WrapperArgs::new(vec![OsString::from("true")]);
        for a in [full, bare] {
            assert_eq!(WrapperArgs::parse(a.to_argv().into_iter()), Ok(a.clone()));
        }
    }

    #[test]
    fn refuses_what_exec_never_writes() {
        for (argv, want) in [
            (&["--ready-timeout-ms", "10"][..], ArgvError::NoSeparator),
            (
                &["--ready-timeout-ms", "10", "sh"][..],
                ArgvError::Unexpected("sh".into()),
            ),
            (&["--", "sh"][..], ArgvError::NoReadyTimeout),
            (
                &["--ready-timeout-ms", "1s", "--", "sh"][..],
                ArgvError::NotMillis("--ready-timeout-ms".into()),
            ),
            (
                &["--ready-timeout-ms", "10", "--"][..],
                ArgvError::NoCommand,
            ),
            (
                &["-v", "--ready-timeout-ms", "10", "--", "sh"][..],
                ArgvError::Unexpected("-v".into()),
            ),
            (&["--unit"][..], ArgvError::NoValue("--unit".into())),
        ] {
            assert_eq!(args(argv), Err(want), "{argv:?}");
        }
    }

    /// The prefix the wrapper writes is the one the agent reads, for either mode.
    #[test]
    fn the_status_prefix_round_trips() {
        let line = |mode: &str| format!("{} hung: c idle 1s", status_prefix(mode));
        assert!(wrapper_acts(&line("enforce")));
        assert!(!wrapper_acts(&line("observe")));
        assert!(!wrapper_acts("enforce: exec"));
    }

    #[test]
    fn exec_wrappers_are_told_by_their_command_line() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let qw = "/usr/bin/quantum-watchdog";
        assert!(is_exec_wrapper(qw, &s(&[qw, "exec", "--", "svc"])));
        assert!(is_exec_wrapper(
            qw,
            &s(&[qw, "--user", "exec", "--", "svc"])
        ));
        assert!(!is_exec_wrapper(qw, &s(&[qw, "agent"])));
        assert!(!is_exec_wrapper(qw, &s(&[qw, "agent", "--", "exec"])));
        assert!(!is_exec_wrapper(
            "/usr/bin/svc",
            &s(&["/usr/bin/svc", "exec"])
        ));
    }
}
