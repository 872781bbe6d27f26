//! The alert gate with injected event time, and the global cap on governor's fake clock.

use super::storm::*;
use crate::config::AlertsConfig;
use governor::clock::FakeRelativeClock;
use std::time::Duration;

const S: i64 = 1000;

fn gate() -> AlertGate {
    AlertGate::new(GateConfig {
        cooldown: 30 * S,
        repeat: 600 * S,
        episode_end: 3,
        gap: 300 * S,
    })
}

/// Event time runs on its own scale (epoch ms), the clock on samples: an episode reports
/// event time.
const EPOCH: i64 = 1_700_000_000_000;

fn at(clock: i64) -> At {
    At {
        clock,
        ts: EPOCH + clock,
    }
}

fn yes() -> bool {
    true
}

/// Feeds `(t, anomalous)` with an open cap; returns the raised alerts' times and counts.
fn run(g: &mut AlertGate, decisions: impl IntoIterator<Item = (i64, bool)>) -> Vec<(i64, u64)> {
    let mut raised = Vec::new();
    for (t, a) in decisions {
        if let Verdict::Raise {
            suppressed_before, ..
        } = g.decide(at(t), a, yes)
        {
            raised.push((t, suppressed_before));
        }
    }
    raised
}

#[test]
fn storm_first_decision_of_an_episode_alerts_the_rest_are_duplicates() {
    let mut g = gate();
    assert_eq!(
        g.decide(at(0), true, yes),
        Verdict::Raise {
            suppressed_before: 0,
            episode: EpisodeInfo {
                start: EPOCH,
                decisions: 1
            }
        }
    );
    for i in 1..10 {
        assert_eq!(
            g.decide(at(i * 2 * S), true, yes),
            Verdict::Suppress(Suppressed::Duplicate)
        );
    }
    // Two normal decisions do not end the episode (episode_end = 3) …
    assert_eq!(g.decide(at(100 * S), false, yes), Verdict::Normal);
    assert_eq!(g.decide(at(102 * S), false, yes), Verdict::Normal);
    assert_eq!(
        g.decide(at(104 * S), true, yes),
        Verdict::Suppress(Suppressed::Duplicate)
    );
    // … three do, and the next anomalous decision opens a new episode, which alerts.
    for i in 0..3 {
        g.decide(at((106 + 2 * i) * S), false, yes);
    }
    assert_eq!(
        g.decide(at(120 * S), true, yes),
        Verdict::Raise {
            suppressed_before: 10,
            episode: EpisodeInfo {
                start: EPOCH + 120 * S,
                decisions: 1
            }
        }
    );
    assert_eq!(g.take_period(), (12, 0));
}

#[test]
fn storm_reminders_every_alert_repeat_and_never_with_zero() {
    let mut g = gate();
    let raised = run(&mut g, (0..=1800).map(|i| (i * S, true)));
    let times: Vec<i64> = raised.iter().map(|r| r.0).collect();
    assert_eq!(times, vec![0, 600 * S, 1200 * S, 1800 * S]);
    assert!(raised[1..].iter().all(|r| r.1 == 599));

    let mut g = AlertGate::new(GateConfig {
        cooldown: 30 * S,
        repeat: 0,
        episode_end: 3,
        gap: 300 * S,
    });
    assert_eq!(run(&mut g, (0..=1800).map(|i| (i * S, true))).len(), 1);
    assert_eq!(g.take_period(), (1801, 1800));
}

#[test]
fn storm_flapping_sensor_alerts_at_most_once_per_cooldown() {
    let mut g = gate();
    // 4 anomalous, 3 normal decisions, 1 s apart: a new episode every 7 s for 10 minutes.
    let decisions = (0..600).map(|i| (i * S, i % 7 < 4));
    let raised = run(&mut g, decisions);
    assert!(raised.len() as i64 <= 600 / 30 + 1, "{raised:?}");
    assert!(raised.windows(2).all(|w| w[1].0 - w[0].0 >= 30 * S));
    // Every episode that outlasts the cooldown's refusal is announced: about one per 35 s.
    assert!(raised.len() >= 15, "{raised:?}");
    let (anomalous, pending) = g.take_period();
    let sent: u64 = raised.iter().map(|r| r.1).sum();
    assert_eq!(anomalous, raised.len() as u64 + sent + pending);
}

