//! The command line: the commands, what each runs (one file each), and the one place where
//! failures become exit statuses.

mod agent;
mod check_config;
mod exec_wrapper;
mod history;
mod pause;
mod recover;
mod status;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use quantum_watchdog::adapters::redis::RedisClient;
use quantum_watchdog::config::{Config, Secrets, check_unit_name, read_secrets};
use quantum_watchdog::daemon::{self, AgentOptions};
use quantum_watchdog::model::exec_protocol::WrapperArgs;

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
        /// Show the hosts of the fleet: heartbeats, versions, vouched consumers, recovery leases.
        #[arg(long, conflicts_with = "pipeline")]
        fleet: bool,
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
    /// Hold every action on units back (they are still judged and shown) until resumed or
    /// for a while. Exit 4 if the caller may not.
    Pause {
        /// The units (no suffix: .service).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        units: Vec<String>,
        /// Every unit.
        #[arg(long)]
        all: bool,
        /// Resume by itself after this long (30m, 2h).
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_for)]
        duration: Option<std::time::Duration>,
        /// Why, for the log and status.
        #[arg(long, default_value = "")]
        reason: String,
    },
    /// Remove pauses. Exit 4 if the caller may not.
    Resume {
        /// The units (no suffix: .service).
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        units: Vec<String>,
        /// Every pause, `--all` ones too.
        #[arg(long)]
        all: bool,
    },
    /// Let units that gave up restart again: earlier restarts no longer count against their
    /// restart budget. Exit 4 if the caller may not.
    ResetBudget {
        /// The units (no suffix: .service).
        #[arg(required = true)]
        units: Vec<String>,
    },
    /// Run a consumer under systemd's watchdog (Type=notify, WatchdogSec=): READY once its
    /// consumer is in its group, WATCHDOG pings while it is not hung, WATCHDOG=trigger when it is.
    Exec {
        /// The unit (default: the one this process runs in).
        #[arg(long, value_name = "UNIT")]
        unit: Option<String>,
        /// READY=1 at the latest this long after the start, consumer seen or not.
        #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = parse_for)]
        ready_timeout: std::time::Duration,
        /// After a stop signal (SIGTERM, SIGINT) the child drains this long unwatched: the
        /// unit's TimeoutStopSec= (systemd honours WATCHDOG=trigger during a stop).
        #[arg(long, value_name = "DURATION", default_value = "90s", value_parser = parse_for)]
        stop_timeout: std::time::Duration,
        /// The command and its arguments (after `--`).
        #[arg(
            required = true,
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "COMMAND"
        )]
        command: Vec<std::ffi::OsString>,
    },
    /// Tell a unit's story from the journal: the agent's verdicts and actions, recovery
    /// sweeps, and systemd's starts and stops. Needs to read the journal (root, systemd-journal).
    History {
        /// The unit (no suffix: .service).
        unit: String,
        /// From when (journalctl's syntax: -1d, -2h, "2026-12-07 09:00", today).
        #[arg(
            long,
            value_name = "WHEN",
            default_value = "-1d",
            allow_hyphen_values = true
        )]
        since: String,
    },
    /// Validate and print the effective merged configuration.
    CheckConfig,
    /// Print a shell completion script (bash, zsh, fish).
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
}

impl Command {
    /// The command talks to Redis (`check-config` checks the client itself).
    fn reads_redis(&self) -> bool {
        matches!(
            self,
            Command::Agent
                | Command::Status { .. }
                | Command::Recover { .. }
                | Command::Exec { .. }
        )
    }
}

/// Why a command failed, which decides its exit status.
pub enum Failure {
    /// The configuration (a file, the environment, a secret it names) is wrong: exit 2.
    Config(String),
    /// Something failed at run time: exit 1.
    Runtime(anyhow::Error),
    /// The command line names something that cannot be: exit 2.
    Usage(String),
    /// The caller may not do this: exit 4.
    Denied(String),
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
        Err(Failure::Usage(e)) => {
            eprintln!("quantum-watchdog: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Denied(e)) => {
            eprintln!("quantum-watchdog: not permitted: {e}");
            ExitCode::from(4)
        }
    }
}

/// Whether a command line clap rejects names the `status` command: the subcommand clap finds
/// when it reads the line leniently (an argument that merely reads "status" does not count).
pub fn names_status(args: &[std::ffi::OsString]) -> bool {
    use clap::CommandFactory;
    let lenient = Cli::command()
        .ignore_errors(true)
        .try_get_matches_from(args);
    match lenient
        .ok()
        .and_then(|m| m.subcommand_name().map(str::to_string))
    {
        Some(name) => name == "status",
        // A bad option before the subcommand stops even a lenient read: then the first word
        // that is neither an option nor `--config`'s value names it.
        None => first_word(args) == Some("status"),
    }
}

