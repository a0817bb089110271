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

/// Why a command failed, which decides its exit status.
enum Failure {
    /// The configuration (a file, the environment, a secret it names) is wrong: exit 2.
    Config(String),
    /// Something failed at run time: exit 1.
    Runtime(anyhow::Error),
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Runtime(e)
    }
}

/// Writes to stdout; a reader that went away (`status | head -1`) is not an error.
fn out(text: &str) -> Result<(), Failure> {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Failure::Runtime(
            anyhow::Error::new(e).context("writing to stdout"),
        )),
    }
}

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // For `status`, anything that is not a verdict is UNKNOWN (3) to a monitoring system.
    let is_status = args.iter().skip(1).any(|a| a == "status");
    let cli = match Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            use clap::error::ErrorKind;
            return match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ if is_status => ExitCode::from(3),
                _ => ExitCode::from(2),
            };
        }
    };
    match run(cli) {
        Ok(code) => ExitCode::from(code),
        Err(Failure::Config(e)) => {
            eprintln!("quantum-watchdog: configuration error: {e}");
            ExitCode::from(if is_status { 3 } else { 2 })
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("quantum-watchdog: error: {e:#}");
            ExitCode::from(if is_status { 3 } else { 1 })
        }
    }
}

fn run(cli: Cli) -> Result<u8, Failure> {
    if let Command::Completions { shell } = cli.command {
        use clap::CommandFactory;
        let mut buf = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "quantum-watchdog", &mut buf);
        out(&String::from_utf8_lossy(&buf))?;
        return Ok(0);
    }
    logging::init(cli.verbose);
    let o = AgentOptions {
        config: cli.config.clone(),
        root: PathBuf::from("/"),
        user: cli.user,
    };
    let cfg = agent::load_config(&o).map_err(|e| Failure::Config(e.to_string()))?;
    if let Command::CheckConfig = cli.command {
        let files: Vec<String> = cfg
            .sources
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let text = cfg
            .to_toml()
            .map_err(|e| anyhow::anyhow!("cannot print the configuration: {e}"))?;
        out(&format!(
            "# effective configuration from: {}\n{text}",
            if files.is_empty() {
                "built-in defaults".into()
            } else {
                files.join(", ")
            }
        ))?;
        return Ok(0);
    }
    let password = read_password(&cfg.redis).map_err(Failure::Config)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    rt.block_on(async move {
        match cli.command {
            Command::Agent => agent::run(o, cfg, password)
                .await
                .map(|_| 0)
                .map_err(Failure::from),
            Command::Status {
                json,
                pipeline,
                watch,
            } => status_command(&cfg, cli.user, password, json, pipeline, watch).await,
            Command::Recover { units, dry_run } => {
                let mode = if dry_run { Mode::Observe } else { cfg.mode };
                let mut world = World::new(&cfg, cli.user, password)
                    .context("redis configuration")?
                    .oneshot();
                recover::sweep(&cfg, &mut world, &units, mode).await;
                Ok(0)
            }
            Command::CheckConfig | Command::Completions { .. } => Ok(0),
        }
    })
}

async fn status_command(
    cfg: &quantum_watchdog::config::Config,
    user: bool,
    password: Option<String>,
    json: bool,
    pipeline: bool,
    watch: bool,
) -> Result<u8, Failure> {
    let mut world = World::new(cfg, user, password)
        .context("redis configuration")?
        .oneshot();
    let tty = std::io::stdout().is_terminal();
    let state_path = state::state_file(cfg, user);
    loop {
        let agent_state = state::load(&state_path);
        let mem = agent_state
            .as_ref()
            .map(|a| a.memory.clone())
            .unwrap_or_default();
        let mut snap = world.snapshot(cfg, &mem).await;
        if let Some(u) = agent_state.as_ref().and_then(|a| a.unit.clone()) {
            snap.self_unit = Some(u);
        }
        let look = agent_state.as_ref().map(|a| status::AgentLook {
            state: a,
            pid_alive: quantum_watchdog::liveness::pid_alive(a.pid) == Some(true),
        });
        let st = status::build(cfg, &snap, look, &state_path);
        let text = if json {
            format!(
                "{}\n",
                serde_json::to_string_pretty(&st).context("status as JSON")?
            )
        } else if pipeline {
            status::render_pipelines(&st, tty)
        } else {
            status::render(&st, tty)
        };
        if !watch {
            out(&text)?;
            return Ok(st.exit_code as u8);
        }
        // Clear the screen and redraw.
        out(&format!("\x1b[H\x1b[2J{text}"))?;
        tokio::select! {
            _ = tokio::time::sleep(cfg.interval.0) => {}
            _ = tokio::signal::ctrl_c() => return Ok(st.exit_code as u8),
        }
    }
}
