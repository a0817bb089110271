//! PID liveness on this host: `kill(pid, 0)`.

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

/// Whether a process with this PID exists. PID 0 (and anything that is not a valid positive
/// PID) is never probed: `kill(0, …)` would address our own process group. EPERM means the
/// process exists but belongs to someone else: alive.
pub fn pid_alive(pid: u32) -> Option<bool> {
    let raw = i32::try_from(pid).ok().filter(|p| *p > 0)?;
    match kill(Pid::from_raw(raw), None) {
        Ok(()) | Err(Errno::EPERM) => Some(true),
        Err(Errno::ESRCH) => Some(false),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes() {
        assert_eq!(pid_alive(0), None, "PID 0 is never probed");
        assert_eq!(pid_alive(u32::MAX), None);
        assert_eq!(pid_alive(std::process::id()), Some(true));
        assert_eq!(
            pid_alive(1),
            Some(true),
            "init exists (EPERM counts as alive)"
        );
        // A child that has exited and been reaped leaves its PID unused.
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        assert_eq!(pid_alive(pid), Some(false));
    }
}
