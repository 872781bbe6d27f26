//! The rate limit as installed ([`super::super::subscriber`]: level filter, limit, formatter),
//! writing into a buffer on a hand-driven clock; the written text is asserted, text and JSON.

use super::summary::{MAX_OF, SUPPRESSED};
use super::*;
use edgegw_actors::config::LogFormat;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

const TARGET: &str = "edgegw::logging::limit::tests";

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl io::Write for Capture {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.lock().extend_from_slice(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Capture {
    fn lines(&self) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock())
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Text lines without their timestamp, spaces collapsed.
    fn text(&self) -> Vec<String> {
        self.lines()
            .iter()
            .map(|l| l.split_whitespace().skip(1).collect::<Vec<_>>().join(" "))
            .collect()
    }

    fn json(&self) -> Vec<serde_json::Value> {
        self.lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

#[derive(Clone, Default)]
struct Manual(Arc<AtomicU64>);

impl Manual {
    fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::Relaxed);
    }
}

impl Clock for Manual {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Runs `f` with the gateway's log pipeline (`filter`, 5 lines per 10 s) writing into the
/// returned buffer.
fn logged_with(filter: &str, format: LogFormat, f: impl FnOnce(&Manual)) -> Capture {
    let (cap, clock) = (Capture::default(), Manual::default());
    let w = cap.clone();
    let limits = Limits {
        burst: 5,
        window: Duration::from_secs(10),
    };
    let logs = super::super::subscriber(
        EnvFilter::new(filter),
        format,
        limits,
        false,
        move || w.clone(),
        clock.clone(),
    );
    tracing::subscriber::with_default(logs, || f(&clock));
    cap
}

fn logged(format: LogFormat, f: impl FnOnce(&Manual)) -> Capture {
    logged_with("trace", format, f)
}

/// One log statement; returns its line.
fn noisy(i: u32) -> u32 {
    tracing::warn!(message = "Peer misbehaved.", i);
    line!() - 1
}

fn other() {
    tracing::info!(message = "Uplink connected.");
}

/// 8 lines of `noisy` and 5 of `other` in the first window, 1 + 4 + 1 of `noisy` in the
/// second, one `other` in the third. Returns `noisy`'s `file:line`.
fn scenario(clock: &Manual) -> String {
    let mut line = 0;
    for i in 0..8 {
        line = noisy(i);
    }
    for _ in 0..5 {
        other();
    }
    clock.advance(10_000);
    for i in 8..14 {
        noisy(i);
    }
    clock.advance(10_000);
    other();
    format!("src/logging/limit/tests.rs:{line}")
}

#[test]
fn text_burst_then_one_summary_per_window_other_callsites_unaffected() {
    let mut at = String::new();
    let cap = logged(LogFormat::Text, |c| at = scenario(c));
    let noisy = |i: u32| format!("WARN {TARGET}: Peer misbehaved. i={i}");
    let connected = format!("INFO {TARGET}: Uplink connected.");
    let summary = |n: u64| {
        format!(
            "WARN {TARGET}: Similar log lines suppressed. suppressed={n} of=\"Peer misbehaved.\" callsite=\"{at}\""
        )
    };
    let mut want: Vec<String> = (0..5).map(noisy).collect();
    want.extend(std::iter::repeat_n(connected.clone(), 5));
    // Second window: the count of the first (3), then the line that opened the window and
    // four more; the sixth is suppressed (the count restarted at 1).
    want.push(summary(3));
    want.extend((8..13).map(noisy));
    // Third window: reported by the next line of any callsite, before it.
    want.push(summary(1));
    want.push(connected);
    assert_eq!(cap.text(), want);
}

#[test]
fn json_summary_has_the_count_the_message_and_the_statement_level_and_target() {
    let mut at = String::new();
    let cap = logged(LogFormat::Json, |c| at = scenario(c));
    let lines = cap.json();
    let messages: Vec<&str> = lines
        .iter()
        .map(|l| l["message"].as_str().unwrap())
        .collect();
    assert_eq!(
        messages
            .iter()
            .filter(|m| **m == "Peer misbehaved.")
            .count(),
        10
    );
    assert_eq!(
        messages
            .iter()
            .filter(|m| **m == "Uplink connected.")
            .count(),
        6
    );
    let summaries: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == SUPPRESSED)
        .collect();
    assert_eq!(summaries.len(), 2, "{lines:?}");
    for (s, n) in summaries.iter().zip([3, 1]) {
        assert_eq!(s["level"], "WARN");
        assert_eq!(s["target"], TARGET);
        assert_eq!(s["suppressed"], n);
        assert_eq!(s["of"], "Peer misbehaved.");
        assert_eq!(s["callsite"], at.as_str());
    }
    assert_eq!(lines[10]["message"], SUPPRESSED);
    assert_eq!(lines[10]["suppressed"], 3);
    assert_eq!(lines[11]["i"], 8);
}

#[test]
fn log_crate_records_are_limited_per_statement_not_per_bridge() {
    fn record(target: &str, line: u32, msg: &str) {
        tracing_log::format_trace(
            &log::Record::builder()
                .level(log::Level::Warn)
                .target(target)
                .file(Some("dep/src/lib.rs"))
                .line(Some(line))
                .args(format_args!("{msg}"))
                .build(),
        )
        .unwrap();
    }
    let cap = logged(LogFormat::Text, |clock| {
        for _ in 0..7 {
            record("dep_a", 10, "A failed.");
        }
        for _ in 0..3 {
            record("dep_b", 20, "B failed.");
        }
        clock.advance(10_000);
        record("dep_a", 10, "A failed.");
    });
    let text = cap.text();
    let count = |l: &str| text.iter().filter(|t| *t == l).count();
    assert_eq!(count("WARN dep_a: A failed."), 6, "{text:#?}");
    assert_eq!(count("WARN dep_b: B failed."), 3, "{text:#?}");
    assert_eq!(
        text[8],
        "WARN dep_a: Similar log lines suppressed. suppressed=2 of=\"A failed.\" callsite=\"dep/src/lib.rs:10\""
    );
}

#[test]
fn filtered_out_lines_count_nothing_and_of_is_bounded() {
    let cap = logged_with("info", LogFormat::Text, |clock| {
        for _ in 0..20 {
            tracing::trace!(target: "quiet", message = "Not shown.");
        }
        let long = "é".repeat(400);
        for _ in 0..6 {
            tracing::error!(message = %long);
        }
        clock.advance(10_000);
        other();
    });
    let text = cap.text();
    assert_eq!(text.len(), 5 + 1 + 1, "{text:#?}");
    let of = text[5]
        .split("of=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap();
    assert_eq!(of.len(), MAX_OF, "{}", text[5]);
}

#[test]
fn flush_reports_pending_counts_before_their_window_ends_and_writes_nothing_else() {
    let cap = logged_with("warn", LogFormat::Text, |clock| {
        for i in 0..7 {
            noisy(i);
        }
        clock.advance(1_000);
        flush();
        flush();
        // Still the same window: suppressed again, and counted afresh.
        noisy(7);
        flush();
    });
    let text = cap.text();
    let summaries: Vec<&String> = text.iter().filter(|l| l.contains(SUPPRESSED)).collect();
    assert_eq!(text.len(), 5 + 2, "{text:#?}");
    assert!(summaries[0].contains("suppressed=2 "), "{text:#?}");
    assert!(summaries[1].contains("suppressed=1 "), "{text:#?}");
}
