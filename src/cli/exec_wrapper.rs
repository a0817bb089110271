//! `exec`: becomes `quantum-watchdog-exec` (same process, by `execve`), the small program that
//! runs beside every consumer; without it (a build that lacks it), `exec` runs in this one.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

use quantum_watchdog::model::exec_protocol::WrapperArgs;

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

/// Replaces this process with the wrapper; returns only the error if it could not.
pub fn become_it(program: &Path, a: &WrapperArgs) -> anyhow::Error {
    let e = std::process::Command::new(program).args(a.to_argv()).exec();
    anyhow::Error::new(e).context(format!("cannot run {}", program.display()))
}
