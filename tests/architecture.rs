//! The source tree shows the architecture, and keeps showing it: the layers depend one way
//! (listed by `cargo test --test architecture -- --nocapture`), the policy touches no I/O,
//! and no function outside tests grows past 80 lines.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file under `dir`, with its text.
fn files(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push((p.clone(), std::fs::read_to_string(&p).unwrap()));
        }
    }
    out
}

/// The text before a file's `#[cfg(test)] mod tests`, and nothing of a `tests.rs`.
fn without_tests(path: &Path, text: &str) -> String {
    if path.file_name().is_some_and(|f| f == "tests.rs") {
        return String::new();
    }
    match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => text[..i].to_string(),
        None => text.to_string(),
    }
}

/// The layer a file belongs to: its first directory under `src/` (or `main`, `lib`).
fn layer(path: &Path) -> String {
    let rel = path.strip_prefix(src()).unwrap();
    let first = rel
        .components()
        .next()
        .unwrap()
        .as_os_str()
        .to_string_lossy();
    first.trim_end_matches(".rs").to_string()
}

/// Which layers each layer's code names (`crate::x`), tests left out.
fn dependencies() -> BTreeMap<String, BTreeSet<String>> {
    let mut deps: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in files(&src()) {
        let from = layer(&path);
        let entry = deps.entry(from.clone()).or_default();
        let code = without_tests(&path, &text);
        for (i, _) in code.match_indices("crate::") {
            let rest = &code[i + "crate::".len()..];
            let to: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if !to.is_empty() && to != from {
                entry.insert(to);
            }
        }
    }
    deps
}

#[test]
fn layers_depend_one_way() {
    let allowed: BTreeMap<&str, &[&str]> = [
        ("model", &[][..]),
        ("config", &["model"][..]),
        ("policy", &["config", "model"][..]),
        ("adapters", &["config", "model"][..]),
        ("report", &["policy", "config", "model"][..]),
        (
            "daemon",
            &["report", "adapters", "policy", "config", "model"][..],
        ),
        ("cli", &[][..]),
        ("main", &[][..]),
        // The wrapper program `exec` becomes: like main, it uses the library from outside.
        ("bin", &[][..]),
        ("lib", &[][..]),
    ]
    .into_iter()
    .collect();
    let deps = dependencies();
    for (from, to) in &deps {
        let list: Vec<&str> = to.iter().map(String::as_str).collect();
        println!("MEASURE layer {from} -> {}", list.join(", "));
        let ok = allowed
            .get(from.as_str())
            .unwrap_or_else(|| panic!("a layer no one placed: src/{from}"));
        for t in to {
            assert!(
                ok.contains(&t.as_str()),
                "src/{from} uses crate::{t}: the layers depend one way ({from} may use {ok:?})"
            );
        }
    }
    // The one-way order has no cycle by construction; say so for the record.
    let order = ["model", "config", "policy", "adapters", "report", "daemon"];
    for (i, from) in order.iter().enumerate() {
        for t in deps.get(*from).into_iter().flatten() {
            let j = order.iter().position(|o| o == t).unwrap();
            assert!(j < i, "{from} -> {t} points up");
        }
    }
}

#[test]
fn the_policy_does_no_io() {
    let forbidden = [
        "tokio",
        "redis::",
        "zbus",
        "std::fs",
        "std::net",
        "SystemTime",
        "Instant::now",
        "std::env",
        "std::process",
        "nix::",
    ];
    for (path, text) in files(&src().join("policy"))
        .into_iter()
        .chain(files(&src().join("model")))
    {
        let code = without_tests(&path, &text);
        for f in forbidden {
            assert!(
                !code.contains(f),
                "{} names {f}: the policy and the model are pure",
                path.display()
            );
        }
    }
}

/// Lines from each `fn` to its closing brace, outside tests.
fn function_lengths() -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (path, text) in files(&src()) {
        let code = without_tests(&path, &text);
        let lines: Vec<&str> = code.lines().collect();
        let rel = path.strip_prefix(src()).unwrap().display().to_string();
        let mut i = 0;
        while i < lines.len() {
            let l = lines[i].trim_start();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            let l = l
                .strip_prefix("pub(crate) ")
                .or_else(|| l.strip_prefix("pub(super) "))
                .unwrap_or(l);
            let l = l.strip_prefix("async ").unwrap_or(l);
            if let Some(name) = l.strip_prefix("fn ") {
                let name: String = name
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if let Some(n) = body_length(&lines[i..]) {
                    out.push((n, format!("{rel}::{name}")));
                }
            }
            i += 1;
        }
    }
    out.sort_by_key(|o| std::cmp::Reverse(o.0));
    out
}

/// Lines of a function body starting at `lines[0]` (braces in strings and comments aside).
fn body_length(lines: &[&str]) -> Option<usize> {
    let mut depth = 0i32;
    let mut started = false;
    for (k, line) in lines.iter().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut in_str = false;
        let mut prev = ' ';
        for c in code.chars() {
            if c == '"' && prev != '\\' && prev != '\'' {
                in_str = !in_str;
            } else if !in_str && c == '{' {
                depth += 1;
                started = true;
            } else if !in_str && c == '}' {
                depth -= 1;
            }
            prev = c;
        }
        if !started && code.contains(';') {
            return None; // a declaration without a body
        }
        if started && depth == 0 {
            return Some(k + 1);
        }
    }
    None
}

#[test]
fn functions_stay_short() {
    let lengths = function_lengths();
    for (n, f) in lengths.iter().take(10) {
        println!("MEASURE function {n:4} {f}");
    }
    let long: Vec<_> = lengths.iter().filter(|(n, _)| *n > 80).collect();
    assert!(long.is_empty(), "functions over 80 lines: {long:?}");
}

/// The top level is the product's specification: `Cargo.toml`, `src`, `units`, `packaging`,
/// `tests`, `debian` (and `docs`, `demo`, `bench`, the examples and benches of Cargo); every
/// unit file lives in `units/`, and nothing installed is kept anywhere else.
#[test]
fn the_top_level_is_the_specified_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for d in ["src", "units", "packaging", "tests", "debian"] {
        assert!(root.join(d).is_dir(), "{d}/ is missing");
    }
    assert!(
        !root.join("dist").exists(),
        "dist/ is gone: units/ and packaging/"
    );
    for u in [
        "quantum-watchdog.service",
        "quantum-stream-recover.service",
        "quantum-stream-recover.timer",
    ] {
        assert!(root.join("units").join(u).is_file(), "units/{u}");
    }
    let install = std::fs::read_to_string(root.join("debian/quantum-watchdog.install")).unwrap();
    for line in install.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.starts_with("units/") || line.starts_with("packaging/"),
            "installed from outside units/ and packaging/: {line}"
        );
    }
}
