//! `quantum-watchdog agent`: the daemon.

use quantum_watchdog::config::{Config, Secrets};
use quantum_watchdog::daemon::{self, AgentOptions};

use super::Failure;

pub async fn run(o: AgentOptions, cfg: Config, secrets: Secrets) -> Result<u8, Failure> {
    daemon::run(o, cfg, secrets).await?;
    Ok(0)
}