/// The first argument after the program that is neither an option nor `--config`'s value.
fn first_word(args: &[std::ffi::OsString]) -> Option<&str> {
    let mut it = args.iter().skip(1).map(|a| a.to_str().unwrap_or("-"));
    while let Some(a) = it.next() {
        if a == "--config" {
            it.next();
        } else if !a.starts_with('-') {
            return Some(a);
        }
    }
    None
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

/// The configuration and its secrets, checked as far as `command` needs them: every error of
/// them is a configuration error (exit 2), a unit name `exec` could never run a usage error.
fn checked(command: &Command, o: &AgentOptions) -> Result<(Config, Secrets), Failure> {
    let cfg = daemon::load_config(o).map_err(|e| Failure::Config(e.to_string()))?;
    let secrets = read_secrets(&cfg.redis).map_err(|e| Failure::Config(e.to_string()))?;
    if let Command::Exec { unit: Some(u), .. } = command {
        check_unit_name(u).map_err(|e| Failure::Usage(format!("--unit {u:?}: {e}")))?;
    }
    if command.reads_redis() {
        // A client the configuration cannot make (Sentinel, Cluster, TLS material) is a
        // configuration error for every command, as `check-config` says it is.
        RedisClient::check(&cfg.redis, &secrets)
            .map_err(|e| Failure::Config(format!("[redis]: {e}")))?;
    }
    Ok((cfg, secrets))
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
    let (cfg, secrets) = checked(&cli.command, &o)?;
    let target = |units: Vec<String>, all: bool| match all {
        true => pause::Target::All,
        false => pause::Target::Units(units),
    };
    match cli.command {
        Command::CheckConfig => return check_config::run(&cfg, &secrets),
        Command::Pause {
            units,
            all,
            duration,
            reason,
        } => return pause::pause(&cfg, o.user, target(units, all), duration, reason),
        Command::Resume { units, all } => return pause::resume(&cfg, o.user, target(units, all)),
        Command::ResetBudget { units } => return pause::reset_budget(&cfg, o.user, &units),
        Command::Exec {
            unit,
            ready_timeout,
            stop_timeout,
            command,
        } => {
            let args = WrapperArgs {
                config: o.config.clone(),
                user: o.user,
                verbose: cli.verbose,
                unit,
                ready_timeout,
                stop_timeout,
                command,
            };
            return exec(&cfg, &secrets, args);
        }
        _ => {}
    }
    runtime()?.block_on(dispatch(cli.command, o, cfg, secrets))
}

/// `exec`: becomes the small wrapper program when there is one (the configuration was checked
/// above, its errors named here, exit 2; the wrapper reads it again), else runs in this one.
fn exec(cfg: &Config, secrets: &Secrets, args: WrapperArgs) -> Result<u8, Failure> {
    match exec_wrapper::program() {
        Some(small) => Err(Failure::Runtime(exec_wrapper::become_it(&small, &args))),
        None => Ok(runtime()?.block_on(daemon::exec::run(cfg, secrets, args))?),
    }
}

/// The single-threaded runtime a command runs on.
fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(anyhow::Error::new(e).context("cannot start the runtime")))
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
            fleet,
            watch,
        } => {
            let view = status::View {
                json,
                pipeline,
                fleet,
                watch,
            };
            status::run(&cfg, o.user, &secrets, view).await
        }
        Command::Recover { units, dry_run } => {
            recover::run(&cfg, o.user, &secrets, &units, dry_run).await
        }
        Command::History { unit, since } => history::run(&cfg, o.user, &unit, &since).await,
        Command::CheckConfig
        | Command::Exec { .. }
        | Command::Completions { .. }
        | Command::Pause { .. }
        | Command::Resume { .. }
        | Command::ResetBudget { .. } => Ok(0),
    }
}

/// `--for`: a duration of at least a second.
fn parse_for(s: &str) -> Result<std::time::Duration, String> {
    let d = quantum_watchdog::config::parse_duration(s)?;
    if d < std::time::Duration::from_secs(1) {
        return Err("at least 1s".into());
    }
    Ok(d)
}

fn completions(shell: clap_complete::Shell) -> Result<u8, Failure> {
    use clap::CommandFactory;
    let mut buf = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "quantum-watchdog", &mut buf);
    let mut text = String::from_utf8_lossy(&buf).into_owned();
    if shell == clap_complete::Shell::Bash {
        text = bash_hyphen_fix(&text);
    }
    out(&text)?;
    Ok(0)
}

/// clap_complete's bash script names a subcommand's case `quantum__subcmd__watchdog__…` but
/// sets `cmd` to `quantum__watchdog__…` for a hyphenated binary name (clap-rs/clap#6421), so
/// no subcommand's options ever complete: the cases are renamed to what `cmd` holds.
fn bash_hyphen_fix(script: &str) -> String {
    script.replace("quantum__subcmd__watchdog__", "quantum__watchdog__")
}
