//! The unified cgroup hierarchy from `/proc`: which unit a process runs in, and whether a PID
//! runs in the same unit as we do — without D-Bus (for `quantum-watchdog exec`).

use std::path::Path;

use crate::config::check_unit_name;

/// The cgroup path of `pid` (`/system.slice/quantum-x.service`) on the unified hierarchy, or
/// `None` if it cannot be read (the process is gone, or `/proc` hides it).
pub fn cgroup_of(pid: u32) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    parse_cgroup(&text)
}

/// Our own cgroup path.
pub fn own_cgroup() -> Option<String> {
    let text = std::fs::read_to_string(Path::new("/proc/self/cgroup")).ok()?;
    parse_cgroup(&text)
}

/// The `0::<path>` line of a `/proc/<pid>/cgroup` file.
pub fn parse_cgroup(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// The unit a cgroup path belongs to: its last component that is a unit name (a service's own
/// sub-cgroups, as with `Delegate=`, lie below it).
pub fn unit_of_cgroup(path: &str) -> Option<String> {
    path.split('/')
        .rev()
        .find(|c| !c.ends_with(".slice") && check_unit_name(c).is_ok())
        .map(str::to_string)
}

/// The cgroup of the unit a path lies in: the path up to and including its unit component
/// (a service's own sub-cgroups, and ours among them, lie below it).
pub fn unit_root(path: &str) -> Option<String> {
    let unit = unit_of_cgroup(path)?;
    let end = path.rfind(&format!("/{unit}"))? + unit.len() + 1;
    Some(path[..end].to_string())
}

/// Whether the cgroup path `theirs` is `ours` or below it.
pub fn is_within(theirs: &str, ours: &str) -> bool {
    let below = theirs.starts_with(&format!("{}/", ours.trim_end_matches('/')));
    theirs == ours || below
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_unified_line_and_the_unit() {
        for (text, path, unit) in [
            (
                "0::/system.slice/quantum-execution.service\n",
                Some("/system.slice/quantum-execution.service"),
                Some("quantum-execution.service"),
            ),
            (
                "12:pids:/x\n0::/user.slice/user-0.slice/user@0.service/app.slice/quantum-a@1.service/worker\n",
                Some(
                    "/user.slice/user-0.slice/user@0.service/app.slice/quantum-a@1.service/worker",
                ),
                Some("quantum-a@1.service"),
            ),
            (
                "0::/user.slice/user-0.slice/session-3.scope\n",
                Some("/user.slice/user-0.slice/session-3.scope"),
                Some("session-3.scope"),
            ),
            ("0::/\n", Some("/"), None),
            ("1:name=systemd:/x\n", None, None),
        ] {
            let p = parse_cgroup(text);
            if let (Some(p), Some(u)) = (p.as_deref(), unit) {
                let root = unit_root(p).unwrap();
                assert!(
                    root.ends_with(&format!("/{u}")) && p.starts_with(&root),
                    "{p}"
                );
            }
            assert_eq!(p.as_deref(), path, "{text:?}");
            assert_eq!(
                p.as_deref().and_then(unit_of_cgroup).as_deref(),
                unit,
                "{text:?}"
            );
        }
    }
}
