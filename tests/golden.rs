//! Golden trees, compared byte for byte: the policy's decision, and `status` as rendered.
//!
//! Each directory of `tests/golden/decide/` holds a look's inputs — `config.toml`,
//! `snapshot.json` (what systemd and Redis said, and the clock) and optionally `memory.json`
//! (what earlier looks left, as the state file keeps it) — and what `decide` makes of them:
//! `expected.json` (verdicts, consumers, actions, held actions, the fleet) and
//! `expected-memory.json` (what the look leaves for the next).
//!
//! Each directory of `tests/golden/status/` holds the inputs — `config.toml`, `snapshot.json`
//! (what systemd and Redis said, and the clock) and optionally `agent.json` (the running
//! agent's state file and whether its PID lives) — and the outputs: `expected.txt` (the
//! table), `expected-pipeline.txt` (`--pipeline`) and `expected.json` (`--json`).
//! `QW_BLESS=1 cargo test --test golden` rewrites the outputs after a deliberate change.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use quantum_watchdog::config::{Config, from_fragments};
use quantum_watchdog::model::Snapshot;
use quantum_watchdog::policy::{self, Memory};
use quantum_watchdog::report::state::AgentState;
use quantum_watchdog::report::status::{self, AgentLook};

#[derive(Deserialize)]
struct Agent {
    pid_alive: bool,
    state: AgentState,
}

fn cases(tree: &str) -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(tree);
    let mut v: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no cases in {}", root.display());
    v
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .unwrap_or_else(|e| panic!("{}/{name}: {e}", dir.display()))
}

/// Compares with the golden file; `QW_BLESS=1` rewrites it.
fn golden(dir: &Path, name: &str, actual: &str) -> Result<(), String> {
    let path = dir.join(name);
    if std::env::var("QW_BLESS").is_ok_and(|v| v == "1") {
        std::fs::write(&path, actual).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_default();
    if want == actual {
        return Ok(());
    }
    Err(format!(
        "{} differs (QW_BLESS=1 cargo test --test golden rewrites it):\n--- expected\n{want}\n--- actual\n{actual}",
        path.display()
    ))
}

/// A case's configuration and snapshot.
fn inputs(dir: &Path) -> (Config, Snapshot) {
    let cfg = from_fragments(&[("config.toml".into(), read(dir, "config.toml"))])
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let snap = serde_json::from_str(&read(dir, "snapshot.json"))
        .unwrap_or_else(|e| panic!("{}/snapshot.json: {e}", dir.display()));
    (cfg, snap)
}

/// Pretty JSON with a final newline.
fn pretty<T: serde::Serialize>(v: &T) -> String {
    format!("{}\n", serde_json::to_string_pretty(v).unwrap())
}

#[test]
fn decide_as_recorded() {
    let mut failures = Vec::new();
    for dir in cases("decide") {
        let (cfg, snap) = inputs(&dir);
        let mut mem: Memory = match dir.join("memory.json").exists() {
            true => serde_json::from_str(&read(&dir, "memory.json"))
                .unwrap_or_else(|e| panic!("{}/memory.json: {e}", dir.display())),
            false => Memory::default(),
        };
        let d = policy::decide(&cfg, &snap, &mut mem);
        for (name, text) in [
            ("expected.json", pretty(&d)),
            ("expected-memory.json", pretty(&mem)),
        ] {
            if let Err(e) = golden(&dir, name, &text) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The recorded decisions cover every rule that acts, each in a case of its own name.
#[test]
fn decide_cases_cover_every_acting_rule() {
    let names: Vec<String> = cases("decide")
        .iter()
        .map(|d| d.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for rule in [
        "hung",
        "handoff",
        "zombie",
        "poison",
        "fleet",
        "quarantine",
        "pause",
        "window",
        "deploy",
        "exec",
        "unreachable",
    ] {
        assert!(
            names.iter().any(|n| n.contains(rule)),
            "no case of tests/golden/decide/ is about {rule}: {names:?}"
        );
    }
}

#[test]
fn status_renders_as_recorded() {
    let mut failures = Vec::new();
    for dir in cases("status") {
        let (cfg, snap) = inputs(&dir);
        let agent: Option<Agent> = dir
            .join("agent.json")
            .exists()
            .then(|| serde_json::from_str(&read(&dir, "agent.json")).unwrap());
        let look = agent.as_ref().map(|a| AgentLook {
            state: &a.state,
            pid_alive: a.pid_alive,
        });
        let st = status::build(
            &cfg,
            &snap,
            look,
            Path::new("/run/quantum-watchdog/state.json"),
        );
        let json = format!("{}\n", serde_json::to_string_pretty(&st).unwrap());
        for (name, text) in [
            ("expected.txt", status::render(&st, false)),
            (
                "expected-pipeline.txt",
                status::render_pipelines(&st, false),
            ),
            ("expected.json", json),
        ] {
            if let Err(e) = golden(&dir, name, &text) {
                failures.push(e);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every field `status --json` writes in the recorded cases is documented in
/// docs/status-json.md (keys of `last_actions` are action names: `last_actions.<action>`).
#[test]
fn every_json_field_is_documented() {
    fn walk(v: &serde_json::Value, path: &str, out: &mut std::collections::BTreeSet<String>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    let key = if path.ends_with("last_actions") {
                        "<action>"
                    } else {
                        k
                    };
                    let p = if path.is_empty() {
                        key.to_string()
                    } else {
                        format!("{path}.{key}")
                    };
                    out.insert(p.clone());
                    walk(x, &p, out);
                }
            }
            serde_json::Value::Array(a) => {
                a.iter().for_each(|x| walk(x, &format!("{path}[]"), out))
            }
            _ => {}
        }
    }
    let doc = std::fs::read_to_string("docs/status-json.md").unwrap();
    let mut paths = std::collections::BTreeSet::new();
    for dir in cases("status") {
        let json: serde_json::Value = serde_json::from_str(&read(&dir, "expected.json")).unwrap();
        walk(&json, "", &mut paths);
    }
    let missing: Vec<&String> = paths
        .iter()
        .filter(|p| !doc.contains(&format!("`{p}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "not in docs/status-json.md: {missing:?}"
    );
    assert!(paths.len() > 100, "{} fields", paths.len());
}
