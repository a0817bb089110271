//! `quantum-watchdog-exec`: the program `quantum-watchdog exec` becomes (the same process, by
//! `execve`) so that a wrapper beside every consumer maps only what it needs — no D-Bus, no
//! metrics server, no command-line parser. Its arguments are those `quantum-watchdog exec`
//! checked and passes on, as `model::exec_protocol` defines them (and tests both ways).
//!
//! Exit statuses as `quantum-watchdog exec`: the child's (or its signal), 2 for a configuration
//! that cannot be used, 1 for a failure before the child started.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use quantum_watchdog::adapters::redis::RedisClient;
use quantum_watchdog::config::{check_unit_name, read_secrets};
use quantum_watchdog::daemon::exec;
use quantum_watchdog::daemon::{AgentOptions, load_config};
use quantum_watchdog::model::exec_protocol::WrapperArgs;

/// The protocol's command line (`model::exec_protocol`), its unit name checked.
fn parse(it: impl Iterator<Item = OsString>) -> Result<WrapperArgs, String> {
    let w = WrapperArgs::parse(it).map_err(|e| e.to_string())?;
    if let Some(u) = &w.unit {
        check_unit_name(u).map_err(|e| format!("--unit {u:?}: {e}"))?;
    }
    Ok(w)
}

fn main() -> ExitCode {
    let args = match parse(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "quantum-watchdog exec: {e} (this program is run by `quantum-watchdog exec`)"
            );
            return ExitCode::from(2);
        }
    };
    quantum_watchdog::adapters::logging::init_level(args.verbose);
    let agent = AgentOptions {
        config: args.config.clone(),
        root: PathBuf::from("/"),
        user: args.user,
    };
    let cfg = load_config(&agent).and_then(|c| read_secrets(&c.redis).map(|s| (c, s)));
    let (cfg, secrets) = match cfg {
        Ok(c) => c,
        Err(e) => {
            eprintln!("quantum-watchdog: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    // A client the configuration cannot make (Sentinel, Cluster, TLS material) is wrong
    // configuration too: exit 2, as `check-config` says, before the command starts.
    if let Err(e) = RedisClient::check(&cfg.redis, &secrets) {
        eprintln!("quantum-watchdog: configuration error: [redis]: {e}");
        return ExitCode::from(2);
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let ran = match rt {
        Ok(rt) => rt.block_on(exec::run(&cfg, &secrets, args)),
        Err(e) => Err(anyhow::Error::new(e).context("cannot start the runtime")),
    };
    match ran {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("quantum-watchdog: error: {e:#}");
            ExitCode::from(1)
        }
    }
}
