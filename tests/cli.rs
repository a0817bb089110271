//! Scenario 8 and the command line: every bad configuration exits 2 (3 for `status`), names
//! the file and the key, and changes nothing; exit codes, broken pipes, secrets never printed,
//! and a metrics socket that survives a flood. These run anywhere (no root, no servers).

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_quantum-watchdog"))
}

/// A private directory per call (tests run in parallel).
fn scratch() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "qw-cli-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run(config: &str, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let dir = scratch();
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, config).unwrap();
    let _ = std::fs::create_dir_all(&dir);
    let mut cmd = Command::new(bin());
    cmd.arg("--config")
        .arg(&file)
        .args(args)
        .env_remove("QUANTUM_WATCHDOG_MODE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn bad_configurations_exit_2_naming_file_and_key() {
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)]);
    let cases: &[Case] = &[
        ("wrong type", "interval = 5\n", &[]),
        ("unknown key", "[defaults]\nhung_afterr = \"5m\"\n", &[]),
        (
            "bad duration",
            "[defaults]\nhung_after = \"five minutes\"\n",
            &[],
        ),
        ("bad mode", "mode = \"on\"\n", &[]),
        (
            "duration out of range",
            "[defaults]\nstartup_grace = \"18446744073710s\"\n",
            &[],
        ),
        (
            "bad mode env",
            "mode = \"observe\"\n",
            &[("QUANTUM_WATCHDOG_MODE", "enforcing")],
        ),
        (
            "bad template",
            "[[watch]]\nunit = \"quantum-x.service\"\nstream = \"s\"\ngroup = \"g\"\nconsumer = \"x-{host}\"\n",
            &[],
        ),
    ];
    let keys = [
        "interval",
        "defaults",
        "defaults.hung_after",
        "mode",
        "defaults.startup_grace",
        "QUANTUM_WATCHDOG_MODE",
        "watch[0].consumer",
    ];
    for ((what, text, env), key) in cases.iter().zip(keys) {
        for cmd in [
            &["check-config"][..],
            &["status"],
            &["recover", "--dry-run"],
            &["agent"],
        ] {
            let (rc, out, err) = run(text, env, cmd);
            // For status anything that is not a verdict is UNKNOWN to a monitoring system.
            let want = if cmd[0] == "status" { 3 } else { 2 };
            assert_eq!(rc, want, "{what} / {cmd:?}: exit {rc}\n{out}{err}");
            assert!(
                err.contains("configuration error"),
                "{what} / {cmd:?}: {err}"
            );
            assert!(
                err.contains(key),
                "{what} / {cmd:?}: should name {key}: {err}"
            );
            if !env.iter().any(|(k, _)| *k == "QUANTUM_WATCHDOG_MODE") {
                assert!(
                    err.contains("bad.toml"),
                    "{what}: should name the file: {err}"
                );
            }
            assert!(out.is_empty(), "{what} / {cmd:?}: printed {out}");
        }
    }
}

#[test]
fn check_config_prints_the_merged_configuration() {
    let (rc, out, err) = run(
        "mode = \"enforce\"\nredis.url = \"redis://:s3cret@127.0.0.1:6379/0\"\n[[watch]]\nunit = \"quantum-x.service\"\nstream = \"s\"\ngroup = \"g\"\nconsumer = \"x-{hostname}-{pid}\"\nhung_after = \"90s\"\n",
        &[],
        &["check-config"],
    );
    assert_eq!(rc, 0, "{err}");
    assert!(out.contains("mode = \"enforce\""), "{out}");
    assert!(out.contains("hung_after = \"1m 30s\""), "{out}");
    assert!(out.contains("consumer = \"x-{hostname}-{pid}\""), "{out}");
    assert!(
        !out.contains("s3cret") && !err.contains("s3cret"),
        "a password is never printed: {out}"
    );
    // The environment overrides the mode.
    let (rc, out, _) = run(
        "mode = \"enforce\"\n",
        &[("QUANTUM_WATCHDOG_MODE", "observe")],
        &["check-config"],
    );
    assert_eq!(rc, 0);
    assert!(out.contains("mode = \"observe\""), "{out}");
}

