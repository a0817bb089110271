//! Where the agent keeps its files, and JSON files written atomically (a temporary file, then
//! a rename): `state.json` in its runtime directory, read back by `status`.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::{Config, MetricsConfig};

/// The agent's runtime directory: `state_dir`, else `$RUNTIME_DIRECTORY` (systemd), else
/// `$XDG_RUNTIME_DIR/quantum-watchdog` with `--user`, else `/run/quantum-watchdog/agent`.
pub fn state_dir(cfg: &Config, user: bool) -> PathBuf {
    if let Some(d) = &cfg.state_dir {
        return d.clone();
    }
    if let Some(d) = std::env::var_os("RUNTIME_DIRECTORY") {
        // systemd may pass several, colon-separated; ours is the first.
        let first = d
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        return PathBuf::from(first);
    }
    if user && let Some(x) = std::env::var_os("XDG_RUNTIME_DIR") {
        return Path::new(&x).join("quantum-watchdog");
    }
    PathBuf::from("/run/quantum-watchdog/agent")
}

/// `state.json` in the runtime directory.
pub fn state_file(cfg: &Config, user: bool) -> PathBuf {
    state_dir(cfg, user).join("state.json")
}

/// Where the agent serves metrics: `metrics.listen`, except that the built-in default follows
/// the runtime directory (so `--user` agents each get their own socket).
pub fn metrics_listen(cfg: &Config, user: bool) -> String {
    if cfg.metrics.listen == MetricsConfig::default().listen {
        format!(
            "unix:{}",
            state_dir(cfg, user).join("metrics.sock").display()
        )
    } else {
        cfg.metrics.listen.clone()
    }
}

/// The largest file the agent reads back (a state file of 1 000 bindings is ~1 MiB).
pub const READ_MAX: u64 = 64 * 1024 * 1024;

/// Opens `path` without following a symlink or waiting on a FIFO, and reads at most `max`
/// bytes if the open file (not the path, which may change meanwhile) is a regular file.
/// Returns the text and the file's owner. Every file of ours that another user might plant
/// something in (the pause directory, the state directory, the textfile directory) is read
/// this way: a FIFO, a device or a link to `/dev/zero` is an error, never a wait.
pub fn read_regular(path: &Path, max: u64) -> std::io::Result<(String, u32)> {
    use std::io::Read as _;
    use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    f.take(max).read_to_string(&mut text)?;
    Ok((text, meta.uid()))
}

/// Reads a JSON file; `None` if it is missing, not a regular file, or not what `T` expects.
pub fn load<T: DeserializeOwned>(path: &Path) -> Option<T> {
    let (text, _) = read_regular(path, READ_MAX).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes a JSON file atomically, creating its directory.
pub fn save<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let bytes = serde_json::to_vec(value).map_err(std::io::Error::other)?;
    write_bytes_atomically(path, &bytes)
}

/// Writes a text file atomically (a temporary file beside it, then a rename).
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    write_bytes_atomically(path, text.as_bytes())
}

/// The temporary file is new (`O_CREAT|O_EXCL|O_NOFOLLOW`, a random name, mode 0644): in a
/// directory others may write to, a planted file or symlink of that name makes the write
/// fail instead of writing through it.
fn write_bytes_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut tag = [0u8; 8];
    let _ = getrandom(&mut tag);
    let tmp = path.with_extension(format!(
        "tmp.{}.{:016x}",
        std::process::id(),
        u64::from_ne_bytes(tag)
    ));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o644)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    let written = f.write_all(bytes);
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Random bytes from the kernel (`getrandom(2)`), for names no one can guess.
fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    let n = unsafe { libc::getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) };
    if n < 0 || n as usize != buf.len() {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
