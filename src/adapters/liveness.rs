//! PID liveness on this host: `kill(pid, 0)`, then the process's state in `/proc`.

use nix::errno::Errno;
use nix::sys::signal::kill;
use nix::unistd::Pid;

/// Whether a process with this PID exists and can still run. PID 0 (and anything that is not a
/// valid positive PID) is never probed: `kill(0, …)` would address our own process group. EPERM
/// means the process exists but belongs to someone else: alive. A zombie (state `Z`, or `X`
/// while it is reaped) answers `kill(pid, 0)` and keeps its cgroup until its parent reaps it,
/// but it reads nothing any more: dead. Where `/proc` hides the process (the packaged unit's
/// `ProtectProc=invisible` hides other users' processes), `kill` alone decides.
pub fn pid_alive(pid: u32) -> Option<bool> {
    let raw = i32::try_from(pid).ok().filter(|p| *p > 0)?;
    match kill(Pid::from_raw(raw), None) {
        Ok(()) | Err(Errno::EPERM) => Some(!is_zombie(pid)),
        Err(Errno::ESRCH) => Some(false),
        Err(_) => None,
    }
}

/// Whether `/proc/<pid>/status` says the process has ended and waits to be reaped: state `Z`
/// (or `X`) with one thread. A main thread that called `pthread_exit` while its other threads
/// run shows `Z` too, with `Threads:` above one: that process lives.
fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .is_some_and(|s| ended(&s))
}

/// [`is_zombie`] on the text of a `/proc/<pid>/status` file.
fn ended(status: &str) -> bool {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let zombie = field("State:").is_some_and(|s| s.starts_with('Z') || s.starts_with('X'));
    let threads = field("Threads:").and_then(|t| t.parse::<u32>().ok());
    zombie && threads.is_none_or(|n| n <= 1)
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
    fn reads_state_and_threads() {
        for (status, dead) in [
            ("Name:\tx\nState:\tZ (zombie)\nThreads:\t1\n", true),
            ("Name:\tx\nState:\tX (dead)\nThreads:\t1\n", true),
            ("Name:\tx\nState:\tZ (zombie)\n", true),
            ("Name:\tx\nState:\tZ (zombie)\nThreads:\t2\n", false),
            ("Name:\tZ\nState:\tS (sleeping)\nThreads:\t1\n", false),
            ("Name:\tx\nState:\tT (stopped)\nThreads:\t1\n", false),
            ("", false),
        ] {
            assert_eq!(ended(status), dead, "{status:?}");
        }
    }

    /// A process whose main thread called `pthread_exit` while another thread runs shows
    /// state Z: it lives.
    #[test]
    fn a_process_whose_main_thread_exited_lives() {
        let script = "import ctypes, threading, time\n\
                      threading.Thread(target=time.sleep, args=(30,)).start()\n\
                      ctypes.CDLL(None).pthread_exit(None)\n";
        let Ok(mut c) = std::process::Command::new("python3")
            .args(["-c", script])
            .spawn()
        else {
            assert!(std::env::var("CI").is_err(), "python3 is needed under CI");
            eprintln!("SKIPPED: needs python3");
            return;
        };
        let pid = c.id();
        let status = || std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !status().contains("State:\tZ") && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(status().contains("State:\tZ"), "{}", status());
        assert_eq!(pid_alive(pid), Some(true), "{}", status());
        let _ = c.kill();
        let _ = c.wait();
    }
}
