//! `quantum-watchdog check-config`: validates (the files and the secrets they name were read
//! when this runs), builds the Redis client without connecting (so certificates and keys are
//! parsed), and prints the effective configuration, with the files it came from.

use quantum_watchdog::config::{Config, Secrets};
use quantum_watchdog::daemon::gather::World;

use super::{Failure, out};

pub fn run(cfg: &Config, secrets: &Secrets) -> Result<u8, Failure> {
    World::new(cfg, false, secrets).map_err(|e| Failure::Config(format!("[redis]: {e}")))?;
    let files: Vec<String> = cfg
        .sources
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let text = cfg
        .to_toml()
        .map_err(|e| anyhow::anyhow!("cannot print the configuration: {e}"))?;
    let from = if files.is_empty() {
        "built-in defaults".into()
    } else {
        files.join(", ")
    };
    let redis = cfg.redis.describe();
    out(&format!(
        "# effective configuration from: {from}\n# redis: {redis}\n{text}"
    ))?;
    Ok(0)
}
