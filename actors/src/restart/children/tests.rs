//! [`Children`] against real ractor actors: a supervisor that hands its supervision events to
//! the test, and children that panic or stop on command.
#![allow(clippy::unwrap_used)] // a failure here should stop the test loudly.

use super::*;
use crate::duration::Dur;
use ractor::{Actor, ActorProcessingErr};
use tokio::sync::mpsc;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key(u8);

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "child {}", self.0)
    }
}

impl ChildKey for Key {
    fn kind(&self) -> &'static str {
        "test_child"
    }
    fn stage(&self) -> Option<&'static str> {
        Some("test_stage")
    }
    fn escalation(&self) -> Option<Condition> {
        Some(Condition::SensorRestartsEscalated)
    }
}

/// Forwards its supervision events.
struct Sup;

impl Actor for Sup {
    type Msg = ();
    type State = mpsc::UnboundedSender<SupervisionEvent>;
    type Arguments = mpsc::UnboundedSender<SupervisionEvent>;

    async fn pre_start(
        &self,
        _: ActorRef<()>,
        tx: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(tx)
    }

    async fn handle_supervisor_evt(
        &self,
        _: ActorRef<()>,
        evt: SupervisionEvent,
        tx: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let _ = tx.send(evt);
        Ok(())
    }
}

/// Panics on `true`.
struct Kid;

impl Actor for Kid {
    type Msg = bool;
    type State = ();
    type Arguments = ();

    async fn pre_start(&self, _: ActorRef<bool>, _: ()) -> Result<(), ActorProcessingErr> {
        Ok(())
    }

    async fn handle(
        &self,
        _: ActorRef<bool>,
        panic: bool,
        _: &mut (),
    ) -> Result<(), ActorProcessingErr> {
        assert!(!panic, "told to panic");
        Ok(())
    }
}

struct Rig {
    sup: ActorRef<()>,
    events: mpsc::UnboundedReceiver<SupervisionEvent>,
    status: Arc<StatusBoard>,
    metrics: Arc<Metrics>,
    children: Children<Key, ActorRef<bool>, u32>,
}

impl Rig {
    async fn new(strategy: Strategy, max_restarts: u32) -> Rig {
        let (tx, events) = mpsc::unbounded_channel();
        let (sup, _) = Actor::spawn(None, Sup, tx).await.unwrap();
        let (status, metrics) = (Arc::new(StatusBoard::default()), Arc::new(Metrics::new()));
        let policy = RestartPolicy {
            strategy,
            max_restarts,
            period: Dur::ms(300),
            backoff_initial: Dur::ms(10),
            backoff_max: Dur::ms(40),
            jitter: 0.0,
        };
        let children = Children::new(policy, status.clone(), metrics.clone());
        Rig {
            sup,
            events,
            status,
            metrics,
            children,
        }
    }

    async fn spawn(&mut self, k: u8) -> ActorId {
        let key = Key(k);
        self.children.insert(key.clone(), 0);
        let (a, _) = Actor::spawn_linked(None, Kid, (), self.sup.get_cell())
            .await
            .unwrap();
        let id = a.get_id();
        self.children.started(&key, a);
        id
    }

    fn id(&self, k: u8) -> Option<ActorId> {
        self.children
            .get(&Key(k))
            .and_then(|c| c.handle())
            .map(|h| h.get_id())
    }

    /// The next supervision event that is an exit, as the helper reads it.
    async fn next_exit(&mut self) -> Option<(Key, String)> {
        loop {
            let evt = tokio::time::timeout(Duration::from_secs(5), self.events.recv())
                .await
                .expect("a supervision event within 5 s")
                .expect("supervisor alive");
            if matches!(
                evt,
                SupervisionEvent::ActorFailed(..) | SupervisionEvent::ActorTerminated(..)
            ) {
                return self.children.exit(evt);
            }
        }
    }

    fn crash(&self, k: u8) {
        let c = self.children.get(&Key(k)).unwrap();
        c.handle().unwrap().cast(true).unwrap();
    }
}

#[tokio::test]
async fn one_for_one_restarts_only_the_failed_child() {
    let mut rig = Rig::new(Strategy::OneForOne, 5).await;
    for k in 0..3 {
        rig.spawn(k).await;
    }
    let (b, c) = (rig.id(1), rig.id(2));
    rig.crash(0);
    let (key, why) = rig.next_exit().await.expect("an unexpected exit");
    assert_eq!(key, Key(0));
    assert!(why.contains("told to panic"), "{why}");
    assert!(rig.children.is_down(&Key(0)));
    let restarts = rig.children.failed(&key, &why);
    assert_eq!(
        restarts,
        vec![Restart {
            key: Key(0),
            delay: Duration::from_millis(10)
        }]
    );
    assert_eq!((rig.id(1), rig.id(2)), (b, c), "siblings untouched");
    assert_eq!(rig.metrics.restarts("test_child"), 1);
    assert_eq!(
        rig.status.stages()["test_stage"].state,
        StageState::Restarting
    );
    rig.spawn(0).await;
    assert_eq!(rig.status.stages()["test_stage"].state, StageState::Running);
    assert_eq!(rig.children.running(), 3);
    rig.sup.stop(None);
}

