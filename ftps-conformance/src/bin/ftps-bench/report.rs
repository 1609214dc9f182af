//! The samples a run collects, their medians, the tables (Markdown) and the JSON.

use crate::servers::Kind;
use serde_json::{Value, json};

/// One measurement.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) case: &'static str,
    pub(crate) server: &'static str,
    pub(crate) client: &'static str,
    pub(crate) unit: &'static str,
    pub(crate) value: f64,
}

/// Everything measured in one run.
#[derive(Debug, Default)]
pub(crate) struct Results {
    pub(crate) samples: Vec<Sample>,
    /// What a peer failed at (a failure of ours ends the run instead).
    pub(crate) failures: Vec<String>,
}

/// A goal (issues 7, 17, 18): `ratio` (ours over the reference) against `target`.
pub(crate) struct Goal {
    pub(crate) what: String,
    pub(crate) ratio: Option<f64>,
    pub(crate) target: f64,
    /// Lower is better (memory): met when `ratio <= target`.
    pub(crate) at_most: bool,
}

impl Goal {
    fn met(&self) -> Option<bool> {
        self.ratio.map(|r| {
            if self.at_most {
                r <= self.target
            } else {
                r >= self.target
            }
        })
    }
}

impl Results {
    pub(crate) fn add(
        &mut self,
        case: &'static str,
        server: &'static str,
        client: &'static str,
        unit: &'static str,
        value: f64,
    ) {
        println!("  {case} | {server} | {client}: {value:.1} {unit}");
        self.samples.push(Sample {
            case,
            server,
            client,
            unit,
            value,
        });
    }

    /// Adds `result`'s value, or, for a peer, notes its failure and goes on; a failure of
    /// one of ours ends the run.
    pub(crate) fn attempt(
        &mut self,
        kind: Kind,
        case: &'static str,
        client: &'static str,
        unit: &'static str,
        result: Result<f64, Box<dyn std::error::Error>>,
    ) -> Result<(), Box<dyn std::error::Error>> {
        match result {
            Ok(v) => {
                self.add(case, kind.name(), client, unit, v);
                Ok(())
            }
            Err(e) if !kind.ours() => {
                let line = format!("{}, {case} ({client}): {e}", kind.name());
                println!("  failed: {line}");
                if !self.failures.contains(&line) {
                    self.failures.push(line);
                }
                Ok(())
            }
            Err(e) => Err(format!("{}, {case} ({client}): {e}", kind.name()).into()),
        }
    }

    fn values(&self, case: &str, server: &str, client: &str) -> Vec<f64> {
        self.samples
            .iter()
            .filter(|s| s.case == case && s.server == server && s.client == client)
            .map(|s| s.value)
            .collect()
    }

    /// The median of the samples of (case, server, client), if any.
    pub(crate) fn median(&self, case: &str, server: &str, client: &str) -> Option<f64> {
        let mut v = self.values(case, server, client);
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let mid = v.len() / 2;
        Some(if v.len() % 2 == 1 {
            v[mid]
        } else {
            (v[mid - 1] + v[mid]) / 2.0
        })
    }

    /// `median(a) / median(b)`.
    pub(crate) fn ratio(&self, a: (&str, &str, &str), b: (&str, &str, &str)) -> Option<f64> {
        Some(self.median(a.0, a.1, a.2)? / self.median(b.0, b.1, b.2)?)
    }

    /// A Markdown table: one row per case, one column per server (the client fixed per
    /// row), and the ratio of `ours` to the best of `peers`.
    pub(crate) fn server_table(
        &self,
        rows: &[(&str, &str)],
        ours: &str,
        columns: &[&str],
        peers: &[&str],
    ) -> String {
        let mut t = format!(
            "| work (client) | {} | {ours} / best peer |\n|---|{}---|\n",
            columns.join(" | "),
            "---|".repeat(columns.len())
        );
        for (case, client) in rows {
            let unit = self.unit(case);
            let lower_better = matches!(unit, "KiB/session" | "s/GiB");
            let cells: Vec<String> = columns
                .iter()
                .map(|s| cell(self.median(case, s, client)))
                .collect();
            let best_peer = peers
                .iter()
                .filter_map(|p| self.median(case, p, client))
                .reduce(|a, b| if lower_better { a.min(b) } else { a.max(b) });
            let ratio = match (self.median(case, ours, client), best_peer) {
                (Some(o), Some(p)) if unit == "KiB/session" => format!("{:.2}x less", p / o),
                (Some(o), Some(p)) => format!("{:.2}x", o / p),
                _ => "—".into(),
            };
            t.push_str(&format!(
                "| {case}, {unit} ({client}) | {} | {ratio} |\n",
                cells.join(" | ")
            ));
        }
        t
    }

    /// A Markdown table: one row per server, one column per client, and the ratio of
    /// `ours` to `reference` (both clients).
    pub(crate) fn client_table(
        &self,
        case: &str,
        servers: &[&str],
        clients: &[&str],
        ours: &str,
        reference: &str,
    ) -> String {
        let mut t = format!(
            "| {case}, {} from | {} | {ours} / {reference} |\n|---|{}---|\n",
            self.unit(case),
            clients.join(" | "),
            "---|".repeat(clients.len())
        );
        for server in servers {
            let cells: Vec<String> = clients
                .iter()
                .map(|c| cell(self.median(case, server, c)))
                .collect();
            let ratio = self
                .ratio((case, server, ours), (case, server, reference))
                .map_or("—".into(), |r| format!("{r:.2}x"));
            t.push_str(&format!("| {server} | {} | {ratio} |\n", cells.join(" | ")));
        }
        t
    }

    fn unit(&self, case: &str) -> &'static str {
        self.samples
            .iter()
            .find(|s| s.case == case)
            .map_or("", |s| s.unit)
    }

    /// The goals' lines.
    pub(crate) fn goals_text(goals: &[Goal]) -> String {
        let mut t = String::new();
        for g in goals {
            let (ratio, verdict) = match (g.ratio, g.met()) {
                (Some(r), Some(true)) => (format!("{r:.2}"), "met"),
                (Some(r), _) => (format!("{r:.2}"), "MISSED"),
                (None, _) => ("—".into(), "not measured"),
            };
            let op = if g.at_most { "<=" } else { ">=" };
            t.push_str(&format!(
                "- {}: {ratio} (goal {op} {}): {verdict}\n",
                g.what, g.target
            ));
        }
        t
    }

    /// Everything as JSON: the machine, the options, medians with their samples, goals.
    pub(crate) fn json(&self, machine: Value, options: Value, goals: &[Goal]) -> Value {
        let mut keys: Vec<(&str, &str, &str, &str)> = Vec::new();
        for s in &self.samples {
            let k = (s.case, s.server, s.client, s.unit);
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        let medians: Vec<Value> = keys
            .iter()
            .map(|(case, server, client, unit)| {
                json!({
                    "case": case, "server": server, "client": client, "unit": unit,
                    "median": self.median(case, server, client),
                    "samples": self.values(case, server, client),
                })
            })
            .collect();
        let goals: Vec<Value> = goals
            .iter()
            .map(|g| {
                json!({
                    "goal": g.what, "ratio": g.ratio, "target": g.target,
                    "at_most": g.at_most, "met": g.met(),
                })
            })
            .collect();
        json!({
            "machine": machine, "options": options, "results": medians, "goals": goals,
            "peer_failures": self.failures,
        })
    }
}

fn cell(v: Option<f64>) -> String {
    match v {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
        None => "—".into(),
    }
}
