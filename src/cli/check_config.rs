//! `quantum-watchdog check-config`: validates (already done when this runs) and prints the
//! effective configuration, with the files it came from.

use quantum_watchdog::config::Config;

use super::{Failure, out};

pub fn run(cfg: &Config) -> Result<u8, Failure> {
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
    out(&format!("# effective configuration from: {from}\n{text}"))?;
    Ok(0)
}
