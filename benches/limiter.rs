//! Memory of the per-sensor feedback limiter: resident memory and held keys after 1 M
//! distinct sensor ids, and after the cleanup the feedback stage runs on its timer
//! (`retain_recent` + `shrink_to_fit`), on governor's fake clock (no sleeping).
//!
//! Run: `cargo bench --bench limiter` (or `--profile dev` to skip the release build; the
//! memory figures are the same, the per-check time is not). Prints a table.

#![allow(clippy::unwrap_used)] // benches may unwrap.

mod common;

use edgegw_actors::feedback::{FeedbackConfig, Kind, Limits};
use governor::clock::FakeRelativeClock;
use std::time::{Duration, Instant};

/// Resident memory of this process, MiB.
fn rss_mib() -> f64 {
    common::rss_mib(std::process::id())
}

fn main() {
    let keys = 1_000_000usize;
    let mut cfg = FeedbackConfig {
        rate_per_sec: 1_000_000,
        burst: 1_000_000,
        ..Default::default()
    };
    cfg.kinds.label.rate_per_sec = 1_000_000;
    cfg.kinds.label.burst = 1_000_000;
    let clock = FakeRelativeClock::default();
    let limits = Limits::with_clock(&cfg, &clock);
    let ids: Vec<String> = (0..keys).map(|i| format!("sensor-{i:07}")).collect();
    let base = rss_mib();
    let t = Instant::now();
    let admitted = ids
        .iter()
        .filter(|id| limits.admit(Kind::Label, Some(id)))
        .count();
    let per_check = t.elapsed().as_nanos() as f64 / keys as f64;
    let full = rss_mib();
    let held = limits.keys();
    limits.cleanup();
    let busy = limits.keys();
    let busy_rss = rss_mib();
    // 10 cells at 60/min: every key is back to a full burst after 10 s.
    clock.advance(Duration::from_secs(11));
    let t = Instant::now();
    limits.cleanup();
    let cleanup_ms = t.elapsed().as_secs_f64() * 1000.0;
    let after = rss_mib();
    // A second million of other ids (made one at a time): the freed memory is reused.
    for i in 0..keys {
        limits.admit(Kind::Label, Some(&format!("other-{i:07}")));
    }
    let second = rss_mib();
    clock.advance(Duration::from_secs(11));
    limits.cleanup();
    let second_clean = rss_mib();
    println!("| stage | keys held | RSS MiB | Δ vs start MiB |");
    println!("|---|---|---|---|");
    println!("| start (ids allocated) | 0 | {base:.1} | 0 |");
    println!(
        "| after {keys} distinct keys | {held} | {full:.1} | {:+.1} |",
        full - base
    );
    println!(
        "| cleanup while all are recent | {busy} | {busy_rss:.1} | {:+.1} |",
        busy_rss - base
    );
    println!(
        "| cleanup after 11 s idle | {} | {after:.1} | {:+.1} |",
        limits.keys(),
        after - base
    );
    println!(
        "| after 1 M more distinct keys | {keys} | {second:.1} | {:+.1} |",
        second - base
    );
    println!(
        "| cleanup after 11 s idle | {} | {second_clean:.1} | {:+.1} |",
        limits.keys(),
        second_clean - base
    );
    println!(
        "\nadmitted {admitted}; {:.0} B per key held; {per_check:.0} ns per check with a new key; cleanup of {keys} idle keys {cleanup_ms:.0} ms",
        (full - base) * 1024.0 * 1024.0 / held.max(1) as f64
    );
    assert_eq!(limits.keys(), 0);
}
