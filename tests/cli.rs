//! Scenario 8 and the command line: every bad configuration exits 2, names the file and the
//! key, and changes nothing. These run anywhere (no root, no servers).

use std::path::PathBuf;
use std::process::Command;

fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_quantum-watchdog"))
}

fn run(config: &str, env: &[(&str, &str)], args: &[&str]) -> (i32, String, String) {
    let dir = std::env::temp_dir().join(format!("qw-cli-{}-{}", std::process::id(), config.len()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(&file, config).unwrap();
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
            assert_eq!(rc, 2, "{what} / {cmd:?}: exit {rc}\n{out}{err}");
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
fn unreadable_password_file_names_path_and_mode() {
    let dir = std::env::temp_dir().join(format!("qw-pw-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pw = dir.join("missing-password");
    let (rc, _, err) = run(
        &format!(
            "redis.password_file = \"{}\"\nredis.url = \"redis://127.0.0.1:1/0\"\n",
            pw.display()
        ),
        &[],
        &["status"],
    );
    assert_eq!(rc, 2, "{err}");
    assert!(
        err.contains("missing-password") && err.contains("password_file"),
        "{err}"
    );
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
