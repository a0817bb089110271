//! PID liveness on this host: `kill(pid, 0)`, then the process's state in `/proc`.

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

/// Whether a process with this PID exists and can still run. PID 0 (and anything that is not a
/// valid positive PID) is never probed: `kill(0, …)` would address our own process group. EPERM
/// means the process exists but belongs to someone else: alive. A zombie (state `Z`, or `X`
/// while it is reaped) answers `kill(pid, 0)` and keeps its cgroup until its parent reaps it,
/// but it reads nothing any more: dead. Where `/proc` hides the process, `kill` decides.
pub fn pid_alive(pid: u32) -> Option<bool> {
    let raw = i32::try_from(pid).ok().filter(|p| *p > 0)?;
    match kill(Pid::from_raw(raw), None) {
        Ok(()) | Err(Errno::EPERM) => Some(!is_zombie(pid)),
        Err(Errno::ESRCH) => Some(false),
        Err(_) => None,
    }
}

/// Whether `/proc/<pid>/stat` says the process has ended and waits to be reaped.
fn is_zombie(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| state_of_stat(&s))
        .is_some_and(|c| c == b'Z' || c == b'X')
}

/// The state field of a `/proc/<pid>/stat` line: the first byte after the last `)` and a
/// space (the command name in parentheses may hold spaces and parentheses of its own).
fn state_of_stat(stat: &[u8]) -> Option<u8> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    match stat.get(close + 1..close + 3)? {
        [b' ', state] => Some(*state),
        _ => None,
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

    /// A child that has ended but is not reaped yet answers `kill(pid, 0)`: it is still dead.
    #[test]
    fn a_zombie_is_dead() {
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !is_zombie(pid) && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            kill(Pid::from_raw(pid as i32), None).is_ok(),
            "not reaped yet"
        );
        assert_eq!(pid_alive(pid), Some(false), "a zombie reads nothing");
        c.wait().unwrap();
    }

    #[test]
    fn reads_the_state_after_the_name() {
        for (line, state) in [
            (&b"42 (qw-consumer) S 1 42 42 0"[..], Some(b'S')),
            (b"42 (a) Z (b)) R 1", Some(b'R')),
            (b"42 (x) Z 1 2", Some(b'Z')),
            (b"42 (x)", None),
            (b"garbage", None),
            (b"", None),
        ] {
            assert_eq!(
                state_of_stat(line),
                state,
                "{:?}",
                String::from_utf8_lossy(line)
            );
        }
    }
}
