//! Model-based property tests of the store: random sequences of commits, flushes, sends,
//! acks, disconnects, crashes and restarts are applied both to a real [`Store`] (sled in a
//! temporary directory) and to a small in-memory model, and the two are compared after every
//! step.
//!
//! Why: the store is the uplink's source of truth, and its promises only show across
//! interleavings that unit tests do not enumerate — a record acknowledged after the last flush
//! and then a crash, a seq handed out again after everything was acked, eviction running while
//! records are in flight. What is checked:
//!
//! 1. **No loss.** Every durable (committed and flushed), unacknowledged record is held with the
//!    same class, topic and payload — in a session, after a restart and after a crash. Within a
//!    session the store holds exactly the model's records, pending ones included.
//! 2. **Order.** Walking `next_in(0, MAX)` yields strictly increasing seqs and exactly the held
//!    records; `next_in(from, below)` returns the smallest held seq in the range.
//! 3. **seq is never reused.** After any reopen `next_seq()` is above every seq that was ever
//!    durable, even when all of them were acknowledged; a clean restart continues exactly
//!    where the previous run stopped. (A seq that never became durable may be handed out again
//!    after a crash: its record was never produced — the uplink only sends durable records.)
//! 4. **Identity.** `epoch()` is the same across reopens, and a reopen never "recovers".
//! 5. **Accounting.** `stats()` counts and bytes equal the held records per class.
//! 6. **At least once, never loss, across a crash.** A crash may bring back records that were
//!    acknowledged after the last flush and may keep records committed after it, but may
//!    invent nothing. Two crashes are modelled: dropping the store without flushing (sled
//!    flushes on drop, so this is mild), and a "power loss" — the store directory is copied
//!    while the store is open, so the reopened store sees only what had reached the files
//!    (like a killed process; sled also writes, unsynced, whatever precedes a batch, so some
//!    unflushed work may survive, which the model accepts).
//! 7. **Budget** (second test, small budget): evictions remove raw windows before summaries
//!    before alerts, the oldest of a class first, only when over 90 % of the budget and only
//!    down to 80 %; `evicted()` counts exactly the records that disappeared without an ack.
//! 8. **Group commit.** A group ([`Store::group`]) gives consecutive seqs in the order its
//!    records were added, each payload built for its own seq, and behaves as the same records
//!    committed one by one (budget enforced once, after the group); across a crash a group
//!    that was never flushed is all there or all gone.

use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use tempfile::TempDir;

/// One step of a test run.
#[derive(Debug, Clone)]
enum Op {
    /// Commit a record of this class with a payload of roughly this many padding bytes.
    Commit(Class, usize),
    /// Commit these records as one group.
    Group(Vec<(Class, usize)>),
    /// `Store::flush()`: everything committed so far becomes durable.
    Flush,
    /// The uplink takes the next record from its cursor: `next_in(cursor, below)`, `below`
    /// being `u64::MAX` or, as the real uplink does, one past the durable high-water mark.
    Send { durable_only: bool },
    /// `next_in(from, below)` on an arbitrary range (both mod `next_seq + 2`, ordered).
    Peek(u8, u8),
    /// The broker acknowledges the k-th in-flight record (mod their number).
    Ack(usize),
    /// A duplicate PUBACK: ack the k-th record already gone (acked or evicted).
    ReAck(usize),
    /// The session drops: nothing is in flight any more; resend from the start.
    Disconnect,
    /// Drop the store without flushing and reopen it.
    Crash,
    /// Power loss: reopen from a copy of the files taken while the store was open.
    PowerLoss,
    /// Flush, drop and reopen.
    Restart,
}

fn class() -> impl Strategy<Value = Class> {
    prop_oneof![Just(Class::Alert), Just(Class::Summary), Just(Class::Raw)]
}

