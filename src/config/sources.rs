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

/// The secrets and certificates a Redis connection needs, read once at start (and reload).
#[derive(Clone, Default)]
pub struct Secrets {
    /// The data nodes' password.
    pub password: Option<String>,
    /// The Sentinels' password.
    pub sentinel_password: Option<String>,
    /// The CA to verify the server with (PEM), and the file it came from.
    pub ca: Option<(PathBuf, Vec<u8>)>,
    /// The client certificate and key for mutual TLS (PEM).
    pub client: Option<(Vec<u8>, Vec<u8>)>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secrets themselves.
        f.debug_struct("Secrets")
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field(
                "sentinel_password",
                &self.sentinel_password.as_ref().map(|_| "***"),
            )
            .field("ca", &self.ca.as_ref().map(|(p, _)| p))
            .field("client", &self.client.as_ref().map(|_| "***"))
            .finish()
    }
}

/// Reads every secret `[redis]` names. Each comes from `$CREDENTIALS_DIRECTORY` (systemd
/// `LoadCredential=`) first, then from its configured file; a file that cannot be read, or is
/// empty, is a configuration error naming its path (and its mode).
pub fn read_secrets(cfg: &RedisConfig) -> Result<Secrets, ConfigError> {
    let text =
        |cred: &str, file: Option<&PathBuf>, key: &str| -> Result<Option<String>, ConfigError> {
            Ok(read_secret(cred, file, key)?.map(|(_, b)| {
                String::from_utf8_lossy(&b)
                    .trim_end_matches(['\n', '\r'])
                    .to_string()
            }))
        };
    let sentinel_file = cfg.sentinel.as_ref().and_then(|s| s.password_file.as_ref());
    let cert = read_secret(
        "redis-tls-cert",
        cfg.tls.cert_file.as_ref(),
        "redis.tls.cert_file",
    )?;
    let key = read_secret(
        "redis-tls-key",
        cfg.tls.key_file.as_ref(),
        "redis.tls.key_file",
    )?;
    let ca = read_secret(
        "redis-tls-ca",
        cfg.tls.ca_file.as_ref(),
        "redis.tls.ca_file",
    )?;
    pem_check(ca.as_ref(), "redis.tls.ca_file", Pem::Certificates)?;
    pem_check(cert.as_ref(), "redis.tls.cert_file", Pem::Certificates)?;
    pem_check(key.as_ref(), "redis.tls.key_file", Pem::Key)?;
    Ok(Secrets {
        password: text(
            "redis-password",
            cfg.password_file.as_ref(),
            "redis.password_file",
        )?,
        sentinel_password: text(
            "redis-sentinel-password",
            sentinel_file,
            "redis.sentinel.password_file",
        )?,
        ca,
        client: cert.zip(key).map(|((_, c), (_, k))| (c, k)),
    })
}

/// What a PEM file must hold.
enum Pem {
    /// One or more certificates.
    Certificates,
    /// One private key (PKCS#8, PKCS#1 or SEC1).
    Key,
}

/// A TLS file that does not hold what it should is a configuration error naming it.
fn pem_check(f: Option<&(PathBuf, Vec<u8>)>, key: &str, want: Pem) -> Result<(), ConfigError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let Some((path, bytes)) = f else {
        return Ok(());
    };
    let (ok, expected) = match want {
        Pem::Certificates => {
            let certs: Result<Vec<_>, _> = CertificateDer::pem_slice_iter(bytes).collect();
            (
                certs.is_ok_and(|c| !c.is_empty()),
                "PEM certificates (-----BEGIN CERTIFICATE-----)",
            )
        }
        Pem::Key => (
            PrivateKeyDer::from_pem_slice(bytes).is_ok(),
            "a PEM private key (-----BEGIN PRIVATE KEY-----, RSA or EC)",
        ),
    };
    if ok {
        return Ok(());
    }
    Err(ConfigError::invalid(
        &path.display().to_string(),
        key,
        format!("expected {expected}"),
    ))
}

/// One secret: the credential `cred` if systemd passed it, else `file`.
fn read_secret(
    cred: &str,
    file: Option<&PathBuf>,
    key: &str,
) -> Result<Option<(PathBuf, Vec<u8>)>, ConfigError> {
    let from_credentials = std::env::var_os("CREDENTIALS_DIRECTORY")
        .map(|d| Path::new(&d).join(cred))
        .filter(|p| p.exists());
    let Some(p) = from_credentials.or_else(|| file.cloned()) else {
        return Ok(None);
    };
    let name = p.display().to_string();
    let bytes = std::fs::read(&p)
        .map_err(|e| ConfigError::invalid(&name, key, read_error_reason(&p, &e)))?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ConfigError::invalid(
            &name,
            key,
            "the file is empty; expected the secret",
        ));
    }
    Ok(Some((p, bytes)))
}

/// Reads the Redis password alone (see [`read_secrets`]).
pub fn read_password(cfg: &RedisConfig) -> Result<Option<String>, ConfigError> {
    Ok(read_secrets(cfg)?.password)
}
