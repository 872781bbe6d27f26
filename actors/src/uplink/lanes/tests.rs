//! The lanes against a real store on disk: live records go first, the backlog follows in seq
//! order when the pacing allows, and acknowledged records are skipped.
#![allow(clippy::unwrap_used)] // a failure here should stop the test loudly.

use super::*;
use crate::config::StoreConfig;
use crate::outbound::Class;

fn store(dir: &std::path::Path) -> Store {
    let cfg = StoreConfig {
        path: dir.join("store"),
        ..StoreConfig::default()
    };
    Store::open(&cfg).unwrap().store
}

fn commit(s: &Store, class: Class) -> u64 {
    s.commit(class, "t", |seq| seq.to_string().into_bytes())
        .unwrap()
        .0
}

/// Drains the lanes, granting `tokens` replay tokens: the seqs sent, each marked live
/// (`true`) or backlog, and how the drain stopped.
fn drain(
    lanes: &mut Lanes,
    s: &Store,
    durable: u64,
    mut tokens: usize,
) -> (Vec<(u64, bool)>, Next) {
    let mut sent = Vec::new();
    loop {
        let grant = || {
            let ok = tokens > 0;
            tokens = tokens.saturating_sub(1);
            ok
        };
        match lanes.next(s, durable, grant).unwrap() {
            Next::Live(r) => sent.push((r.seq, true)),
            Next::Backlog(r) => sent.push((r.seq, false)),
            end => return (sent, end),
        }
    }
}

#[test]
fn live_first_then_the_backlog_in_order_as_the_pacing_allows() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    // Five records from before the session (one acknowledged since), then three during it.
    let old: Vec<u64> = (0..5).map(|_| commit(&s, Class::Summary)).collect();
    s.ack(Class::Summary, old[2]).unwrap();
    let mut lanes = Lanes::starting_after(old[4]);
    let live: Vec<u64> = [Class::Alert, Class::Raw, Class::Summary]
        .into_iter()
        .map(|c| commit(&s, c))
        .collect();
    // Only what is durable goes out: the last live record is not yet.
    let (sent, end) = drain(&mut lanes, &s, live[1], 2);
    assert_eq!(
        sent,
        vec![
            (live[0], true),
            (live[1], true),
            (old[0], false),
            (old[1], false)
        ]
    );
    assert!(matches!(end, Next::Paced), "{end:?}");
    // A newly durable live record overtakes the rest of the backlog.
    let (sent, end) = drain(&mut lanes, &s, live[2], 10);
    assert_eq!(
        sent,
        vec![(live[2], true), (old[3], false), (old[4], false)]
    );
    assert!(matches!(end, Next::Idle), "{end:?}");
    // Drained: no token is asked for any more.
    let (sent, end) = drain(&mut lanes, &s, live[2], 0);
    assert!(sent.is_empty());
    assert!(matches!(end, Next::Idle), "{end:?}");
}

#[test]
fn a_new_session_sends_everything_held_again() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(dir.path());
    let seqs: Vec<u64> = (0..3).map(|_| commit(&s, Class::Alert)).collect();
    let mut first = Lanes::starting_after(0);
    let (sent, _) = drain(&mut first, &s, seqs[2], 0);
    assert_eq!(sent.len(), 3, "all live in the first session");
    // No PUBACK came: the next session finds them all in its backlog.
    let mut second = Lanes::starting_after(seqs[2]);
    let (sent, end) = drain(&mut second, &s, seqs[2], 10);
    assert_eq!(sent, seqs.iter().map(|q| (*q, false)).collect::<Vec<_>>());
    assert!(matches!(end, Next::Idle));
}