/// Operations for the large-budget test (no eviction).
fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (class(), 0usize..64).prop_map(|(c, p)| Op::Commit(c, p)),
        3 => prop::collection::vec((class(), 0usize..64), 0..12).prop_map(Op::Group),
        3 => Just(Op::Flush),
        5 => any::<bool>().prop_map(|durable_only| Op::Send { durable_only }),
        2 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Peek(a, b)),
        5 => any::<usize>().prop_map(Op::Ack),
        1 => any::<usize>().prop_map(Op::ReAck),
        1 => Just(Op::Disconnect),
        1 => Just(Op::Crash),
        1 => Just(Op::PowerLoss),
        1 => Just(Op::Restart),
    ]
}

/// Operations for the small-budget test: ~4 KB payloads, clean restarts only (eviction
/// counters are checked exactly, which a crash would make approximate).
fn op_evicting() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => (class(), 3000usize..5000).prop_map(|(c, p)| Op::Commit(c, p)),
        3 => prop::collection::vec((class(), 3000usize..5000), 0..6).prop_map(Op::Group),
        2 => Just(Op::Flush),
        4 => any::<bool>().prop_map(|durable_only| Op::Send { durable_only }),
        1 => (any::<u8>(), any::<u8>()).prop_map(|(a, b)| Op::Peek(a, b)),
        4 => any::<usize>().prop_map(Op::Ack),
        1 => any::<usize>().prop_map(Op::ReAck),
        1 => Just(Op::Disconnect),
        1 => Just(Op::Restart),
    ]
}

/// A record as the model knows it.
#[derive(Debug, Clone)]
struct Rec {
    class: Class,
    topic: String,
    payload: Vec<u8>,
    /// A flush completed after it was committed.
    durable: bool,
    /// The first seq of the group it was committed in (its own seq when alone).
    group: u64,
    /// Logical bytes as the store counts them: key + encoded value.
    bytes: u64,
}

impl Rec {
    fn new(class: Class, topic: String, payload: Vec<u8>, durable: bool, group: u64) -> Self {
        let bytes = (9 + codec::encode(&topic, &payload).unwrap().len()) as u64;
        Self {
            class,
            topic,
            payload,
            durable,
            group,
            bytes,
        }
    }

    fn matches(&self, r: &Record) -> bool {
        self.class == r.class && self.topic == r.topic && self.payload == r.payload
    }
}

fn topic(class: Class, seq: u64) -> String {
    format!("edgegw/gw/{}/s{}", class.as_str(), seq % 7)
}

/// A payload that carries its seq, padded.
fn payload(seq: u64, pad: usize) -> Vec<u8> {
    format!("{{\"seq\":{seq},\"pad\":\"{}\"}}", "x".repeat(pad)).into_bytes()
}

/// The seq a payload was built for.
fn seq_of(payload: &[u8]) -> u64 {
    let s = std::str::from_utf8(payload).unwrap();
    let rest = s.strip_prefix("{\"seq\":").unwrap();
    rest[..rest.find(',').unwrap()].parse().unwrap()
}

/// Opens the store; an in-process reopen may briefly find the previous instance's file lock.
fn open(cfg: &StoreConfig) -> Opened {
    for _ in 0..200 {
        match Store::open(cfg) {
            Err(StoreError::Locked(_)) => std::thread::sleep(std::time::Duration::from_millis(10)),
            r => return r.unwrap(),
        }
    }
    panic!("store still locked after 2 s");
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dst = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dst);
        } else {
            std::fs::copy(e.path(), &dst).unwrap();
        }
    }
}

/// The index of a class in `stats()` / `evicted()`.
fn idx(c: Class) -> usize {
    c as usize
}

/// The real store next to its model.
struct Harness {
    dir: TempDir,
    cfg: StoreConfig,
    store: Option<Store>,
    /// Held records (pending and durable), by seq.
    held: BTreeMap<u64, Rec>,
    /// Acked or evicted since the last flush: a crash may bring them back.
    maybe_back: BTreeMap<u64, Rec>,
    /// Acked or evicted and not back (for duplicate PUBACKs).
    gone: Vec<(Class, u64)>,
    /// Sent, awaiting PUBACK.
    inflight: Vec<u64>,
    cursor: u64,
    next_seq: u64,
    /// Highest seq assigned when the last flush completed (or read back at the last reopen):
    /// every seq up to it is durable and must never be handed out again.
    durable_hw: u64,
    epoch: i64,
    evicted: [u64; 3],
    committed: u64,
    acked: u64,
    /// A reopen after which the model had to accept the store's word (crash).
    lossy_reopen: bool,
}

