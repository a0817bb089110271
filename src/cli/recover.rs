//! `quantum-watchdog recover`: one sweep of consumer recovery.

use anyhow::Context;

use quantum_watchdog::config::{Config, Mode, Secrets};
use quantum_watchdog::daemon::gather::World;
use quantum_watchdog::daemon::sweep;

use super::Failure;

pub async fn run(
    cfg: &Config,
    user: bool,
    secrets: &Secrets,
    units: &[String],
    dry_run: bool,
) -> Result<u8, Failure> {
    let mode = if dry_run { Mode::Observe } else { cfg.mode };
    let mut world = World::new(cfg, user, secrets)
        .context("redis configuration")?
        .oneshot();
    sweep::sweep(cfg, &mut world, units, mode).await;
    Ok(0)
}
