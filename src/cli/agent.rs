//! `quantum-watchdog agent`: the daemon.

use quantum_watchdog::config::Config;
use quantum_watchdog::daemon::{self, AgentOptions};

use super::Failure;

pub async fn run(o: AgentOptions, cfg: Config, password: Option<String>) -> Result<u8, Failure> {
    daemon::run(o, cfg, password).await?;
    Ok(0)
}