impl Harness {
    fn new(max_bytes: u64, initial_amplification: f64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let cfg = StoreConfig {
            path: dir.path().join("store"),
            max_bytes,
            initial_amplification,
            ..StoreConfig::default()
        };
        let o = open(&cfg);
        assert!(o.recovered.is_none());
        let store = o.store;
        assert_eq!(store.next_seq(), 1, "a fresh store starts at seq 1");
        let epoch = store.epoch();
        Self {
            dir,
            cfg,
            store: Some(store),
            held: BTreeMap::new(),
            maybe_back: BTreeMap::new(),
            gone: Vec::new(),
            inflight: Vec::new(),
            cursor: 0,
            next_seq: 1,
            durable_hw: 0,
            epoch,
            evicted: [0; 3],
            committed: 0,
            acked: 0,
            lossy_reopen: false,
        }
    }

    fn store(&self) -> &Store {
        self.store.as_ref().unwrap()
    }

    fn logical(&self) -> u64 {
        self.held.values().map(|r| r.bytes).sum()
    }

    /// The model's answer to `next_in(from, below)`.
    fn model_next(&self, from: u64, below: u64) -> Option<(u64, &Rec)> {
        if from >= below {
            return None;
        }
        self.held.range(from..below).next().map(|(s, r)| (*s, r))
    }

