//! The source tree shows the architecture, and keeps showing it: the layers depend one way
//! (listed by `cargo test --test architecture -- --nocapture`), the policy touches no I/O,
//! no function outside tests reaches 60 lines, the policy's files form no circle and its
//! rules are one numbered list.

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
    let long: Vec<_> = lengths.iter().filter(|(n, _)| *n >= 60).collect();
    assert!(long.is_empty(), "functions of 60 lines or more: {long:?}");
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

/// Which files of `policy/` each file of it names (`super::x`, `crate::policy::x`), comments
/// and tests left out. A name that is no file of `policy/` is something `mod.rs` holds or
/// re-exports: an edge to `mod`, which names every file. Renaming imports (`as`) is not
/// followed: the policy imports by the files' own names.
fn policy_imports() -> BTreeMap<String, BTreeSet<String>> {
    let dir = src().join("policy");
    let all = files(&dir);
    let stems: BTreeSet<String> = all
        .iter()
        .map(|(p, _)| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (path, text) in &all {
        let from = path.file_stem().unwrap().to_string_lossy().into_owned();
        let edges = out.entry(from.clone()).or_default();
        if from == "mod" {
            edges.extend(
                stems
                    .iter()
                    .filter(|s| *s != "mod" && *s != "tests")
                    .cloned(),
            );
            continue;
        }
        let code: String = without_tests(path, text)
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        for prefix in ["super::", "crate::policy::"] {
            for (i, _) in code.match_indices(prefix) {
                for name in named_after(&code[i + prefix.len()..]) {
                    let to = if stems.contains(&name) {
                        name
                    } else {
                        "mod".into()
                    };
                    if to != from {
                        edges.insert(to);
                    }
                }
            }
        }
    }
    out
}

/// The names right after a path prefix: `x` of `x::…`, or the first name of each item of a
/// use list `{x, y::{Z, W}, self}` (nested lists belong to their item). `*` names everything
/// (`mod`); `self` and `super` (a path out of `policy/`) name no file of it.
fn named_after(rest: &str) -> Vec<String> {
    let word = |s: &str| -> String {
        let s = s.trim_start();
        if s.starts_with('*') {
            return "*".into();
        }
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let items = match rest.strip_prefix('{') {
        Some(list) => top_level_items(list),
        None => vec![rest],
    };
    items
        .into_iter()
        .map(word)
        .filter(|w| !w.is_empty() && w != "self" && w != "super")
        .collect()
}

/// The items of a use list up to its closing brace, split at the commas outside nested lists.
fn top_level_items(list: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0usize, 0, Vec::new());
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => {
                out.push(&list[start..i]);
                return out;
            }
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&list[start..]);
    out
}

/// The policy's files form no circle: shared types live in data files that import no rule, and
/// no rule imports one that imports it back (nor anything through `mod.rs`).
#[test]
fn the_policy_files_form_no_cycle() {
    let graph = policy_imports();
    for (from, to) in &graph {
        println!(
            "MEASURE policy {from} -> {}",
            to.iter().cloned().collect::<Vec<_>>().join(" ")
        );
    }
    const DATA: [&str; 5] = ["verdict", "action", "memory", "decision", "cycle"];
    for data in DATA {
        let rules: Vec<_> = graph[data]
            .iter()
            .filter(|t| !DATA.contains(&t.as_str()))
            .collect();
        assert!(
            rules.is_empty(),
            "{data}.rs is data, yet it imports {rules:?}"
        );
    }
    // Depth-first search; a file met again while still on the path closes a circle.
    fn visit<'a>(
        n: &'a str,
        g: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) {
        if let Some(at) = path.iter().position(|p| *p == n) {
            panic!(
                "a circle in policy/: {}",
                [&path[at..], &[n]].concat().join(" -> ")
            );
        }
        if !done.insert(n) {
            return;
        }
        path.push(n);
        for t in g.get(n).into_iter().flatten() {
            visit(t, g, path, done);
        }
        path.pop();
    }
    let mut done = BTreeSet::new();
    for n in graph.keys() {
        visit(n, &graph, &mut Vec::new(), &mut done);
    }
}

/// Every rule is numbered once, in one list: the policy's header and README's "How hung is
/// decided" give the same numbers, 1 to the last, in order.
#[test]
fn the_rules_are_one_list() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let numbers = |text: &str, prefix: &str| -> Vec<u32> {
        text.lines()
            .filter_map(|l| l.strip_prefix(prefix))
            .filter_map(|l| l.split_once(". ")?.0.parse().ok())
            .collect()
    };
    let header = std::fs::read_to_string(root.join("src/policy/mod.rs")).unwrap();
    let policy = numbers(&header, "//! ");
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("## How \"hung\" is decided")
        .nth(1)
        .and_then(|s| s.split("\n### ").next())
        .unwrap();
    let listed = numbers(section, "");
    let want: Vec<u32> = (1..=policy.len() as u32).collect();
    assert_eq!(policy, want, "src/policy/mod.rs numbers its rules 1, 2, …");
    assert!(
        policy.len() >= 16,
        "fleet, quarantine, holds, deploys, reuse are numbered"
    );
    assert_eq!(listed, policy, "README lists the same rules");
}
