//! The text formats: OpenMetrics as served, Prometheus text for node_exporter's textfile
//! collector (`quantum-watchdog.prom`, and `quantum-watchdog-recover.prom` for `recover`),
//! and reading counters back from a textfile.

use prometheus_client::encoding::text::encode;

use super::{Labels, Metrics};

/// The textfile the agent writes in `metrics.textfile_dir`.
pub const AGENT_TEXTFILE: &str = "quantum-watchdog.prom";
/// The textfile `recover` writes there.
pub const RECOVER_TEXTFILE: &str = "quantum-watchdog-recover.prom";

impl Metrics {
    /// OpenMetrics text, as served at `/metrics`.
    pub fn encode(&self) -> String {
        self.fill_gauges();
        let mut s = String::new();
        let _ = encode(&mut s, &self.registry);
        s
    }

    /// Prometheus text format for node_exporter's textfile collector.
    pub fn encode_textfile(&self) -> String {
        to_prometheus_text(&self.encode())
    }

    /// `quantum-watchdog-recover.prom`: only the recovery counters, labelled
    /// `source="recover"` so they never collide with the agent's series.
    pub fn recover_textfile(&self) -> String {
        let mut out = String::new();
        let mut typed = false;
        for line in self.encode_textfile().lines() {
            let name = line
                .trim_start_matches("# TYPE ")
                .trim_start_matches("# HELP ");
            if !RECOVERY_COUNTERS.iter().any(|c| name.starts_with(c)) {
                continue;
            }
            if line.starts_with('#') {
                out.push_str(line);
            } else if let Some((head, rest)) = line.split_once('{') {
                out.push_str(&format!("{head}{{source=\"recover\",{rest}"));
            } else if let Some((head, v)) = line.rsplit_once(' ') {
                out.push_str(&format!("{head}{{source=\"recover\"}} {v}"));
            }
            out.push('\n');
            typed = true;
        }
        if !typed {
            out.clear();
        }
        out
    }
}

const RECOVERY_COUNTERS: [&str; 5] = [
    "quantum_stream_recovery_claimed_total",
    "quantum_stream_recovery_ghosts_total",
    "quantum_stream_recovery_deleted_total",
    "quantum_watchdog_requeued_total",
    "quantum_watchdog_dead_lettered_total",
];

/// OpenMetrics → Prometheus text: counters are typed under their `_total` name, info metrics
/// become gauges, and the `# EOF` marker goes.
pub fn to_prometheus_text(om: &str) -> String {
    let mut counters = Vec::new();
    let mut out = String::with_capacity(om.len());
    for line in om.lines() {
        if line == "# EOF" {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').unwrap_or((rest, ""));
            match kind {
                "counter" => {
                    counters.push(name.to_string());
                    out.push_str(&format!("# TYPE {name}_total counter\n"));
                }
                "info" => out.push_str(&format!("# TYPE {name}_info gauge\n")),
                _ => out.push_str(&format!("{line}\n")),
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            if counters.iter().any(|c| c == name) || om.contains(&format!("# TYPE {name} counter"))
            {
                out.push_str(&format!("# HELP {name}_total{}\n", &rest[name.len()..]));
            } else if om.contains(&format!("# TYPE {name} info")) {
                out.push_str(&format!("# HELP {name}_info{}\n", &rest[name.len()..]));
            } else {
                out.push_str(&format!("{line}\n"));
            }
            continue;
        }
        if line.starts_with("# UNIT") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Parses `name{k="v",…} value` sample lines (enough for our own output).
pub fn parse_samples(text: &str) -> Vec<(String, Labels, f64)> {
    let mut v = Vec::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let (head, value) = match line.rsplit_once(' ') {
            Some(x) => x,
            None => continue,
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let (name, labels) = match head.split_once('{') {
            Some((n, rest)) => (n.to_string(), parse_labels(rest.trim_end_matches('}'))),
            None => (head.to_string(), Vec::new()),
        };
        v.push((name, labels, value));
    }
    v
}

fn parse_labels(s: &str) -> Labels {
    let mut out = Vec::new();
    let mut rest = s;
    while let Some((k, after)) = rest.split_once("=\"") {
        let mut val = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        val.push(match n {
                            'n' => '\n',
                            other => other,
                        });
                    }
                }
                '"' => {
                    end = i + 1;
                    break;
                }
                c => val.push(c),
            }
        }
        out.push((k.trim_start_matches(',').to_string(), val));
        rest = &after[end..];
    }
    out
}
