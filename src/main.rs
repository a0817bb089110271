//! The `quantum-watchdog` command: parse, log, dispatch, exit status.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = match cli::Cli::try_parse_from(&args) {
        Ok(c) => c,
        Err(e) => return cli::usage_error(&e, cli::names_status(&args)),
    };
    // For `status`, anything that is not a verdict is UNKNOWN (3) to a monitoring system.
    let is_status = matches!(parsed.command, cli::Command::Status { .. });
    if !matches!(parsed.command, cli::Command::Completions { .. }) {
        quantum_watchdog::adapters::logging::init(parsed.verbose);
    }
    cli::exit(cli::run(parsed), is_status)
}
