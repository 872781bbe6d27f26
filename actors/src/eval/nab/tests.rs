use super::*;

const MIN: i64 = 60_000;

/// 100 rows one minute apart (probation: rows 0..15), one window on rows 40..=49.
fn tiny() -> FileTruth {
    FileTruth {
        timestamps: (0..100).map(|i| i * MIN).collect(),
        windows: vec![(40 * MIN, 49 * MIN)],
    }
}

fn raw(truth: &FileTruth, rows: &[usize]) -> f64 {
    score_rows(truth, rows, &Profile::STANDARD).raw
}

#[test]
fn sigmoid_matches_nab_landmarks() {
    assert!((scaled_sigmoid(-1.0) - 0.986_614_298_151_430_3).abs() < 1e-15);
    assert_eq!(scaled_sigmoid(0.0), 0.0);
    assert!((scaled_sigmoid(-0.5) - 0.848_283_639_957_512_9).abs() < 1e-15);
    // Cut off above 3, not at 3 (the rule behind the published scoreboard).
    assert!((scaled_sigmoid(3.0) + 0.999_999_388).abs() < 1e-9);
    assert_eq!(scaled_sigmoid(3.000_001), -1.0);
    assert_eq!(scaled_sigmoid(f64::INFINITY), -1.0);
}

#[test]
fn probation_is_fifteen_percent_capped_at_750_rows() {
    assert_eq!(first_scored_row(100), 15);
    assert_eq!(first_scored_row(1624), 243);
    assert_eq!(first_scored_row(4999), 749);
    assert_eq!(first_scored_row(22695), 750);
    assert_eq!(first_scored_row(0), 0);
}

#[test]
fn detection_at_window_start_scores_exactly_tp() {
    let s = score_rows(&tiny(), &[40], &Profile::STANDARD);
    assert_eq!(s.raw, 1.0);
    assert_eq!((s.detected, s.false_positives, s.missed()), (1, 0, 0));
    assert_eq!(s.delays[0].rows, 0);
    let low_fn = score_rows(&tiny(), &[40], &Profile::REWARD_LOW_FN_RATE);
    assert_eq!(low_fn.raw, 1.0);
}

#[test]
fn only_the_earliest_detection_in_a_window_counts() {
    let s = score_rows(&tiny(), &[49, 45, 45], &Profile::STANDARD);
    // Row 45 of [40, 49]: position -(49 - 45 + 1) / 10 = -0.5.
    let expected = scaled_sigmoid(-0.5) / scaled_sigmoid(-1.0);
    assert_eq!(s.raw, expected);
    assert_eq!((s.detected, s.false_positives), (1, 0));
    assert_eq!((s.delays[0].rows, s.delays[0].ms), (5, 5 * MIN));
    // The window's last row: position -1 / 10.
    let last = raw(&tiny(), &[49]);
    assert!((last - scaled_sigmoid(-0.1) / scaled_sigmoid(-1.0)).abs() < 1e-15);
    assert!(last > 0.0 && last < expected);
}

#[test]
fn detection_long_after_a_window_costs_fp() {
    // Row 90: (90 - 49) / (10 - 1) ≥ 3, the full false-positive cost; the window is missed.
    let s = score_rows(&tiny(), &[90], &Profile::STANDARD);
    assert_eq!(s.raw, -0.11 - 1.0);
    assert_eq!((s.false_positives, s.missed()), (1, 1));
    assert_eq!(raw(&tiny(), &[40, 90]), -0.11 + 1.0);
    // Right after the window it costs less: position 1 / 9.
    let near = raw(&tiny(), &[40, 50]) - 1.0;
    assert!((near - scaled_sigmoid(1.0 / 9.0) * 0.11).abs() < 1e-15);
    assert!(near > -0.11 && near < 0.0);
    // Before any window: the full cost.
    assert_eq!(raw(&tiny(), &[40, 20]), 1.0 - 0.11);
}