#[test]
fn unreadable_or_empty_password_file_is_a_configuration_error() {
    let dir = scratch();
    let missing = dir.join("missing-password");
    let empty = dir.join("empty-password");
    std::fs::write(&empty, "\n").unwrap();
    for pw in [&missing, &empty] {
        let cfg = format!(
            "redis.password_file = \"{}\"\nredis.url = \"redis://127.0.0.1:1/0\"\n",
            pw.display()
        );
        for (cmd, want) in [("status", 3), ("agent", 2), ("recover", 2)] {
            let (rc, _, err) = run(&cfg, &[], &[cmd]);
            assert_eq!(rc, want, "{cmd}: {err}");
            let name = pw.file_name().unwrap().to_str().unwrap();
            assert!(
                err.contains(name) && err.contains("password_file"),
                "{cmd}: {err}"
            );
        }
    }
    let (_, _, err) = run(
        &format!("redis.password_file = \"{}\"\n", empty.display()),
        &[],
        &["agent"],
    );
    assert!(err.contains("empty"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Redis client the configuration cannot make (TLS material that does not parse) is a
/// configuration error for every command that talks to Redis, as `check-config` says: 2, and
/// UNKNOWN (3) for `status`. Whether a command is `status` is read from the parsed command,
/// not guessed from its words: `pause status` is no `status`.
#[test]
fn every_configuration_error_is_one_exit_status() {
    let dir = scratch();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, "not a certificate\n").unwrap();
    let cfg = format!(
        "redis.url = \"rediss://127.0.0.1:1/0\"\nredis.tls.ca_file = \"{}\"\n",
        ca.display()
    );
    for (args, want) in [
        (&["check-config"][..], 2),
        (&["agent"][..], 2),
        (&["recover"][..], 2),
        (&["status"][..], 3),
        (&["exec", "--", "true"][..], 2),
    ] {
        let (rc, out, err) = run(&cfg, &[], args);
        assert_eq!(rc, want, "{args:?}: {out}{err}");
        assert!(err.contains("configuration error"), "{args:?}: {err}");
    }
    let broken = "redis.password_file = \"/nonexistent/password\"\n";
    let (rc, out, err) = run(broken, &[], &["pause", "status"]);
    assert_eq!(rc, 2, "{out}{err}");
    // A unit name exec could never run as is a usage error, before anything starts.
    let ok = "redis.url = \"redis://127.0.0.1:1/0\"\n";
    for unit in ["", "not a unit", "x.bogus"] {
        let (rc, out, err) = run(ok, &[], &["exec", "--unit", unit, "--", "true"]);
        assert_eq!(rc, 2, "{unit:?}: {out}{err}");
        assert!(err.contains("--unit"), "{unit:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn exit_codes_say_what_failed() {
    let ok = "redis.url = \"redis://127.0.0.1:1/0\"\nredis.timeout = \"200ms\"\n";
    // Usage errors: UNKNOWN for status, 2 elsewhere; help is no error.
    for (args, want) in [
        (&["status", "--bogus"][..], 3),
        (&["--bogus", "status"][..], 3),
        (&["-vv", "status"][..], 3),
        (&["--bogus", "pause", "status"][..], 2),
        (&["status", "--json", "--watch"][..], 3),
        (&["recover", "--bogus"][..], 2),
        (&["no-such-command"][..], 2),
        (&["--help"][..], 0),
        (&["status", "--help"][..], 0),
    ] {
        let (rc, out, err) = run(ok, &[], args);
        assert_eq!(rc, want, "{args:?}: {out}{err}");
    }
    // A runtime failure (stdout cannot be written) is 1, with a message saying so.
    let out = Command::new(bin())
        .args(["completions", "bash"])
        .stdout(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec {} completions bash >/dev/full",
            bin().display()
        ))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("error:") && err.contains("stdout"), "{err}");
}

#[test]
fn a_reader_that_goes_away_is_no_error() {
    let dir = scratch();
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        "redis.url = \"redis://127.0.0.1:1/0\"\nredis.timeout = \"200ms\"\ndbus_timeout = \"200ms\"\n",
    )
    .unwrap();
    // `true` exits before status writes: every write meets a closed pipe.
    for tail in ["true", "head -c1 >/dev/null"] {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "DBUS_SESSION_BUS_ADDRESS=unix:path=/nonexistent {} --user --config {} status | {tail}; echo \"rc=${{PIPESTATUS[0]}}\"",
                bin().display(),
                cfg.display()
            ))
            .output()
            .unwrap();
        let (o, e) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            o.contains("rc=3"),
            "{tail}: the verdict's exit code, not 101: {o}{e}"
        );
        assert!(
            !e.contains("panicked") && !e.contains("Broken pipe"),
            "{tail}: {e}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn no_secret_is_ever_printed() {
    const SECRET: &str = "Sup3r-s3cret";
    let dir = scratch();
    let urls = [
        format!("redis://:{SECRET}@127.0.0.1:1/0"),
        format!("redis://user:{SECRET}@with@127.0.0.1:1/0"),
        format!("unix://{}/none.sock?pass={SECRET}", dir.display()),
        format!(
            "redis+unix://{}/none.sock?user=u&password={SECRET}",
            dir.display()
        ),
    ];
    for url in &urls {
        let cfg = format!(
            "redis.url = \"{url}\"\nredis.timeout = \"200ms\"\ndbus_timeout = \"200ms\"\nmetrics.listen = \"\"\nstate_dir = \"{}\"\n",
            dir.display()
        );
        let env = [("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")];
        let mut seen = String::new();
        for args in [
            &["check-config"][..],
            &["--user", "status"],
            &["--user", "status", "--json"],
            &["--user", "-v", "recover"],
            &["--user", "-v", "recover", "--dry-run"],
        ] {
            let (_, out, err) = run(&cfg, &env, args);
            seen.push_str(&out);
            seen.push_str(&err);
        }
        // The agent's own log, for a couple of cycles.
        let file = dir.join("agent.toml");
        std::fs::write(&file, format!("interval = \"200ms\"\n{cfg}")).unwrap();
        let mut agent = Command::new(bin())
            .args(["--user", "-v", "--config"])
            .arg(&file)
            .arg("agent")
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(1500));
        let _ = agent.kill();
        let out = agent.wait_with_output().unwrap();
        seen.push_str(&String::from_utf8_lossy(&out.stdout));
        seen.push_str(&String::from_utf8_lossy(&out.stderr));
        assert!(
            seen.contains("***") || seen.contains("unreachable"),
            "{url}: {seen}"
        );
        assert!(
            !seen.contains(SECRET),
            "{url}: a secret was printed:\n{seen}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Connects to the agent's metrics socket and asks for /metrics.
fn scrape(sock: &std::path::Path, wait: Duration) -> Option<String> {
    let mut s = std::os::unix::net::UnixStream::connect(sock).ok()?;
    s.set_read_timeout(Some(wait)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\n\r\n").ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).ok()?;
    out.starts_with("HTTP/1.1 200").then_some(out)
}

#[test]
fn metrics_survive_a_flood_of_idle_connections() {
    let dir = scratch();
    let sock = dir.join("metrics.sock");
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "interval = \"500ms\"\nredis.url = \"redis://127.0.0.1:1/0\"\nredis.timeout = \"100ms\"\ndbus_timeout = \"100ms\"\nmetrics.listen = \"unix:{}\"\nstate_dir = \"{}\"\n",
            sock.display(),
            dir.display()
        ),
    )
    .unwrap();
    // Few file descriptors, so that the flood runs the agent out of them (EMFILE).
    let mut agent = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "ulimit -n 24; exec {} --user --config {} agent",
            bin().display(),
            cfg.display()
        ))
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while scrape(&sock, Duration::from_secs(2)).is_none() {
        assert!(t.elapsed() < Duration::from_secs(10), "no metrics at all");
        std::thread::sleep(Duration::from_millis(100));
    }
    // A local user opens a thousand connections and sends nothing.
    let flood: Vec<_> = (0..1000)
        .filter_map(|_| std::os::unix::net::UnixStream::connect(&sock).ok())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    drop(flood);
    // Metrics come back once the flood is gone (idle connections are dropped after 2 s).
    let t = Instant::now();
    let mut ok = false;
    while t.elapsed() < Duration::from_secs(15) {
        if scrape(&sock, Duration::from_secs(3)).is_some() {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let alive = agent.try_wait().unwrap().is_none();
    let _ = agent.kill();
    let out = agent.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(alive, "the agent died: {log}");
    assert!(
        log.contains("accept failed"),
        "the flood did not exhaust the descriptors: {log}"
    );
    assert!(ok, "metrics never came back after the flood: {log}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn status_is_unknown_when_nothing_is_reachable() {
    let (rc, out, err) = run(
        "redis.url = \"redis://127.0.0.1:1/0\"\nredis.timeout = \"200ms\"\ndbus_timeout = \"200ms\"\n",
        &[("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")],
        &["--user", "status", "--json"],
    );
    assert_eq!(rc, 3, "{out}{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["severity"], "unknown");
    assert!(
        v["redis_error"].as_str().unwrap().contains("unreachable"),
        "{v}"
    );
    // recover warns and exits 0.
    let (rc, _, err) = run(
        "redis.url = \"redis://127.0.0.1:1/0\"\nredis.timeout = \"200ms\"\n",
        &[],
        &["recover"],
    );
    assert_eq!(rc, 0, "{err}");
    assert!(err.contains("nothing done"), "{err}");
}

#[test]
fn an_unwritable_state_directory_is_a_visible_warning() {
    let dir = scratch();
    let cfg = dir.join("c.toml");
    // A state directory under a regular file can never be created.
    let blocker = dir.join("file");
    std::fs::write(&blocker, "").unwrap();
    std::fs::write(
        &cfg,
        format!(
            "interval = \"200ms\"\nredis.url = \"redis://127.0.0.1:1/0\"\nredis.timeout = \"100ms\"\ndbus_timeout = \"100ms\"\nmetrics.listen = \"\"\nstate_dir = \"{}/state\"\n",
            blocker.display()
        ),
    )
    .unwrap();
    let mut agent = Command::new(bin())
        .args(["--user", "--config"])
        .arg(&cfg)
        .arg("agent")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let _ = agent.kill();
    let log = String::from_utf8_lossy(&agent.wait_with_output().unwrap().stderr).into_owned();
    assert!(
        log.contains("WARN") && log.contains("cannot write the state file"),
        "{log}"
    );
    assert_eq!(
        log.matches("cannot write the state file").count(),
        1,
        "once, not every cycle: {log}"
    );
    let out = Command::new(bin())
        .args(["--user", "--config"])
        .arg(&cfg)
        .arg("status")
        .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("no state file at") && text.contains("cannot write there"),
        "{text}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `args` with a deadline: (exit, output), or `None` if it was still running then (and
/// was killed).
fn run_within(args: &[&str], wait: Duration) -> Option<(i32, String)> {
    let mut c = Command::new(bin())
        .args(args)
        .env_remove("QUANTUM_WATCHDOG_MODE")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while t.elapsed() < wait {
        if let Some(st) = c.try_wait().unwrap() {
            let mut out = String::new();
            c.stdout.take().unwrap().read_to_string(&mut out).unwrap();
            c.stderr.take().unwrap().read_to_string(&mut out).unwrap();
            return Some((st.code().unwrap_or(-1), out));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.kill();
    let _ = c.wait();
    None
}

/// A FIFO, a link to /dev/zero and a directory named like pause notes: `pause`, `resume` and
/// `resume --all` pass them over (they never wait on or read them), and the notes of ours
/// still work.
#[test]
fn pause_and_resume_pass_over_planted_files() {
    let dir = scratch();
    let pauses = dir.join("pauses");
    std::fs::create_dir_all(&pauses).unwrap();
    let cfg = dir.join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "pause_dir = \"{}\"\n[[watch]]\nunit = \"quantum-x.service\"\nstream = \"s\"\ngroup = \"g\"\nconsumer = \"x-{{pid}}\"\n",
            pauses.display()
        ),
    )
    .unwrap();
    nix::unistd::mkfifo(
        &pauses.join("quantum-fifo.service.pause"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    nix::unistd::mkfifo(
        &pauses.join("all-units.pause"),
        nix::sys::stat::Mode::from_bits_truncate(0o644),
    )
    .unwrap();
    std::os::unix::fs::symlink("/dev/zero", pauses.join("quantum-zero.service.pause")).unwrap();
    std::fs::create_dir(pauses.join("quantum-dir.service.pause")).unwrap();
    let c = cfg.to_str().unwrap();
    let wait = Duration::from_secs(10);
    for args in [
        &["--user", "--config", c, "pause", "quantum-x", "--for", "1m"][..],
        &["--user", "--config", c, "resume", "quantum-x"],
        &["--user", "--config", c, "pause", "quantum-x"],
        &["--user", "--config", c, "resume", "--all"],
    ] {
        let (rc, out) = run_within(args, wait)
            .unwrap_or_else(|| panic!("{args:?} still waiting after {wait:?}"));
        assert_eq!(rc, 0, "{args:?}: {out}");
        assert!(
            !out.contains("every unit is still paused"),
            "a FIFO is no pause: {out}"
        );
    }
    assert!(!pauses.join("quantum-x.service.pause").exists());
    assert!(pauses.join("quantum-dir.service.pause").is_dir());
    let _ = std::fs::remove_dir_all(&dir);
}
