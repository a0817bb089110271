//! `quantum-watchdog status`: one look (or a redrawn view) at every watched unit.

use std::io::IsTerminal;

use anyhow::Context;

use quantum_watchdog::adapters::liveness::pid_alive;
use quantum_watchdog::adapters::state_file;
use quantum_watchdog::config::{Config, Secrets};
use quantum_watchdog::daemon::gather::World;
use quantum_watchdog::daemon::load_state;
use quantum_watchdog::report::status::{self, AgentLook};

use super::{Failure, out};

/// How to show it.
pub struct View {
    pub json: bool,
    pub pipeline: bool,
    pub fleet: bool,
    pub watch: bool,
}

pub async fn run(cfg: &Config, user: bool, secrets: &Secrets, view: View) -> Result<u8, Failure> {
    let mut world = World::new(cfg, user, secrets)
        .context("redis configuration")?
        .oneshot();
    use quantum_watchdog::report::terminal;
    let is_tty = std::io::stdout().is_terminal();
    let term = std::env::var("TERM").ok();
    let no_color = std::env::var("NO_COLOR").ok();
    let tty = terminal::colors(is_tty, no_color.as_deref(), term.as_deref());
    let clear = terminal::may_clear(is_tty, term.as_deref());
    let state_path = state_file::state_file(cfg, user);
    loop {
        let agent = load_state(&state_path);
        let mem = agent.as_ref().map(|a| a.memory.clone()).unwrap_or_default();
        let mut snap = world.snapshot(cfg, &mem).await;
        if let Some(u) = agent.as_ref().and_then(|a| a.unit.clone()) {
            snap.self_unit = Some(u);
        }
        let look = agent.as_ref().map(|a| AgentLook {
            state: a,
            pid_alive: pid_alive(a.pid) == Some(true),
        });
        let st = status::build(cfg, &snap, look, &state_path);
        let text = if view.json {
            let json = serde_json::to_string_pretty(&st).context("status as JSON")?;
            format!("{json}\n")
        } else if view.pipeline {
            status::render_pipelines(&st, tty)
        } else if view.fleet {
            status::render_fleet(&st, tty)
        } else {
            status::render(&st, tty)
        };
        if !view.watch {
            out(&text)?;
            return Ok(st.exit_code as u8);
        }
        let at = jiff::Zoned::now()
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string();
        out(&terminal::watch_frame(&text, clear, &at))?;
        tokio::select! {
            _ = tokio::time::sleep(cfg.interval.0) => {}
            _ = tokio::signal::ctrl_c() => return Ok(st.exit_code as u8),
        }
    }
}
