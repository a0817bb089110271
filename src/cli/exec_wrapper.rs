//! `exec`: becomes `quantum-watchdog-exec` (same process, by `execve`), the small program that
//! runs beside every consumer; without it (a build that lacks it), `exec` runs in this one.

use std::ffi::OsString;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The wrapper's file name.
pub const PROGRAM: &str = "quantum-watchdog-exec";

/// Where the wrapper is looked for: beside this program (a build tree), then in
/// `../libexec/quantum-watchdog/` of it (`/usr/bin` → `/usr/libexec`, as the package installs).
pub fn program() -> Option<PathBuf> {
    let me = std::env::current_exe().ok()?;
    let dir = me.parent()?;
    [
        dir.join(PROGRAM),
        dir.join("../libexec/quantum-watchdog").join(PROGRAM),
    ]
    .into_iter()
    .find(|p| is_executable(p))
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What `exec` was asked, as the wrapper takes it.
pub struct Args<'a> {
    pub config: Option<&'a Path>,
    pub user: bool,
    pub verbose: bool,
    pub unit: Option<&'a str>,
    pub ready_timeout: Duration,
    pub stop_timeout: Duration,
    pub command: &'a [OsString],
}

/// The wrapper's command line (see its documentation for the order).
pub fn argv(a: &Args<'_>) -> Vec<OsString> {
    let mut v: Vec<OsString> = Vec::new();
    if let Some(c) = a.config {
        v.push("--config".into());
        v.push(c.into());
    }
    if a.user {
        v.push("--user".into());
    }
    if a.verbose {
        v.push("--verbose".into());
    }
    if let Some(u) = a.unit {
        v.push("--unit".into());
        v.push(u.into());
    }
    v.push("--ready-timeout-ms".into());
    v.push(a.ready_timeout.as_millis().to_string().into());
    v.push("--stop-timeout-ms".into());
    v.push(a.stop_timeout.as_millis().to_string().into());
    v.push("--".into());
    v.extend(a.command.iter().cloned());
    v
}

/// Replaces this process with the wrapper; returns only the error if it could not.
pub fn become_it(program: &Path, a: &Args<'_>) -> anyhow::Error {
    let e = std::process::Command::new(program).args(argv(a)).exec();
    anyhow::Error::new(e).context(format!("cannot run {}", program.display()))
}
