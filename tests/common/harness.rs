//! Running a test inside a private systemd user manager (tests/support/sd-harness.sh, its
//! own mount and PID namespace): outside the namespace a test re-runs its own binary,
//! filtered to itself, under the script; inside, it runs the body. Without root or the
//! packages the test says so and passes as skipped — except under `CI=true`, where it fails.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use super::env::Env;
use super::server::Server;

pub fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_quantum-watchdog"))
}

/// `target/<profile>/examples/qw-consumer`, built by `cargo test` with the examples.
pub fn consumer_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples/qw-consumer");
    assert!(
        p.exists(),
        "{} missing: run `cargo test` (it builds the examples)",
        p.display()
    );
    p
}

/// What is missing for tests that need the real parts, if anything.
fn missing_prerequisites(server: Server) -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some("root (for mount/PID namespaces and cgroups)".into());
    }
    for (tool, pkg) in [
        ("unshare", "util-linux"),
        ("script", "bsdutils"),
        ("dbus-daemon", "dbus"),
    ] {
        if which(tool).is_none() {
            return Some(format!("{tool} (apt-get install {pkg})"));
        }
    }
    if !Path::new("/usr/lib/systemd/user/dbus.socket").exists() {
        return Some("dbus-user-session (apt-get install dbus-user-session)".into());
    }
    if server == Server::Redis70 && which("redis-server").is_none() {
        return Some("redis-server (apt-get install redis-server)".into());
    }
    None
}

pub fn which(tool: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(tool))
        .find(|p| p.is_file())
}

/// Runs `body` inside a private systemd user manager. `name` is the test's full path
/// (`module::fn`), as libtest filters it.
pub fn in_harness(name: &str, server: Server, body: impl FnOnce(&mut Env)) {
    in_harness_with(name, server, false, body)
}

/// As [`in_harness`]; with `journald`, a private systemd-journald runs too and the manager and
/// its units log to it.
pub fn in_harness_with(name: &str, server: Server, journald: bool, body: impl FnOnce(&mut Env)) {
    run_harness(name, server, journald, false, None, body)
}

/// As [`in_harness`], on a host of its own name (a UTS namespace): host A of a fleet.
pub fn in_harness_as(name: &str, server: Server, host: &str, body: impl FnOnce(&mut Env)) {
    run_harness(name, server, false, false, Some(host), body)
}

/// As [`in_harness`], with no other harness test running meanwhile: for tests that measure
/// the server's time per call (SLOWLOG), which a busy machine would inflate.
pub fn in_harness_alone(name: &str, server: Server, body: impl FnOnce(&mut Env)) {
    run_harness(name, server, false, true, None, body)
}

/// Every harness test holds a lock on one file while it runs: shared, or exclusive `alone`.
fn harness_lock(alone: bool) -> nix::fcntl::Flock<std::fs::File> {
    use nix::fcntl::{Flock, FlockArg};
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(std::env::temp_dir().join("qw-harness.lock"))
        .unwrap();
    let how = if alone {
        FlockArg::LockExclusive
    } else {
        FlockArg::LockShared
    };
    Flock::lock(f, how).map_err(|(_, e)| e).unwrap()
}

fn run_harness(
    name: &str,
    server: Server,
    journald: bool,
    alone: bool,
    host: Option<&str>,
    body: impl FnOnce(&mut Env),
) {
    if std::env::var_os("QW_IN_NS").is_some() {
        let mut env = Env::new(server);
        body(&mut env);
        return;
    }
    if let Some(what) = missing_prerequisites(server) {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{name} needs {what}; under CI=true this is a failure, not a skip");
        }
        eprintln!("SKIPPED {name}: needs {what}");
        return;
    }
    let log = std::env::temp_dir().join(format!(
        "qw-test-{}-{}.log",
        name.replace("::", "-"),
        std::process::id()
    ));
    let out = std::fs::File::create(&log).unwrap();
    let _lock = harness_lock(alone);
    let started = Instant::now();
    let mut cmd = Command::new(manifest().join("tests/support/sd-harness.sh"));
    if journald {
        cmd.arg("--journald");
    }
    if let Some(h) = host {
        cmd.env("QW_HOSTNAME", h);
    }
    let status = cmd
        .arg("--")
        .arg(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads", "1"])
        .stdin(Stdio::null())
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .status()
        .expect("run tests/support/sd-harness.sh");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    // Measurements are printed for the record (see the closing notes in the README).
    for l in text.lines().filter(|l| l.starts_with("MEASURE ")) {
        eprintln!("{l}");
    }
    let ran = text.contains("1 passed");
    if !status.success() || !ran {
        panic!(
            "{name} failed in the harness after {:.1}s (log {}):\n{}",
            started.elapsed().as_secs_f64(),
            log.display(),
            tail(&text, 200)
        );
    }
    let _ = std::fs::remove_file(&log);
}

pub fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}
