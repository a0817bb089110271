//! The `quantum-watchdog` command line. Exit status 2 for any configuration error.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use quantum_watchdog::agent::{self, AgentOptions};
use quantum_watchdog::collect::World;
use quantum_watchdog::config::Mode;
use quantum_watchdog::streams::read_password;
use quantum_watchdog::{logging, recover, state, status};

#[derive(Parser)]
#[command(
    name = "quantum-watchdog",
    version,
    about = "Restarts quantum-* units that are hung but \"active\", and recovers their Redis Streams consumers"
)]
struct Cli {
    /// Read this one file instead of the layered configuration
    /// (/usr/lib/quantum-watchdog/config.d, /etc/quantum-watchdog/config.toml, /etc/quantum-watchdog/config.d).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Talk to the calling user's systemd manager on the session bus, not the system manager.
    #[arg(long, global = true)]
    user: bool,
    /// More log output.
    #[arg(short, long, global = true)]
    verbose: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the agent (under systemd as Type=notify).
    Agent,
    /// Show every watched unit, its consumer and the verdict. Exit 0 ok, 1 warning, 2 critical, 3 unknown.
    Status {
        /// Stable JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Show the flow through each [[pipeline]] and where it stops.
        #[arg(long)]
        pipeline: bool,
        /// Redraw every interval until interrupted (a terminal view).
        #[arg(long, conflicts_with = "json")]
        watch: bool,
    },
    /// One sweep of consumer recovery: hand off dead consumers' entries, delete empty dead and zombie consumers.
    Recover {
        /// Only the bindings of this unit (repeatable), e.g. `--unit %n` in a drop-in.
        #[arg(long = "unit", value_name = "UNIT")]
        units: Vec<String>,
        /// Show what would be done; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Validate and print the effective merged configuration.
    CheckConfig,
    /// Print a shell completion script (bash, zsh, fish).
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        use clap::CommandFactory;
        clap_complete::generate(
            shell,
            &mut Cli::command(),
            "quantum-watchdog",
            &mut std::io::stdout(),
        );
        return ExitCode::SUCCESS;
    }
    logging::init(cli.verbose);
    let o = AgentOptions {
        config: cli.config.clone(),
        root: PathBuf::from("/"),
        user: cli.user,
    };
    let cfg = match agent::load_config(&o) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("quantum-watchdog: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if let Command::CheckConfig = cli.command {
        let files: Vec<String> = cfg
            .sources
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        println!(
            "# effective configuration from: {}",
            if files.is_empty() {
                "built-in defaults".into()
            } else {
                files.join(", ")
            }
        );
        match toml::to_string_pretty(&cfg) {
            Ok(t) => print!("{t}"),
            Err(e) => {
                eprintln!("quantum-watchdog: cannot print the configuration: {e}");
                return ExitCode::from(1);
            }
        }
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("quantum-watchdog: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let r: anyhow::Result<u8> = rt.block_on(async move {
        match cli.command {
            Command::Agent => agent::run(o, cfg).await.map(|_| 0),
            Command::Status {
                json,
                pipeline,
                watch,
            } => {
                let pw = read_password(&cfg.redis).map_err(anyhow::Error::msg)?;
                let mut world = World::new(&cfg, cli.user, pw)
                    .context("redis configuration")?
                    .oneshot();
                let tty = std::io::stdout().is_terminal();
                loop {
                    let mut snap = world.snapshot(&cfg).await;
                    let agent_state = state::load(&state::state_file(&cfg, cli.user));
                    if let Some(u) = agent_state.as_ref().and_then(|a| a.unit.clone()) {
                        snap.self_unit = Some(u);
                    }
                    let st = status::build(&cfg, &snap, agent_state.as_ref());
                    let text = if json {
                        format!("{}\n", serde_json::to_string_pretty(&st)?)
                    } else if pipeline {
                        status::render_pipelines(&st, tty)
                    } else {
                        status::render(&st, tty)
                    };
                    if !watch {
                        print!("{text}");
                        return Ok(st.exit_code as u8);
                    }
                    // Clear the screen and redraw.
                    print!("\x1b[H\x1b[2J{text}");
                    use std::io::Write as _;
                    let _ = std::io::stdout().flush();
                    tokio::select! {
                        _ = tokio::time::sleep(cfg.interval.0) => {}
                        _ = tokio::signal::ctrl_c() => return Ok(st.exit_code as u8),
                    }
                }
            }
            Command::Recover { units, dry_run } => {
                let mode = if dry_run { Mode::Observe } else { cfg.mode };
                let pw = read_password(&cfg.redis).map_err(anyhow::Error::msg)?;
                let mut world = World::new(&cfg, cli.user, pw)
                    .context("redis configuration")?
                    .oneshot();
                recover::sweep(&cfg, &mut world, &units, mode).await;
                Ok(0)
            }
            Command::CheckConfig | Command::Completions { .. } => Ok(0),
        }
    });
    match r {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("quantum-watchdog: {e:#}");
            // A secret or file the service cannot read is a configuration problem.
            ExitCode::from(2)
        }
    }
}