    fn check_next(&self, from: u64, below: u64) -> Option<u64> {
        let got = self.store().next_in(from, below).unwrap();
        let want = self.model_next(from, below);
        match (&got, want) {
            (None, None) => None,
            (Some(g), Some((seq, r))) => {
                assert_eq!(g.seq, seq, "next_in({from}, {below})");
                assert!(
                    r.matches(g),
                    "next_in({from}, {below}): record {seq} differs"
                );
                Some(seq)
            }
            _ => panic!(
                "next_in({from}, {below}) = {:?}, model says {:?}",
                got.as_ref().map(|r| r.seq),
                want.map(|w| w.0)
            ),
        }
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Commit(class, pad) => self.commit(*class, *pad),
            Op::Group(recs) => self.commit_group(recs),
            Op::Flush => {
                self.store().flush().unwrap();
                self.flushed();
            }
            Op::Send { durable_only } => {
                let below = if *durable_only {
                    self.durable_hw + 1
                } else {
                    u64::MAX
                };
                if let Some(seq) = self.check_next(self.cursor, below) {
                    if *durable_only {
                        assert!(self.held[&seq].durable, "seq {seq} <= hw but not durable");
                    }
                    self.cursor = seq + 1;
                    self.inflight.push(seq);
                }
            }
            Op::Peek(a, b) => {
                let m = self.next_seq + 2;
                let (x, y) = (u64::from(*a) % m, u64::from(*b) % m);
                self.check_next(x.min(y), x.max(y));
            }
            Op::Ack(i) => {
                if self.inflight.is_empty() {
                    return;
                }
                let seq = self.inflight.remove(i % self.inflight.len());
                match self.held.remove(&seq) {
                    Some(r) => {
                        assert!(self.store().ack(r.class, seq).unwrap(), "ack {seq}");
                        self.gone.push((r.class, seq));
                        self.maybe_back.insert(seq, r);
                        self.acked += 1;
                    }
                    None => {
                        // Evicted while in flight: the PUBACK finds nothing.
                        let (c, _) = *self.gone.iter().find(|g| g.1 == seq).unwrap();
                        assert!(!self.store().ack(c, seq).unwrap(), "ack {seq} not held");
                    }
                }
            }
            Op::ReAck(i) => {
                if self.gone.is_empty() {
                    return;
                }
                let (c, seq) = self.gone[i % self.gone.len()];
                assert!(!self.store().ack(c, seq).unwrap(), "duplicate ack {seq}");
            }
            Op::Disconnect => {
                self.inflight.clear();
                self.cursor = 0;
            }
            Op::Crash => {
                drop(self.store.take());
                self.reopen(false);
            }
            Op::PowerLoss => {
                let snap = self.dir.path().join("snap");
                copy_dir(&self.cfg.path, &snap);
                drop(self.store.take());
                std::fs::remove_dir_all(&self.cfg.path).unwrap();
                std::fs::rename(&snap, &self.cfg.path).unwrap();
                self.reopen(false);
            }
            Op::Restart => {
                self.store().flush().unwrap();
                self.flushed();
                drop(self.store.take());
                self.reopen(true);
            }
        }
    }

    fn flushed(&mut self) {
        for r in self.held.values_mut() {
            r.durable = true;
        }
        self.maybe_back.clear();
        self.durable_hw = self.next_seq - 1;
    }

    fn commit(&mut self, class: Class, pad: usize) {
        let want = self.next_seq;
        let t = topic(class, want);
        let mut built = None;
        let (seq, evicted) = self
            .store()
            .commit(class, &t, |s| {
                built = Some(s);
                payload(s, pad)
            })
            .unwrap();
        assert_eq!(seq, want, "commit got an unexpected seq");
        assert_eq!(built, Some(seq), "payload built for another seq");
        self.next_seq = seq + 1;
        self.committed += 1;
        self.held
            .insert(seq, Rec::new(class, t, payload(seq, pad), false, seq));
        self.check_evictions(&evicted);
    }

    fn commit_group(&mut self, recs: &[(Class, usize)]) {
        let first = self.next_seq;
        let store = self.store.as_ref().unwrap();
        let mut g = store.group();
        let mut added = Vec::new();
        for (i, &(class, pad)) in recs.iter().enumerate() {
            let want = first + i as u64;
            let t = topic(class, want);
            let mut built = None;
            let seq = g.add(class, &t, |s| {
                built = Some(s);
                payload(s, pad)
            });
            assert_eq!(seq, want, "group records get consecutive seqs");
            assert_eq!(built, Some(seq), "payload built for another seq");
            assert_eq!(g.len(), i + 1);
            added.push((seq, Rec::new(class, t, payload(seq, pad), false, first)));
        }
        let evicted = g.commit().unwrap();
        assert_eq!(self.store().next_seq(), first + recs.len() as u64);
        self.next_seq = first + recs.len() as u64;
        self.committed += recs.len() as u64;
        self.held.extend(added);
        self.check_evictions(&evicted);
    }

    /// After a commit (of one record or a group): the store evicted exactly what the budget
    /// rules say, given what the model holds.
    fn check_evictions(&mut self, evicted: &[(Class, u64)]) {
        // The budget, exactly as the store computes it (amplification stays at its initial
        // value: nothing here calls `refresh`).
        let amp = self.cfg.initial_amplification;
        let est = |logical: u64| (logical as f64 * amp) as u64;
        let high = self.cfg.max_bytes as f64 * 0.9;
        let target = (self.cfg.max_bytes as f64 * 0.8) as u64;
        let mut logical = self.logical();
        if est(logical) as f64 <= high {
            assert!(evicted.is_empty(), "evicted under budget: {evicted:?}");
            return;
        }
        assert!(!evicted.is_empty(), "over budget and nothing evicted");
        for &(c, q) in evicted {
            assert!(
                est(logical) > target,
                "evicted {q} though already under the target"
            );
            // Raw windows first, then summaries, alerts last; the oldest of a class first.
            let victim = [Class::Raw, Class::Summary, Class::Alert]
                .into_iter()
                .find(|vc| self.held.values().any(|r| r.class == *vc))
                .unwrap();
            assert_eq!(
                c, victim,
                "evicted a {c:?} ({q}) while a {victim:?} was held"
            );
            let oldest = self
                .held
                .iter()
                .find(|(_, r)| r.class == c)
                .map(|(s, _)| *s)
                .unwrap();
            assert_eq!(q, oldest, "evicted {c:?} {q}, not the oldest ({oldest})");
            let r = self.held.remove(&q).unwrap();
            logical -= r.bytes;
            self.evicted[idx(c)] += 1;
            self.gone.push((c, q));
            self.maybe_back.insert(q, r);
        }
        assert!(
            est(logical) <= target || self.held.is_empty(),
            "eviction stopped above the target"
        );
    }

    /// Reopens after the store was dropped: `exact` after a clean restart, else the crash
    /// rules (no loss of durable records, nothing invented, acked/pending may or may not be
    /// there). Then the model adopts what the store holds.
    fn reopen(&mut self, exact: bool) {
        let o = open(&self.cfg);
        assert!(o.recovered.is_none(), "reopen recovered: {:?}", o.recovered);
        let s = o.store;
        assert_eq!(s.epoch(), self.epoch, "epoch changed across a reopen");
        let got: BTreeMap<u64, Record> = s
            .records()
            .unwrap()
            .into_iter()
            .map(|r| (r.seq, r))
            .collect();
        for (seq, r) in &self.held {
            match got.get(seq) {
                Some(g) => assert!(r.matches(g), "record {seq} changed across a reopen"),
                None => assert!(!r.durable, "durable record {seq} lost"),
            }
        }
        // A group never flushed comes back whole or not at all.
        for (seq, r) in self.held.iter().filter(|(_, r)| !r.durable) {
            let mates = self.held.iter().filter(|(_, m)| m.group == r.group);
            let back = mates.clone().filter(|(q, _)| got.contains_key(q)).count();
            assert!(
                back == 0 || back == mates.count(),
                "group {} (record {seq}) came back in part",
                r.group
            );
        }
        for (seq, g) in &got {
            let m = self
                .held
                .get(seq)
                .or_else(|| self.maybe_back.get(seq))
                .unwrap_or_else(|| panic!("record {seq} appeared from nowhere"));
            assert!(m.matches(g), "record {seq} changed across a reopen");
        }
        if exact {
            assert!(
                got.keys().eq(self.held.keys()),
                "clean restart: held {:?}, model {:?}",
                got.keys().collect::<Vec<_>>(),
                self.held.keys().collect::<Vec<_>>()
            );
        }
        let ns = s.next_seq();
        assert!(
            ns > self.durable_hw,
            "seq reuse: next_seq {ns} but seq {} was durable",
            self.durable_hw
        );
        assert!(
            ns <= self.next_seq,
            "next_seq {ns} beyond any seq handed out"
        );
        if exact {
            assert_eq!(ns, self.next_seq, "clean restart must continue the seqs");
        }
        assert!(got.keys().all(|q| *q < ns), "a held seq >= next_seq {ns}");
        assert_eq!(s.evicted(), self.evicted, "eviction counts across a reopen");

        // Adopt the store's word: everything it read back is on disk.
        if !exact {
            self.lossy_reopen = true;
        }
        self.held = got
            .into_values()
            .map(|r| (r.seq, Rec::new(r.class, r.topic, r.payload, true, r.seq)))
            .collect();
        self.maybe_back.clear();
        // A seq at or above the new next_seq was never durable and is free again: a later
        // commit may take it, so it is no longer "gone".
        self.gone
            .retain(|g| !self.held.contains_key(&g.1) && g.1 < ns);
        self.inflight.clear();
        self.cursor = 0;
        self.next_seq = ns;
        self.durable_hw = ns - 1;
        self.store = Some(s);
    }

    /// Exact agreement within a session; `walk` also walks `next_in` over everything.
    fn check(&self, walk: bool) {
        let s = self.store();
        let recs = s.records().unwrap();
        assert_eq!(
            recs.iter().map(|r| (r.seq, r.class)).collect::<Vec<_>>(),
            self.held
                .iter()
                .map(|(q, r)| (*q, r.class))
                .collect::<Vec<_>>(),
            "held records"
        );
        for r in &recs {
            assert!(self.held[&r.seq].matches(r), "record {} differs", r.seq);
            assert_eq!(
                seq_of(&r.payload),
                r.seq,
                "payload of {} is not its own",
                r.seq
            );
        }
        // Walking next_in yields every held record, in strictly increasing seq order.
        if walk {
            let mut from = 0;
            let mut walked = Vec::new();
            while let Some(r) = s.next_in(from, u64::MAX).unwrap() {
                assert!(r.seq >= from, "next_in({from}) went back to {}", r.seq);
                from = r.seq + 1;
                walked.push(r);
            }
            assert!(walked.windows(2).all(|w| w[0].seq < w[1].seq));
            assert_eq!(walked, recs, "next_in walk vs records()");
        }
        // Accounting.
        for (c, st) in s.stats() {
            let mine = self.held.values().filter(|r| r.class == c);
            assert_eq!(st.count, mine.clone().count() as u64, "{c:?} count");
            assert_eq!(st.bytes, mine.map(|r| r.bytes).sum::<u64>(), "{c:?} bytes");
        }
        assert_eq!(s.evicted(), self.evicted, "eviction counts");
        assert_eq!(s.next_seq(), self.next_seq, "next_seq");
        assert_eq!(s.epoch(), self.epoch, "epoch");
        // What the uplink relies on: every seq up to the durable high-water mark is durable.
        assert!(
            self.held
                .iter()
                .all(|(q, r)| *q > self.durable_hw || r.durable),
            "a held record at or below the durable mark is not durable"
        );
        if !self.lossy_reopen {
            let ev: u64 = self.evicted.iter().sum();
            assert_eq!(
                self.committed,
                self.held.len() as u64 + self.acked + ev,
                "records disappeared without an ack or an eviction"
            );
        }
    }

    /// Applies `ops`, checking after each. `walk_after_commit: false` skips the `next_in` walk
    /// right after a commit (every other check still runs, and the next non-commit step walks):
    /// with ~4 KB payloads in a debug build the walk is most of the running time.
    fn run(mut self, ops: &[Op], walk_after_commit: bool) {
        self.check(true);
        for op in ops {
            self.apply(op);
            self.check(walk_after_commit || !matches!(op, Op::Commit(..) | Op::Group(_)));
        }
        // End with a clean restart: everything agrees exactly.
        self.apply(&Op::Restart);
        self.check(true);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Large budget: no eviction; crashes, restarts, resends.
    #[test]
    fn store_agrees_with_model(ops in prop::collection::vec(op(), 1..60)) {
        let h = Harness::new(1 << 30, StoreConfig::default().initial_amplification);
        h.run(&ops, true);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    /// Small budget: 1 MiB at an assumed amplification of 20 (the highest allowed) holds
    /// ~47 KB of records, about 11 records of ~4 KB, so most runs evict, many of them several
    /// classes deep.
    #[test]
    fn eviction_order_and_counts(ops in prop::collection::vec(op_evicting(), 1..80)) {
        let h = Harness::new(1 << 20, 20.0);
        h.run(&ops, false);
    }
}

/// The power-loss simulation really loses what was not flushed (otherwise the crash cases of
/// the model test would be clean restarts in disguise), and the seqs that come back are the
/// ones that were never durable — never one that was.
///
/// The order matters: sled writes (without syncing) everything logged before a batch when the
/// batch starts, so an ack followed by a commit may reach the files before the next flush.
/// Here the ack comes last, and the commit's batch is still in an unwritten buffer.
#[test]
fn power_loss_drops_unflushed_work_but_no_durable_seq() {
    let mut h = Harness::new(1 << 30, 3.0);
    h.apply(&Op::Commit(Class::Alert, 4));
    h.apply(&Op::Commit(Class::Summary, 4));
    h.apply(&Op::Flush);
    h.apply(&Op::Commit(Class::Raw, 4));
    h.apply(&Op::Send { durable_only: true });
    h.apply(&Op::Ack(0));
    h.check(true);
    assert_eq!(h.store().records().unwrap().len(), 2);
    h.apply(&Op::PowerLoss);
    let seqs: Vec<u64> = h.store().records().unwrap().iter().map(|r| r.seq).collect();
    // Record 1 was acked after the flush: it comes back (at least once). Record 3 was never
    // flushed: it is gone, and its seq is free again because it was never produced.
    assert_eq!(seqs, vec![1, 2]);
    assert_eq!(h.store().next_seq(), 3);
    h.check(true);
}
