//! Golden-file and consistency checks of what the package ships: completions match the
//! binary, shipped configurations parse (observe mode out of the box), units carry the
//! settings the agent relies on, and the man page and README name every command and key.

use std::path::{Path, PathBuf};
use std::process::Command;

use quantum_watchdog::config::{Mode, from_fragments};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn read(p: &str) -> String {
    std::fs::read_to_string(root().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"))
}

/// Compares with the golden file; `QW_BLESS=1` rewrites it.
fn golden(path: &str, actual: &str) {
    let p = root().join(path);
    if std::env::var("QW_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&p, actual).unwrap();
    }
    assert!(
        read(path) == actual,
        "{path} is out of date: regenerate with QW_BLESS=1 cargo test --test packaging"
    );
}

#[test]
fn completions_match_the_binary() {
    for (shell, path) in [
        (
            "bash",
            "packaging/usr/share/bash-completion/completions/quantum-watchdog",
        ),
        (
            "zsh",
            "packaging/usr/share/zsh/vendor-completions/_quantum-watchdog",
        ),
        (
            "fish",
            "packaging/usr/share/fish/vendor_completions.d/quantum-watchdog.fish",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_quantum-watchdog"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(out.status.success());
        golden(path, &String::from_utf8(out.stdout).unwrap());
    }
}

#[test]
fn shipped_configuration_parses_and_observes() {
    let vendor = read("packaging/usr/lib/quantum-watchdog/config.toml");
    let etc = read("packaging/etc/quantum-watchdog/config.toml");
    let c = from_fragments(&[("config.toml".into(), etc)]).unwrap();
    assert_eq!(
        c.mode,
        Mode::Observe,
        "installing must never start restarting production services"
    );
    assert_eq!(c.units, vec!["quantum-*.service"]);
    // The vendor file states the built-in defaults, no more, no less.
    let builtin = from_fragments(&[]).unwrap();
    let v = from_fragments(&[("config.toml".into(), vendor)]).unwrap();
    assert_eq!(
        serde_json::to_value(&v).unwrap(),
        serde_json::to_value(&builtin).unwrap()
    );
}

fn directives(path: &str) -> Vec<(String, String)> {
    read(path)
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
        .map(|l| {
            let (k, v) = l.split_once('=').unwrap();
            (k.trim().to_string(), v.trim().to_string())
        })
        .collect()
}

fn has(d: &[(String, String)], k: &str, v: &str) -> bool {
    d.iter().any(|(a, b)| a == k && b == v)
}

#[test]
fn units_carry_what_the_agent_relies_on() {
    let s = directives("units/quantum-watchdog.service");
    for (k, v) in [
        ("Type", "notify"),
        ("WatchdogSec", "30s"),
        ("Restart", "always"),
        ("RestartSec", "2"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("User", "quantum-watchdog"),
        ("RuntimeDirectory", "quantum-watchdog/agent"),
        ("Environment", "QUANTUM_WATCHDOG_BOOT_ID=%b"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("CapabilityBoundingSet", ""),
        ("IPAddressDeny", "any"),
        ("IPAddressAllow", "localhost"),
        ("SystemCallFilter", "@system-service"),
        ("RestrictAddressFamilies", "AF_UNIX AF_INET AF_INET6"),
    ] {
        assert!(has(&s, k, v), "quantum-watchdog.service: {k}={v}");
    }
    let t = directives("units/quantum-stream-recover.timer");
    assert!(has(&t, "OnBootSec", "30s") && has(&t, "OnUnitActiveSec", "2min"));
    let o = directives("units/quantum-stream-recover.service");
    assert!(
        has(&o, "Type", "oneshot") && has(&o, "ExecStart", "/usr/bin/quantum-watchdog recover")
    );
    let d = directives("units/examples/recover-dropin.conf");
    assert!(has(
        &d,
        "ExecStartPre",
        "-/usr/bin/quantum-watchdog recover --unit %n"
    ));
    assert!(has(
        &d,
        "ExecStopPost",
        "-/usr/bin/quantum-watchdog recover --unit %n"
    ));
    let e = directives("units/examples/exec-dropin.conf");
    for (k, v) in [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("WatchdogSec", "30s"),
        ("KillMode", "mixed"),
        (
            "ExecStart",
            "/usr/bin/quantum-watchdog exec -- /opt/quantum/bin/python3 -m execution",
        ),
    ] {
        assert!(has(&e, k, v), "exec-dropin.conf: {k}={v}");
    }
    // The operators' group and their directory.
    assert!(
        read("packaging/usr/lib/sysusers.d/quantum-watchdog.conf")
            .lines()
            .any(|l| l.starts_with("g quantum-watchdog-operators "))
    );
    assert!(
        read("packaging/usr/lib/tmpfiles.d/quantum-watchdog.conf")
            .contains("d /var/lib/quantum-watchdog/pauses 2775 root quantum-watchdog-operators -")
    );
    // The sysusers user is the unit's and the polkit rule's.
    assert!(
        read("packaging/usr/lib/sysusers.d/quantum-watchdog.conf")
            .lines()
            .any(|l| l.starts_with("u quantum-watchdog "))
    );
    // The package's textfile directory is writable, and linked where node_exporter reads;
    // the configuration layer in /run is root's; state survives agent restarts.
    for u in [&s, &o] {
        assert!(has(u, "ReadWritePaths", "-/run/quantum-watchdog/metrics"));
        assert!(has(u, "Environment", "QUANTUM_WATCHDOG_BOOT_ID=%b"));
    }
    let tmpfiles = read("packaging/usr/lib/tmpfiles.d/quantum-watchdog.conf");
    assert!(tmpfiles.contains("d /run/quantum-watchdog 0755 root root -"));
    assert!(
        tmpfiles
            .contains("d /run/quantum-watchdog/metrics 0755 quantum-watchdog quantum-watchdog -")
    );
    assert!(
        !tmpfiles
            .lines()
            .any(|l| !l.starts_with('#') && l.contains("/var/lib/prometheus")),
        "no entry in another package's directory"
    );
    let links = read("debian/quantum-watchdog.links");
    for f in ["quantum-watchdog.prom", "quantum-watchdog-recover.prom"] {
        assert!(links.contains(&format!(
            "run/quantum-watchdog/metrics/{f} var/lib/prometheus/node-exporter/{f}"
        )));
    }
    assert!(
        read("packaging/usr/lib/quantum-watchdog/config.d/50-package.toml")
            .contains("metrics.textfile_dir = \"/run/quantum-watchdog/metrics\"")
    );
    assert!(has(&s, "RuntimeDirectoryPreserve", "yes"));
    assert!(
        read("packaging/usr/share/polkit-1/rules.d/50-quantum-watchdog.rules")
            .contains("subject.user != \"quantum-watchdog\"")
    );
}

/// The text of every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(sources(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(std::fs::read_to_string(&p).unwrap());
        }
    }
    out
}

#[test]
fn polkit_grants_exactly_what_the_agent_calls() {
    let rule = read("packaging/usr/share/polkit-1/rules.d/50-quantum-watchdog.rules");
    let verbs: Vec<&str> = rule
        .match_indices("verb == \"")
        .map(|(i, m)| {
            let rest = &rule[i + m.len()..];
            &rest[..rest.find('"').unwrap()]
        })
        .collect();
    assert_eq!(verbs, ["restart"], "{rule}");
    // The only manage-units method the code calls.
    let mut called = std::collections::BTreeSet::new();
    for text in sources(&root().join("src")) {
        for m in [
            "restart_unit(",
            "start_unit(",
            "stop_unit(",
            "kill_unit(",
            "reset_failed_unit(",
            "try_restart_unit(",
            "reload_unit(",
        ] {
            if text.contains(&format!(".{m}")) {
                called.insert(m);
            }
        }
    }
    assert_eq!(called.into_iter().collect::<Vec<_>>(), ["restart_unit("]);
}

#[test]
fn debian_tree_holds_sources_only() {
    let out = Command::new("git")
        .args(["ls-files", "debian"])
        .current_dir(root())
        .output()
        .unwrap();
    let files = String::from_utf8(out.stdout).unwrap();
    if files.is_empty() {
        return; // not a git checkout (a source package): nothing to check
    }
    for f in files.lines() {
        assert!(
            !f.ends_with(".debhelper") && !f.ends_with(".substvars") && !f.contains(".debhelper/"),
            "generated by debhelper, not a source: {f}"
        );
    }
    let control = read("debian/control");
    assert!(
        control.contains("default-dbus-system-bus | dbus-system-bus"),
        "{control}"
    );
}

#[test]
fn docs_name_every_command_and_key() {
    let man = read("packaging/usr/share/man/man8/quantum-watchdog.8");
    let readme = read("README.md");
    for cmd in [
        "agent",
        "status",
        "recover",
        "check\\-config",
        "\\-\\-dry\\-run",
        "\\-\\-json",
        "\\-\\-user",
    ] {
        assert!(man.contains(cmd), "man page lacks {cmd}");
    }
    let cfg = serde_json::to_value(from_fragments(&[]).unwrap()).unwrap();
    let mut keys: Vec<String> = cfg.as_object().unwrap().keys().cloned().collect();
    for section in ["redis", "defaults"] {
        keys.extend(cfg[section].as_object().unwrap().keys().cloned());
    }
    for k in keys {
        assert!(readme.contains(&k), "README lacks the key {k}");
        assert!(man.contains(&k), "man page lacks the key {k}");
    }
    assert!(Path::new(&root().join("debian/quantum-watchdog.sysusers")).exists());
}

/// Bash completes a subcommand's options, as a user presses Tab after `status --`.
#[test]
fn bash_completes_a_subcommands_options() {
    let script = "packaging/usr/share/bash-completion/completions/quantum-watchdog";
    let words = |line: &str| {
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                "source {script}; COMP_WORDS=({line}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1)); \
                 _quantum__watchdog quantum-watchdog \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
                 echo \"${{COMPREPLY[*]}}\""
            ))
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    let status = words("quantum-watchdog status --");
    for opt in ["--json", "--pipeline", "--fleet", "--watch"] {
        assert!(status.contains(opt), "status --<Tab>: {status:?}");
    }
    let history = words("quantum-watchdog history --s");
    assert!(history.contains("--since"), "history --s<Tab>: {history:?}");
    assert!(words("quantum-watchdog pa").contains("pause"));
}

