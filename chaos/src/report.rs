//! The report of one chaos scenario: what was injected, what the judge found, how long
//! recovery took and how much memory the gateway used, as one JSON line.
//!
//! Design constraints: a report is written whether the scenario passed or not (a failing run
//! is the one worth reading), to stdout and appended to `$EDGEGW_CHAOS_REPORT` (default
//! `target/chaos-report.jsonl` under the workspace root). Recovery times are recorded, never
//! judged, except where a scenario states an explicit correctness bound.

use serde::Serialize;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

/// One scenario's outcome.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Scenario name.
    pub scenario: String,
    /// The seed (`EDGEGW_CHAOS_SEED` replays the run).
    pub seed: u64,
    /// Whether soak mode (`EDGEGW_CHAOS_SOAK=1`) was on.
    pub soak: bool,
    /// What was injected, in words, in order.
    pub injected: Vec<String>,
    /// Committed messages (the highest committed seq).
    pub produced: u64,
    /// Distinct committed messages delivered upstream.
    pub delivered: usize,
    /// Committed seqs that never arrived (first few; `missing_count` has the total).
    pub missing: Vec<u64>,
    /// How many committed seqs never arrived.
    pub missing_count: usize,
    /// Extra copies delivered.
    pub duplicated: usize,
    /// The duplicate bound the judge used.
    pub max_duplicates: usize,
    /// Evictions the gateway reported.
    pub evicted: u64,
    /// `edgegw_actor_restarts_total` per stage (summed over gateway runs).
    pub restarts: BTreeMap<String, f64>,
    /// Fault end → first message upstream committed after the fault, seconds.
    pub recovery_first_fresh_s: Option<f64>,
    /// Fault end → backlog drained and every committed seq upstream, seconds.
    pub recovery_drained_s: Option<f64>,
    /// Scenario-specific figures (e.g. the measured hang detection time).
    pub figures: BTreeMap<String, f64>,
    /// Peak resident memory of the gateway (`VmHWM`, max over runs), MiB.
    pub peak_rss_mib: f64,
    /// The memory bound asserted, MiB.
    pub rss_bound_mib: f64,
    /// Wall time of the whole scenario, seconds.
    pub wall_s: f64,
    /// Every violated property, in words.
    pub failures: Vec<String>,
    /// No violation.
    pub pass: bool,
}

impl Report {
    /// Prints the report and appends it as one JSON line to the report file.
    pub fn publish(&self) {
        let line = serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
        println!("chaos report: {line}");
        let path = report_path();
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
        {
            Ok(mut f) => {
                let _ = writeln!(f, "{line}");
            }
            Err(e) => eprintln!("cannot append the report to {}: {e}", path.display()),
        }
    }
}

/// `$EDGEGW_CHAOS_REPORT`, else `target/chaos-report.jsonl` under the workspace root.
pub fn report_path() -> PathBuf {
    match std::env::var_os("EDGEGW_CHAOS_REPORT") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("target")
            .join("chaos-report.jsonl"),
    }
}
