//! Counting answers and printing the result as a table or JSON.

use std::{collections::BTreeMap, time::Duration};

use hdrhistogram::Histogram;
use serde_json::json;

/// What one run observed.
pub struct Report {
    pub label: String,
    /// How the client was set up (threads, connections, in flight).
    pub client: String,
    pub elapsed: Duration,
    pub ok: u64,
    /// Non-OK gRPC codes, wrong answers ("wrong_answer") and transport errors, by name.
    pub errors: BTreeMap<String, u64>,
    /// Answers by reason (REASON_UNSPECIFIED = valid).
    pub reasons: BTreeMap<String, u64>,
    /// Latency in microseconds.
    pub latency: Histogram<u64>,
    /// Latency of the requests carrying a valid token (to read them apart in a mix).
    pub valid_latency: Histogram<u64>,
    /// Open loop: how long after its due time each request was handed to the client
    /// (microseconds), i.e. the client's own share of the latency.
    pub send_lag: Histogram<u64>,
    pub server_rss_mib: Option<f64>,
    /// CPU (user + system) the server process spent per call during the run (`--server-pid`).
    pub server_cpu_us_per_call: Option<f64>,
    /// CPU this load generator spent per call (only when the service is not in-process).
    pub client_cpu_us_per_call: Option<f64>,
    pub jwks_fetches: Option<f64>,
    pub target_rate: Option<f64>,
}

impl Report {
    pub fn new(label: String) -> Self {
        Self {
            label,
            client: String::new(),
            elapsed: Duration::ZERO,
            ok: 0,
            errors: BTreeMap::new(),
            reasons: BTreeMap::new(),
            latency: micros_histogram(),
            valid_latency: micros_histogram(),
            send_lag: micros_histogram(),
            server_rss_mib: None,
            server_cpu_us_per_call: None,
            client_cpu_us_per_call: None,
            jwks_fetches: None,
            target_rate: None,
        }
    }

    pub fn merge(&mut self, other: &Report) {
        self.ok += other.ok;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.reasons {
            *self.reasons.entry(k.clone()).or_default() += v;
        }
        self.latency.add(&other.latency).expect("same bounds");
        self.valid_latency
            .add(&other.valid_latency)
            .expect("same bounds");
        self.send_lag.add(&other.send_lag).expect("same bounds");
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    pub fn requests(&self) -> u64 {
        self.ok + self.error_count()
    }

    pub fn rps(&self) -> f64 {
        self.requests() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// True when some requests did not carry a valid token, so valid ones are worth reading apart.
    fn mixed(&self) -> bool {
        self.valid_latency.len() != self.latency.len()
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "label": self.label,
            "client": self.client,
            "requests": self.requests(),
            "ok": self.ok,
            "errors": self.errors,
            "reasons": self.reasons,
            "seconds": self.elapsed.as_secs_f64(),
            "target_rate": self.target_rate,
            "requests_per_sec": self.rps(),
            "latency_ms": quantiles_json(&self.latency),
            "valid_latency_ms": self.mixed().then(|| quantiles_json(&self.valid_latency)),
            "send_lag_ms": (!self.send_lag.is_empty()).then(|| quantiles_json(&self.send_lag)),
            "server_rss_mib": self.server_rss_mib,
            "server_cpu_us_per_call": self.server_cpu_us_per_call,
            "client_cpu_us_per_call": self.client_cpu_us_per_call,
            "jwks_fetches": self.jwks_fetches,
        })
    }