/// The man page's SYNOPSIS names every command and every option the binary accepts (read
/// from the generated bash completion, which clap writes from the command line's definition),
/// and the page has an ENVIRONMENT section.
#[test]
fn the_synopsis_names_every_command_and_option() {
    let man = read("packaging/usr/share/man/man8/quantum-watchdog.8");
    let synopsis = &man[man.find(".SH SYNOPSIS").unwrap()..man.find(".SH DESCRIPTION").unwrap()];
    let bash = read("packaging/usr/share/bash-completion/completions/quantum-watchdog");
    // Not in the SYNOPSIS: help, version, -v's long name, and the hidden `completions` (its
    // shells are its only arguments).
    let skip = [
        "--help",
        "--version",
        "--verbose",
        "completions",
        "help",
        "bash",
        "elvish",
        "fish",
        "powershell",
        "zsh",
    ];
    let mut missing = Vec::new();
    for line in bash
        .lines()
        .filter(|l| l.trim_start().starts_with("opts=\""))
    {
        let words = line
            .trim()
            .trim_start_matches("opts=\"")
            .trim_end_matches('"');
        for w in words.split_whitespace() {
            let named =
                w.starts_with("--") || w.chars().all(|c| c.is_ascii_lowercase() || c == '-');
            if !named || w.starts_with('<') || skip.contains(&w) || w.len() < 3 {
                continue;
            }
            let roff = w.replace('-', "\\-");
            if !synopsis.contains(&roff) && !missing.contains(&w.to_string()) {
                missing.push(w.to_string());
            }
        }
    }
    assert!(missing.is_empty(), "SYNOPSIS lacks {missing:?}");
    assert!(man.contains(".SH ENVIRONMENT"), "no ENVIRONMENT section");
    assert!(man.contains("QUANTUM_WATCHDOG_MODE") && man.contains("NO_COLOR"));
}
