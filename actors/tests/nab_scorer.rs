//! The NAB scorer against NAB's published scoreboard: seven published detectors' detections
//! (`data/nab/detections/`), scored with the standard profile over the whole corpus, give
//! back each detector's published normalised score to two decimals.

#![allow(clippy::unwrap_used)] // tests may unwrap: a failure here should stop the run loudly.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use edgegw_actors::eval::labels::{parse_ts_ms, NabLabels};
use edgegw_actors::eval::nab::{score_file, FileTruth, Profile, Total};

fn nab_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/nab")
}

/// Every labelled file's truth, keyed by `"<category>/<file>.csv"`.
fn corpus() -> BTreeMap<String, FileTruth> {
    let dir = nab_dir();
    let text = fs::read_to_string(dir.join("labels/combined_windows.json")).unwrap();
    let labels = NabLabels::from_json(&text).unwrap();
    assert_eq!(labels.len(), 58);
    labels
        .keys()
        .map(|key| {
            let path = dir.join("data").join(key);
            let csv = fs::read_to_string(&path).unwrap();
            let mut lines = csv.lines();
            assert_eq!(
                lines.next().map(str::trim),
                Some("timestamp,value"),
                "{key}"
            );
            let timestamps = lines
                .filter(|l| !l.trim().is_empty())
                .map(|l| parse_ts_ms(l.split(',').next().unwrap()).unwrap())
                .collect();
            // Looked up by path, as a command line would.
            let windows = labels.windows_for(&path).unwrap().to_vec();
            (
                key.to_owned(),
                FileTruth {
                    timestamps,
                    windows,
                },
            )
        })
        .collect()
}

#[derive(serde::Deserialize)]
struct Detections {
    detector: String,
    profile: String,
    published_score: f64,
    detections: BTreeMap<String, Vec<String>>,
}

fn score(corpus: &BTreeMap<String, FileTruth>, dets: &Detections) -> Total {
    let profile = Profile::STANDARD;
    let files: Vec<_> = corpus
        .iter()
        .map(|(key, truth)| {
            let ts: Vec<i64> = dets.detections[key]
                .iter()
                .map(|t| parse_ts_ms(t).unwrap())
                .collect();
            let s = score_file(truth, &ts, &profile);
            assert_eq!(s.unmatched, 0, "{} {key}", dets.detector);
            s
        })
        .collect();
    Total::from_files(profile, &files)
}

#[test]
fn published_detectors_reproduce_their_published_scores() {
    let corpus = corpus();
    let mut paths: Vec<PathBuf> = fs::read_dir(nab_dir().join("detections"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    paths.sort();
    assert_eq!(paths.len(), 7);
    let mut failures = Vec::new();
    for path in paths {
        let dets: Detections = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(dets.profile, "standard");
        assert_eq!(dets.detections.len(), corpus.len());
        let total = score(&corpus, &dets);
        let got = total.normalised();
        let delay = total.delay_summary().unwrap();
        println!(
            "{:<17} {got:>9.4} (published {:>9.4}, diff {:+.1e}; raw {:.4}, {}/{} windows, {} FP, \
             median delay {} rows)",
            dets.detector,
            dets.published_score,
            got - dets.published_score,
            total.raw,
            total.detected,
            total.scored_windows,
            total.false_positives,
            delay.median_rows,
        );
        if (got - dets.published_score).abs() >= 0.005 {
            failures.push((dets.detector, got, dets.published_score));
        }
    }
    assert!(failures.is_empty(), "not reproduced: {failures:?}");
}

#[test]
fn null_scores_zero_and_window_starts_score_hundred() {
    let corpus = corpus();
    for profile in Profile::ALL {
        let null: Vec<_> = corpus
            .values()
            .map(|t| score_file(t, &[], &profile))
            .collect();
        let null = Total::from_files(profile, &null);
        assert_eq!((null.windows, null.scored_windows), (116, 116));
        assert_eq!(null.normalised(), 0.0, "{}", profile.name);
        let perfect: Vec<_> = corpus
            .values()
            .map(|t| {
                let starts: Vec<i64> = t.windows.iter().map(|w| w.0).collect();
                score_file(t, &starts, &profile)
            })
            .collect();
        let perfect = Total::from_files(profile, &perfect);
        assert_eq!(perfect.normalised(), 100.0, "{}", profile.name);
        assert_eq!((perfect.detected, perfect.false_positives), (116, 0));
    }
}