    pub fn table(&self) -> String {
        let mut out = format!(
            "{} ({})\n  requests {} in {:.2} s = {:.0} req/s{}\n  latency ms  {}\n",
            self.label,
            self.client,
            self.requests(),
            self.elapsed.as_secs_f64(),
            self.rps(),
            self.target_rate
                .map_or(String::new(), |r| format!(" (open loop, target {r:.0}/s)")),
            quantiles_text(&self.latency),
        );
        if self.mixed() {
            out.push_str(&format!(
                "  valid only  {}  ({} requests)\n",
                quantiles_text(&self.valid_latency),
                self.valid_latency.len(),
            ));
        }
        if !self.send_lag.is_empty() {
            out.push_str(&format!(
                "  send lag ms  {}  (due time → handed to the client)\n",
                quantiles_text(&self.send_lag),
            ));
        }
        out.push_str("  answers   ");
        for (reason, count) in &self.reasons {
            out.push_str(&format!(" {reason}={count}"));
        }
        out.push('\n');
        out.push_str(&format!("  errors    {}", self.error_count()));
        for (error, count) in &self.errors {
            out.push_str(&format!(" {error}={count}"));
        }
        out.push('\n');
        if self.server_cpu_us_per_call.is_some() || self.client_cpu_us_per_call.is_some() {
            let us = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
            out.push_str(&format!(
                "  CPU per call µs  server {}  client {}\n",
                us(self.server_cpu_us_per_call),
                us(self.client_cpu_us_per_call)
            ));
        }
        if let Some(rss) = self.server_rss_mib {
            out.push_str(&format!("  server RSS {rss:.1} MiB\n"));
        }
        if let Some(fetches) = self.jwks_fetches {
            out.push_str(&format!("  JWKS fetches during the run {fetches}\n"));
        }
        out
    }
}

/// An empty histogram of microseconds: 1 µs to 60 s, 3 significant digits.
pub fn micros_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds")
}

/// The quantiles a report shows, and their JSON keys.
const QUANTILES: [(&str, f64); 4] = [
    ("p50", 0.50),
    ("p90", 0.90),
    ("p99", 0.99),
    ("p99_9", 0.999),
];

/// p50, p90, p99, p99.9 and max of a histogram of microseconds, in milliseconds.
fn quantiles_ms(histogram: &Histogram<u64>) -> [(&'static str, f64); 5] {
    let ms = |micros: u64| micros as f64 / 1000.0;
    let [a, b, c, d] = QUANTILES.map(|(name, q)| (name, ms(histogram.value_at_quantile(q))));
    [a, b, c, d, ("max", ms(histogram.max()))]
}

fn quantiles_json(histogram: &Histogram<u64>) -> serde_json::Value {
    let mut object: serde_json::Map<String, serde_json::Value> = quantiles_ms(histogram)
        .into_iter()
        .map(|(name, value)| (name.to_string(), json!(value)))
        .collect();
    object.insert("requests".into(), json!(histogram.len()));
    object.into()
}

/// "p50 0.123  p90 …  max …" (p99_9 printed as p99.9).
fn quantiles_text(histogram: &Histogram<u64>) -> String {
    quantiles_ms(histogram)
        .iter()
        .map(|(name, value)| format!("{} {value:.3}", name.replace('_', ".")))
        .collect::<Vec<_>>()
        .join("  ")
}

/// Resident set size of a process, from /proc (Linux).
pub fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// User + system CPU seconds used by a process and every live descendant (a
/// server started through `cargo bench`, a Node cluster, several Python
/// processes), from /proc (Linux; USER_HZ = 100).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let mut processes = Vec::new(); // (pid, parent, cpu seconds)
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(id) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Fields after the command name, which is in parentheses and may hold spaces:
        // 0-based 1 is the parent, 11 and 12 are utime and stime (fields 4, 14, 15 of the line).
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let number = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
        if let (Some(parent), Some(user), Some(system)) = (number(1), number(11), number(12)) {
            processes.push((id, parent as u32, (user + system) / 100.0));
        }
    }
    let mut tree = vec![pid];
    let mut total = None;
    while let Some(current) = tree.pop() {
        for (id, parent, cpu) in &processes {
            if *id == current {
                *total.get_or_insert(0.0) += cpu;
            }
            if *parent == current {
                tree.push(*id);
            }
        }
    }
    total
}

/// Sum of a Prometheus counter's samples in a scrape.
pub fn prometheus_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with(['{', ' ']))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}
