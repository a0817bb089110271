//! `quantum-watchdog-exec`: the program `quantum-watchdog exec` becomes (the same process, by
//! `execve`) so that a wrapper beside every consumer maps only what it needs — no D-Bus, no
//! metrics server, no command-line parser. Its arguments are those `quantum-watchdog exec`
//! checked and passes on, in this order and no other:
//!
//! ```text
//! quantum-watchdog-exec [--config FILE] [--user] [--verbose] [--unit UNIT]
//!                       --ready-timeout-ms MS [--stop-timeout-ms MS] -- COMMAND [ARG]...
//! ```
//!
//! Exit statuses as `quantum-watchdog exec`: the child's (or its signal), 2 for a configuration
//! that cannot be used, 1 for a failure before the child started.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use quantum_watchdog::config::read_secrets;
use quantum_watchdog::daemon::exec::{self, ExecOptions};
use quantum_watchdog::daemon::{AgentOptions, load_config};

/// What the arguments say.
struct Args {
    agent: AgentOptions,
    verbose: bool,
    exec: ExecOptions,
}

fn parse(mut it: impl Iterator<Item = OsString>) -> Result<Args, String> {
    let mut a = Args {
        agent: AgentOptions {
            config: None,
            root: PathBuf::from("/"),
            user: false,
        },
        verbose: false,
        exec: ExecOptions {
            unit: None,
            ready_timeout: Duration::ZERO,
            stop_timeout: Duration::from_secs(90),
            user: false,
            argv: Vec::new(),
        },
    };
    let mut timeout = None;
    loop {
        let arg = it.next().ok_or("no `--` before the command")?;
        let value = |it: &mut dyn Iterator<Item = OsString>| {
            it.next()
                .ok_or_else(|| format!("{} needs a value", arg.to_string_lossy()))
        };
        match arg.to_str() {
            Some("--config") => a.agent.config = Some(value(&mut it)?.into()),
            Some("--user") => a.agent.user = true,
            Some("--verbose") => a.verbose = true,
            Some("--unit") => a.exec.unit = Some(value(&mut it)?.to_string_lossy().into_owned()),
            Some("--ready-timeout-ms") => {
                let v = value(&mut it)?;
                let ms = v.to_str().and_then(|s| s.parse::<u64>().ok());
                timeout = Some(ms.ok_or("--ready-timeout-ms: a number of milliseconds")?);
            }
            Some("--stop-timeout-ms") => {
                let v = value(&mut it)?;
                let ms = v.to_str().and_then(|s| s.parse::<u64>().ok());
                let ms = ms.ok_or("--stop-timeout-ms: a number of milliseconds")?;
                a.exec.stop_timeout = Duration::from_millis(ms);
            }
            Some("--") => break,
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    a.exec.ready_timeout = Duration::from_millis(timeout.ok_or("--ready-timeout-ms is required")?);
    a.exec.user = a.agent.user;
    a.exec.argv = it.collect();
    if a.exec.argv.is_empty() {
        return Err("no command after `--`".into());
    }
    Ok(a)
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
    let cfg = load_config(&args.agent).and_then(|c| read_secrets(&c.redis).map(|s| (c, s)));
    let (cfg, secrets) = match cfg {
        Ok(c) => c,
        Err(e) => {
            eprintln!("quantum-watchdog: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    let ran = match rt {
        Ok(rt) => rt.block_on(exec::run(&cfg, &secrets, args.exec)),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &[&str]) -> Result<Args, String> {
        parse(s.iter().map(OsString::from))
    }

    #[test]
    fn takes_what_exec_passes_on() {
        let a = args(&[
            "--config",
            "/c.toml",
            "--user",
            "--verbose",
            "--unit",
            "x.service",
            "--ready-timeout-ms",
            "1500",
            "--stop-timeout-ms",
            "30000",
            "--",
            "sh",
            "-c",
            "--unit",
        ])
        .unwrap();
        assert_eq!(a.agent.config, Some(PathBuf::from("/c.toml")));
        assert!(a.agent.user && a.exec.user && a.verbose);
        assert_eq!(a.exec.unit.as_deref(), Some("x.service"));
        assert_eq!(a.exec.ready_timeout, Duration::from_millis(1500));
        assert_eq!(a.exec.stop_timeout, Duration::from_secs(30));
        // After `--` everything is the command's, options included.
        assert_eq!(a.exec.argv, ["sh", "-c", "--unit"]);
    }

    #[test]
    fn refuses_what_exec_never_passes() {
        for (argv, why) in [
            (&["--ready-timeout-ms", "10"][..], "no `--`"),
            (
                &["--ready-timeout-ms", "10", "sh"][..],
                "unexpected argument",
            ),
            (&["--", "sh"][..], "--ready-timeout-ms is required"),
            (
                &["--ready-timeout-ms", "1s", "--", "sh"][..],
                "milliseconds",
            ),
            (&["--ready-timeout-ms", "10", "--"][..], "no command"),
            (
                &["-v", "--ready-timeout-ms", "10", "--", "sh"][..],
                "unexpected argument",
            ),
            (&["--unit"][..], "--unit needs a value"),
            (
                &[
                    "--ready-timeout-ms",
                    "1",
                    "--stop-timeout-ms",
                    "x",
                    "--",
                    "sh",
                ][..],
                "--stop-timeout-ms: a number",
            ),
        ] {
            let e = args(argv).err().unwrap_or_default();
            assert!(e.contains(why), "{argv:?}: {e}");
        }
    }
}
