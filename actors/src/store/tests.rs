use super::*;

fn cfg(dir: &Path, max_bytes: u64) -> StoreConfig {
    StoreConfig {
        path: dir.join("store"),
        max_bytes,
        ..StoreConfig::default()
    }
}

fn commit(s: &Store, class: Class, len: usize) -> u64 {
    s.commit(class, "t", |seq| {
        let mut p = seq.to_string().into_bytes();
        p.resize(len.max(p.len()), b' ');
        p
    })
    .unwrap()
    .0
}

#[test]
fn seq_survives_reopen_even_when_everything_was_acked() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 1 << 30);
    let epoch;
    {
        let s = Store::open(&c).unwrap().store;
        epoch = s.epoch();
        for _ in 0..5 {
            commit(&s, Class::Summary, 10);
        }
        for seq in 1..=5 {
            assert!(s.ack(Class::Summary, seq).unwrap());
        }
        s.flush().unwrap();
    }
    let s = Store::open(&c).unwrap().store;
    assert_eq!(s.epoch(), epoch);
    assert_eq!(s.next_seq(), 6, "a seq was about to be reused");
    assert!(s.next_in(0, u64::MAX).unwrap().is_none());
}

#[test]
fn unacked_records_come_back_in_seq_order_across_classes() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 1 << 30);
    {
        let s = Store::open(&c).unwrap().store;
        commit(&s, Class::Summary, 10);
        commit(&s, Class::Alert, 10);
        commit(&s, Class::Raw, 10);
        commit(&s, Class::Alert, 10);
        s.ack(Class::Alert, 2).unwrap();
        s.flush().unwrap();
    }
    let s = Store::open(&c).unwrap().store;
    let mut seen = Vec::new();
    let mut from = 0;
    while let Some(r) = s.next_in(from, u64::MAX).unwrap() {
        seen.push((r.seq, r.class));
        from = r.seq + 1;
    }
    assert_eq!(
        seen,
        vec![(1, Class::Summary), (3, Class::Raw), (4, Class::Alert)]
    );
    assert_eq!(s.next_in(2, 4).unwrap().map(|r| r.seq), Some(3));
    let st = s.stats();
    assert_eq!((st[0].1.count, st[1].1.count, st[2].1.count), (1, 1, 1));
}

#[test]
fn budget_evicts_raw_then_oldest_summaries_then_alerts_and_counts_them() {
    let dir = tempfile::tempdir().unwrap();
    // 1 MiB budget at amplification 3: about 280 KiB of logical data before eviction.
    let s = Store::open(&cfg(dir.path(), 1 << 20)).unwrap().store;
    let mut seqs = Vec::new();
    for i in 0..100 {
        let class = [Class::Alert, Class::Summary, Class::Raw][i % 3];
        seqs.push((commit(&s, class, 4000), class));
    }
    let ev = s.evicted();
    assert!(ev[2] > 0, "raw windows go first: {ev:?}");
    assert_eq!(ev[0], 0, "no alert evicted while others remain: {ev:?}");
    // Raw windows are all gone before any summary went, and the summaries that went are the oldest.
    let held: Vec<u64> = s.records().unwrap().iter().map(|r| r.seq).collect();
    let raw_left = seqs
        .iter()
        .filter(|(q, c)| *c == Class::Raw && held.contains(q))
        .count();
    if ev[1] > 0 {
        assert_eq!(raw_left, 0);
        let summaries: Vec<u64> = seqs
            .iter()
            .filter(|(_, c)| *c == Class::Summary)
            .map(|(q, _)| *q)
            .collect();
        let gone: Vec<u64> = summaries
            .iter()
            .copied()
            .filter(|q| !held.contains(q))
            .collect();
        assert_eq!(
            gone,
            summaries[..gone.len()].to_vec(),
            "oldest summaries first"
        );
    }
    assert!(s.fill() <= 0.9, "fill {}", s.fill());
    // Filling with alerts only eventually evicts the oldest alerts.
    for _ in 0..200 {
        commit(&s, Class::Alert, 4000);
    }
    assert!(s.evicted()[0] > 0);
    drop(s);
    let s = Store::open(&cfg(dir.path(), 1 << 20)).unwrap().store;
    assert!(s.evicted()[2] > 0, "eviction counts persist");
}

#[test]
fn corrupt_store_is_moved_aside_and_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 1 << 30);
    {
        let s = Store::open(&c).unwrap().store;
        commit(&s, Class::Alert, 10);
        s.flush().unwrap();
    }
    // Overwrite every file of the store with garbage.
    for e in walk(&c.path) {
        std::fs::write(&e, vec![0xA5u8; 4096]).unwrap();
    }
    let o = Store::open(&c).unwrap();
    let why = o.recovered.expect("recovery reported");
    assert!(why.contains("moved to"), "{why}");
    assert_eq!(o.store.next_seq(), 1);
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".corrupt-"))
        .collect();
    assert_eq!(aside.len(), 1, "old store kept aside for inspection");
}

#[test]
fn a_locked_store_is_refused_not_moved() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 1 << 30);
    let _held = Store::open(&c).unwrap();
    // sled's lock is per process file lock; a second open in the same process shares the
    // in-process cache, so take the lock from a child process instead.
    let out = std::process::Command::new("flock")
        .arg("--nonblock")
        .arg(c.path.join("db"))
        .arg("true")
        .status();
    if let Ok(st) = out {
        assert!(!st.success(), "the store file must be locked while open");
    }
}

fn walk(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            let path = e.path();
            if path.is_dir() {
                out.extend(walk(&path));
            } else {
                out.push(path);
            }
        }
    }
    out
}

#[test]
fn a_group_gets_consecutive_seqs_and_one_high_water_mark() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 1 << 30);
    {
        let s = Store::open(&c).unwrap().store;
        commit(&s, Class::Alert, 10);
        let mut g = s.group();
        let seqs: Vec<u64> = [Class::Summary, Class::Raw, Class::Alert]
            .into_iter()
            .map(|class| g.add(class, "t", |seq| seq.to_string().into_bytes()))
            .collect();
        assert_eq!(seqs, vec![2, 3, 4]);
        assert_eq!(g.len(), 3);
        assert!(g.commit().unwrap().is_empty());
        assert_eq!(s.next_seq(), 5);
        // A group dropped before its commit writes nothing and gives out no seq.
        let mut g = s.group();
        g.add(Class::Alert, "t", |seq| seq.to_string().into_bytes());
        drop(g);
        assert_eq!(s.next_seq(), 5);
        // An empty group neither.
        assert!(s.group().is_empty());
        assert!(s.group().commit().unwrap().is_empty());
        assert_eq!(s.next_seq(), 5);
        let held: Vec<(u64, Class, Vec<u8>)> = s
            .records()
            .unwrap()
            .into_iter()
            .map(|r| (r.seq, r.class, r.payload))
            .collect();
        assert_eq!(held.len(), 4);
        for (seq, _, p) in &held[1..] {
            assert_eq!(
                p,
                seq.to_string().as_bytes(),
                "payload built for its own seq"
            );
        }
        for (seq, class, _) in held {
            assert!(s.ack(class, seq).unwrap());
        }
        s.flush().unwrap();
    }
    // Everything acked and deleted: the group's high-water mark still holds the seqs.
    let s = Store::open(&c).unwrap().store;
    assert_eq!(s.next_seq(), 5, "a seq of the group was about to be reused");
}
