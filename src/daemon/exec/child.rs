//! The wrapped command: our child, in our cgroup. We are the unit's main process and a child
//! subreaper, so every orphan of the service is reaped here; its end is mirrored as our own.

use std::ffi::OsString;

use nix::sys::signal::{SigHandler, SigSet, Signal, kill, raise, signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// `exit(code)`.
    Exited(i32),
    /// Killed by a signal.
    Signaled(Signal),
}

impl std::fmt::Display for End {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            End::Exited(c) => write!(f, "exited {c}"),
            End::Signaled(s) => write!(f, "killed {}", s.as_str().trim_start_matches("SIG")),
        }
    }
}

/// The signals forwarded to the child (systemd's stop and reload signals, the user signals,
/// and the watchdog's).
pub const FORWARDED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGQUIT,
    Signal::SIGABRT,
];

/// Whether a forwarded signal asks the child to stop: systemd's `KillSignal=` (SIGTERM) and
/// Ctrl-C (SIGINT). SIGQUIT and SIGABRT ask a JVM or Python for a thread dump as often as for
/// an end, SIGHUP and the user signals for a reload or a report: after any of those the child
/// is watched as before, and if it ends, it ends.
pub fn is_stop(s: Signal) -> bool {
    matches!(s, Signal::SIGTERM | Signal::SIGINT)
}

/// Starts `argv` as our child, after making us a child subreaper. The child does not inherit
/// the notify socket or the watchdog settings: they are ours (`NotifyAccess=main`).
pub fn spawn(argv: &[OsString]) -> std::io::Result<u32> {
    nix::sys::prctl::set_child_subreaper(true).map_err(std::io::Error::from)?;
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| std::io::Error::other("no command to run"))?;
    let child = std::process::Command::new(program)
        .args(args)
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        // Socket activation names our PID: not passed through (see the README).
        .env_remove("LISTEN_PID")
        .env_remove("LISTEN_FDS")
        .env_remove("LISTEN_FDNAMES")
        .spawn()?;
    // Reaped by `reap`, not by std: dropping a `Child` neither waits nor kills.
    Ok(child.id())
}

/// Reaps every child that ended (orphans of the service included); returns the end of the
/// main child `main` if it was among them.
pub fn reap(main: u32) -> Option<End> {
    let mut end = None;
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if pid.as_raw() as u32 == main => {
                end = Some(End::Exited(code));
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if pid.as_raw() as u32 == main => {
                end = Some(End::Signaled(sig));
            }
            Ok(WaitStatus::StillAlive) | Err(_) => return end,
            Ok(_) => {}
        }
    }
}

/// Sends `sig` to the child (it may be gone already: no error), and after a signal that ends
/// it, SIGCONT as systemd does, so a stopped child gets it too (with `KillMode=mixed` systemd
/// signals only us).
pub fn forward(main: u32, sig: Signal) {
    let pid = Pid::from_raw(main as i32);
    let _ = kill(pid, sig);
    if matches!(
        sig,
        Signal::SIGTERM | Signal::SIGINT | Signal::SIGQUIT | Signal::SIGABRT
    ) {
        let _ = kill(pid, Signal::SIGCONT);
    }
}

/// Ends this process as the child ended: the same exit code, or death by the same signal, so
/// systemd sees what it would have seen of the unwrapped service (a child that ends on
/// SIGTERM is a clean stop). Without a core dump of ours: the child's is the one that matters.
pub fn mirror(end: End) -> ! {
    if let End::Signaled(sig) = end {
        // Not dumpable: with a pipe core_pattern (systemd-coredump) RLIMIT_CORE alone does not
        // keep the kernel from calling the helper.
        let _ = nix::sys::prctl::set_dumpable(false);
        let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
        unsafe {
            let _ = signal(sig, SigHandler::SigDfl);
        }
        let mut set = SigSet::empty();
        set.add(sig);
        let _ = set.thread_unblock();
        let _ = raise(sig);
        // A signal whose default is not to end the process: exit as a shell would say it.
        std::process::exit(128 + sig as i32);
    }
    let End::Exited(code) = end else {
        unreachable!()
    };
    std::process::exit(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Only a stop signal starts a drain; a dump, a reload or a user signal leaves the child
    /// under watch.
    #[test]
    fn only_terminate_and_interrupt_are_stops() {
        for (s, stop) in [
            (Signal::SIGTERM, true),
            (Signal::SIGINT, true),
            (Signal::SIGQUIT, false),
            (Signal::SIGABRT, false),
            (Signal::SIGHUP, false),
            (Signal::SIGUSR1, false),
            (Signal::SIGUSR2, false),
        ] {
            assert_eq!(is_stop(s), stop, "{s}");
        }
    }
}