#[test]
fn probation_ignores_rows_and_windows_inside_it() {
    let s = score_rows(&tiny(), &[0, 5, 14], &Profile::STANDARD);
    assert_eq!(s.raw, -1.0);
    assert_eq!((s.in_probation, s.false_positives), (3, 0));
    let mut truth = tiny();
    truth.windows.insert(0, (2 * MIN, 10 * MIN));
    let s = score_rows(&truth, &[3, 40], &Profile::STANDARD);
    assert_eq!((s.windows, s.scored_windows, s.detected), (2, 1, 1));
    assert_eq!(s.raw, 1.0);
    // A window straddling the probation boundary is scored from its first scored row on.
    truth.windows[0] = (10 * MIN, 19 * MIN);
    let s = score_rows(&truth, &[12, 15, 40], &Profile::STANDARD);
    assert_eq!((s.scored_windows, s.detected, s.in_probation), (2, 2, 1));
    assert_eq!(s.delays[0].rows, 5);
}

#[test]
fn missed_window_costs_fn() {
    assert_eq!(raw(&tiny(), &[]), -1.0);
    assert_eq!(
        score_rows(&tiny(), &[], &Profile::REWARD_LOW_FN_RATE).raw,
        -2.0
    );
}

#[test]
fn timestamps_map_onto_rows() {
    let truth = FileTruth {
        timestamps: (0..100).map(|i| i * MIN).collect(),
        // Neither end is a row: rows 40 (first at or after) ..= 49 (last at or before).
        windows: vec![(39 * MIN + 1, 49 * MIN + 59_999)],
    };
    assert_eq!(truth.window_rows(), vec![(40, 49)]);
    // 39:30 maps to row 40, the window's first row; one after the last row maps to nothing.
    let s = score_file(&truth, &[39 * MIN + 30_000, 100 * MIN], &Profile::STANDARD);
    assert_eq!(s.raw, 1.0);
    assert_eq!(s.unmatched, 1);
}

#[test]
fn repeated_timestamps_map_to_their_first_row() {
    // Rows 0..10, then 5..10 again (time goes back), window on the first 7.
    let mut timestamps: Vec<i64> = (0..10).collect();
    timestamps.extend(5..10);
    let truth = FileTruth {
        timestamps,
        windows: vec![(7, 8)],
    };
    assert_eq!(truth.window_rows(), vec![(7, 8)]);
    assert_eq!(truth.detection_rows(&[7, 12]), vec![7]);
}

#[test]
fn windows_are_sorted_and_merged() {
    let truth = FileTruth {
        timestamps: (0..100).collect(),
        windows: vec![(60, 70), (20, 30), (25, 40), (200, 300)],
    };
    assert_eq!(truth.window_rows(), vec![(20, 40), (60, 70)]);
}

#[test]
fn null_scores_zero_and_window_starts_score_hundred() {
    let truth = tiny();
    let mut two = tiny();
    two.windows.push((70 * MIN, 79 * MIN));
    for profile in Profile::ALL {
        let null = Total::from_files(
            profile,
            &[
                score_rows(&truth, &[], &profile),
                score_rows(&two, &[], &profile),
            ],
        );
        assert_eq!(null.normalised(), 0.0);
        let perfect = Total::from_files(
            profile,
            &[
                score_rows(&truth, &[40], &profile),
                score_rows(&two, &[40, 70], &profile),
            ],
        );
        assert_eq!(perfect.normalised(), 100.0);
        assert_eq!(perfect.delay_summary().map(|d| d.median_rows), Some(0.0));
    }
    assert!(Total::new(Profile::STANDARD).normalised().is_nan());
}

#[test]
fn profiles_by_name() {
    assert_eq!(
        Profile::by_name("reward_low_FP_rate"),
        Some(Profile::REWARD_LOW_FP_RATE)
    );
    assert_eq!(Profile::by_name("nope"), None);
    assert_eq!(Profile::ALL[0], Profile::STANDARD);
}
