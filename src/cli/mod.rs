//! The command line: the commands, what each runs (one file each), and the one place where
//! failures become exit statuses.

mod agent;
mod check_config;
mod recover;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use quantum_watchdog::config::{Config, Secrets, read_secrets};
use quantum_watchdog::daemon::{self, AgentOptions};

#[derive(Parser)]
#[command(
    name = "quantum-watchdog",
    version,
    about = "Restarts quantum-* units that are hung but \"active\", and recovers their Redis Streams consumers"
)]
pub struct Cli {
    /// Read this one file instead of the layered configuration
    /// (/etc|/run|/usr/lib/quantum-watchdog/config.toml and config.d/*.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Talk to the calling user's systemd manager on the session bus, not the system manager.
    #[arg(long, global = true)]
    user: bool,
    /// More log output.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
pub enum Failure {
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

/// Exit statuses: 0 ok; 2 the configuration or the command line is wrong; 1 a failure at run
/// time; `status` says 3 (UNKNOWN) for anything that is not a verdict.
pub fn exit(r: Result<u8, Failure>, is_status: bool) -> ExitCode {
    match r {
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

/// A command line clap rejects (help and version are no error).
pub fn usage_error(e: &clap::Error, is_status: bool) -> ExitCode {
    let _ = e.print();
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
        _ if is_status => ExitCode::from(3),
        _ => ExitCode::from(2),
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

/// Runs the command; returns its exit status.
pub fn run(cli: Cli) -> Result<u8, Failure> {
    if let Command::Completions { shell } = cli.command {
        return completions(shell);
    }
    let o = AgentOptions {
        config: cli.config.clone(),
        root: PathBuf::from("/"),
        user: cli.user,
    };
    let cfg = daemon::load_config(&o).map_err(|e| Failure::Config(e.to_string()))?;
    let secrets = read_secrets(&cfg.redis).map_err(|e| Failure::Config(e.to_string()))?;
    if let Command::CheckConfig = cli.command {
        return check_config::run(&cfg, &secrets);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(anyhow::Error::new(e).context("cannot start the runtime")))?;
    rt.block_on(dispatch(cli.command, o, cfg, secrets))
}

async fn dispatch(
    command: Command,
    o: AgentOptions,
    cfg: Config,
    secrets: Secrets,
) -> Result<u8, Failure> {
    match command {
        Command::Agent => agent::run(o, cfg, secrets).await,
        Command::Status {
            json,
            pipeline,
            watch,
        } => {
            let view = status::View {
                json,
                pipeline,
                watch,
            };
            status::run(&cfg, o.user, &secrets, view).await
        }
        Command::Recover { units, dry_run } => {
            recover::run(&cfg, o.user, &secrets, &units, dry_run).await
        }
        Command::CheckConfig | Command::Completions { .. } => Ok(0),
    }
}

fn completions(shell: clap_complete::Shell) -> Result<u8, Failure> {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "quantum-watchdog", &mut buf);
    out(&String::from_utf8_lossy(&buf))?;
    Ok(0)
}