#[tokio::test]
async fn one_for_all_stops_and_restarts_every_sibling() {
    let mut rig = Rig::new(Strategy::OneForAll, 5).await;
    for k in 0..3 {
        rig.spawn(k).await;
    }
    rig.crash(1);
    let (key, why) = rig.next_exit().await.expect("an unexpected exit");
    let mut restarts = rig.children.failed(&key, &why);
    assert_eq!(restarts[0].key, Key(1));
    restarts.sort_by_key(|r| r.key.0);
    let keys: Vec<u8> = restarts.iter().map(|r| r.key.0).collect();
    assert_eq!(keys, [0, 1, 2]);
    assert!(restarts.iter().all(|r| r.delay == restarts[0].delay));
    assert_eq!(rig.children.running(), 0);
    // The siblings' exits are expected: not failures, and not counted.
    assert!(rig.next_exit().await.is_none());
    assert!(rig.next_exit().await.is_none());
    assert_eq!(rig.metrics.restarts("test_child"), 1);
    rig.sup.stop(None);
}

#[tokio::test]
async fn stops_on_purpose_and_stale_actors_are_not_failures() {
    let mut rig = Rig::new(Strategy::OneForOne, 5).await;
    rig.spawn(0).await;
    rig.spawn(1).await;
    let h = rig.children.stop(&Key(0)).unwrap();
    h.stop(None);
    assert!(rig.next_exit().await.is_none());
    assert!(rig.children.is_down(&Key(0)), "stopped, still registered");
    let h = rig.children.remove(&Key(1)).unwrap();
    h.stop(None);
    assert!(rig.next_exit().await.is_none());
    assert!(!rig.children.contains(&Key(1)));
    // An actor replaced after a kill reports its exit late: ignored.
    rig.spawn(2).await;
    let old = rig.children.stop(&Key(2)).unwrap();
    rig.spawn(2).await;
    old.kill();
    assert!(rig.next_exit().await.is_none());
    assert!(rig.id(2).is_some());
    assert_eq!(rig.metrics.restarts("test_child"), 0);
    rig.sup.stop(None);
}

#[tokio::test]
async fn escalates_past_the_budget_and_clears_once_up_for_a_period() {
    let mut rig = Rig::new(Strategy::OneForOne, 1).await;
    rig.spawn(0).await;
    let first = rig.children.failed(&Key(0), "boom");
    assert_eq!(first[0].delay, Duration::from_millis(10));
    assert!(!rig.status.has_condition(Condition::SensorRestartsEscalated));
    let second = rig.children.failed(&Key(0), "boom again");
    assert_eq!(
        second[0].delay,
        Duration::from_millis(40),
        "slowest backoff"
    );
    assert!(rig.status.has_condition(Condition::SensorRestartsEscalated));
    assert_eq!(
        rig.status.stages()["test_stage"].state,
        StageState::Escalated
    );
    rig.children.review();
    assert!(
        rig.status.has_condition(Condition::SensorRestartsEscalated),
        "kept while down"
    );
    rig.spawn(0).await;
    rig.children.review();
    assert!(
        rig.status.has_condition(Condition::SensorRestartsEscalated),
        "kept while the failures are recent"
    );
    tokio::time::sleep(Duration::from_millis(350)).await;
    rig.children.review();
    assert!(!rig.status.has_condition(Condition::SensorRestartsEscalated));
    assert_eq!(rig.children.get(&Key(0)).unwrap().restarts(), 2);
    rig.sup.stop(None);
}

#[tokio::test]
async fn a_shared_stage_runs_only_when_every_child_of_it_does() {
    let mut rig = Rig::new(Strategy::OneForOne, 5).await;
    rig.spawn(0).await;
    rig.spawn(1).await;
    rig.children.failed(&Key(0), "boom");
    rig.children.failed(&Key(1), "boom");
    rig.spawn(0).await;
    assert_eq!(
        rig.status.stages()["test_stage"].state,
        StageState::Restarting
    );
    rig.spawn(1).await;
    assert_eq!(rig.status.stages()["test_stage"].state, StageState::Running);
    let gone = rig.children.retain(|k, _| k.0 != 1);
    assert_eq!(gone.len(), 1);
    assert_eq!(rig.children.len(), 1);
    rig.sup.stop(None);
}
