//! Where the configuration comes from: the layered files, the mode from the environment, and
//! the Redis password (a file or a systemd credential).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{Config, ConfigError, RedisConfig, from_fragments};

/// The environment variable that overrides `mode`.
pub const MODE_ENV: &str = "QUANTUM_WATCHDOG_MODE";

/// Where the main file and the drop-in directories are looked for, most important first.
pub const CONFIG_DIRS: [&str; 3] = [
    "/etc/quantum-watchdog",
    "/run/quantum-watchdog",
    "/usr/lib/quantum-watchdog",
];

/// The files of the default layering under `root` (normally `/`), in the order they apply.
pub fn default_sources(root: &Path) -> Vec<PathBuf> {
    let dirs: Vec<PathBuf> = CONFIG_DIRS
        .iter()
        .map(|d| root.join(d.trim_start_matches('/')))
        .collect();
    let mut out: Vec<PathBuf> = dirs
        .iter()
        .map(|d| d.join("config.toml"))
        .find(|f| f.exists())
        .into_iter()
        .collect();
    // By file name; the most important directory's file of a name masks the others.
    let mut dropins: BTreeMap<std::ffi::OsString, PathBuf> = BTreeMap::new();
    for dir in dirs.iter().rev() {
        if let Ok(rd) = std::fs::read_dir(dir.join("config.d")) {
            for e in rd.flatten() {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "toml") {
                    dropins.insert(e.file_name(), p);
                }
            }
        }
    }
    out.extend(dropins.into_values());
    out
}

/// Loads the configuration from the default layering under `root` (normally `/`), or from one
/// file, then applies the `QUANTUM_WATCHDOG_MODE` override.
pub fn load(
    one_file: Option<&Path>,
    root: &Path,
    mode_env: Option<&str>,
) -> Result<Config, ConfigError> {
    let files = match one_file {
        Some(f) => vec![f.to_path_buf()],
        None => default_sources(root),
    };
    let mut texts = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).map_err(|e| ConfigError::Read {
            file: f.display().to_string(),
            reason: read_error_reason(f, &e),
        })?;
        texts.push((f.display().to_string(), text));
    }
    let mut cfg = from_fragments(&texts)?;
    cfg.sources = files;
    apply_mode_env(&mut cfg, mode_env)?;
    Ok(cfg)
}

/// Explains a read error, with the file's owner and mode when it exists but cannot be read.
pub fn read_error_reason(path: &Path, e: &std::io::Error) -> String {
    use std::os::unix::fs::MetadataExt;
    match std::fs::metadata(path) {
        Ok(m) if e.kind() == std::io::ErrorKind::PermissionDenied => format!(
            "{e} (mode {:04o}, owner uid {} gid {}; running as uid {})",
            m.mode() & 0o7777,
            m.uid(),
            m.gid(),
            nix::unistd::geteuid()
        ),
        _ => e.to_string(),
    }
}

/// `QUANTUM_WATCHDOG_MODE=observe|enforce` overrides `mode`; any other value is an error.
pub fn apply_mode_env(cfg: &mut Config, mode_env: Option<&str>) -> Result<(), ConfigError> {
    if let Some(v) = mode_env {
        cfg.mode = v
            .parse()
            .map_err(|m: String| ConfigError::invalid("environment", MODE_ENV, m))?;
    }
    Ok(())
}

/// Reads the Redis password: `$CREDENTIALS_DIRECTORY/redis-password` (systemd
/// `LoadCredential=`) first, then `redis.password_file`. A file that exists but cannot be read,
/// or is empty, is a configuration error naming its path (and its mode).
pub fn read_password(cfg: &RedisConfig) -> Result<Option<String>, ConfigError> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let p = Path::new(&dir).join("redis-password");
        if p.exists() {
            candidates.push(p);
        }
    }
    if let Some(p) = &cfg.password_file {
        candidates.push(p.clone());
    }
    let Some(p) = candidates.first() else {
        return Ok(None);
    };
    let file = p.display().to_string();
    let text = std::fs::read_to_string(p).map_err(|e| {
        ConfigError::invalid(&file, "redis.password_file", read_error_reason(p, &e))
    })?;
    let pw = text.trim_end_matches(['\n', '\r']);
    if pw.is_empty() {
        return Err(ConfigError::invalid(
            &file,
            "redis.password_file",
            "the file is empty; expected the password",
        ));
    }
    Ok(Some(pw.to_string()))
}