#[test]
fn storm_silence_ends_an_episode_and_a_late_decision_stays_in_its_episode() {
    let mut g = gate();
    assert!(matches!(g.decide(at(0), true, yes), Verdict::Raise { .. }));
    // Scored out of order: still the same episode.
    assert_eq!(
        g.decide(at(-5 * S), true, yes),
        Verdict::Suppress(Suppressed::Duplicate)
    );
    // No decision for longer than the gap: a new episode.
    match g.decide(at(301 * S), true, yes) {
        Verdict::Raise {
            suppressed_before,
            episode,
        } => {
            assert_eq!(suppressed_before, 1);
            assert_eq!(episode.start, EPOCH + 301 * S);
        }
        v => panic!("{v:?}"),
    }
}

#[test]
fn storm_out_of_order_decisions_never_alert_inside_the_cooldown() {
    let mut g = gate();
    assert!(matches!(g.decide(at(0), true, yes), Verdict::Raise { .. }));
    for t in [31, 32, 33, 40] {
        assert_eq!(g.decide(at(t * S), false, yes), Verdict::Normal);
    }
    // Scored late: a new episode, but its window ends 29 s after the last alert.
    assert_eq!(
        g.decide(at(29 * S), true, yes),
        Verdict::Suppress(Suppressed::Cooldown)
    );
    // An earlier window of the same episode moves its start back.
    assert_eq!(
        g.decide(at(41 * S), true, yes),
        Verdict::Raise {
            suppressed_before: 1,
            episode: EpisodeInfo {
                start: EPOCH + 29 * S,
                decisions: 2
            }
        }
    );
}

#[test]
fn storm_cap_refusal_is_counted_and_the_episode_keeps_wanting_its_alert() {
    let mut g = gate();
    assert_eq!(
        g.decide(at(0), true, || false),
        Verdict::Suppress(Suppressed::Cap)
    );
    assert_eq!(
        g.decide(at(S), true, || false),
        Verdict::Suppress(Suppressed::Cap)
    );
    assert_eq!(
        g.decide(at(2 * S), true, yes),
        Verdict::Raise {
            suppressed_before: 2,
            episode: EpisodeInfo {
                start: EPOCH,
                decisions: 3
            }
        }
    );
    // The cap is not asked (nor consumed) for a duplicate.
    assert_eq!(
        g.decide(at(3 * S), true, || panic!("cap asked for a duplicate")),
        Verdict::Suppress(Suppressed::Duplicate)
    );
    // A summary takes what no alert carried; the next alert starts from zero.
    assert_eq!(g.take_period(), (4, 1));
    assert!(!g.has_pending());
}

#[test]
fn storm_cap_allows_max_per_minute_then_refills() {
    let clock = FakeRelativeClock::default();
    let cap = AlertCap::with_clock(&AlertsConfig { max_per_minute: 6 }, clock.clone());
    assert_eq!((0..10).filter(|_| cap.allow()).count(), 6);
    clock.advance(Duration::from_secs(10));
    assert!(cap.allow());
    assert!(!cap.allow());
    clock.advance(Duration::from_secs(60));
    assert_eq!((0..10).filter(|_| cap.allow()).count(), 6);
}

#[test]
fn storm_many_sensors_share_one_cap() {
    let clock = FakeRelativeClock::default();
    let cap = AlertCap::with_clock(&AlertsConfig { max_per_minute: 5 }, clock.clone());
    let mut gates: Vec<AlertGate> = (0..20).map(|_| gate()).collect();
    let mut raised = 0;
    let mut suppressed = 0;
    for g in gates.iter_mut() {
        match g.decide(at(0), true, || cap.allow()) {
            Verdict::Raise { .. } => raised += 1,
            Verdict::Suppress(Suppressed::Cap) => suppressed += 1,
            v => panic!("{v:?}"),
        }
    }
    assert_eq!((raised, suppressed), (5, 15));
    // A minute later the capped sensors' episodes are still open and get their alerts, each
    // carrying the one suppression.
    clock.advance(Duration::from_secs(60));
    let mut carried = 0;
    for g in gates.iter_mut() {
        if let Verdict::Raise {
            suppressed_before, ..
        } = g.decide(at(60 * S), true, || cap.allow())
        {
            carried += suppressed_before;
        }
    }
    assert_eq!(carried, 5);
}
