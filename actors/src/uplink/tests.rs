//! The uplink against a real broker (the embedded rumqttd) and a real store on disk: records
//! held in the store go out at QoS 1 and are deleted on their PUBACK; the retained status says
//! `online`; and when the gateway dies without a goodbye, the broker's last will says
//! `offline` — both read back from the broker.
#![allow(clippy::unwrap_used)] // a failure here should stop the test loudly.

use super::*;
use crate::config::{BrokerConfig, GatewayConfig, StoreConfig};
use crate::model::Scorer;
use crate::store::{Store, StoreSlot};
use rumqttc::MqttOptions;
use serde_json::Value;
use tokio::sync::mpsc;

/// A subscriber on `filter`: every publish it gets, as (topic, payload, retained).
async fn subscribe(
    addr: std::net::SocketAddr,
    id: &str,
    filter: &str,
) -> mpsc::UnboundedReceiver<(String, Vec<u8>, bool)> {
    let opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    let (client, mut el) = AsyncClient::new(opts, 64);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let _keep = client;
        while let Ok(ev) = el.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = ev {
                let _ = tx.send((p.topic, p.payload.to_vec(), p.retain));
            }
        }
    });
    rx
}

/// The next message on `rx` whose topic ends with `suffix`, within 10 s.
async fn next_on(
    rx: &mut mpsc::UnboundedReceiver<(String, Vec<u8>, bool)>,
    suffix: &str,
) -> (Vec<u8>, bool) {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (topic, payload, retained) = rx.recv().await.unwrap();
            if topic.ends_with(suffix) {
                return (payload, retained);
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("nothing on …{suffix} within 10 s"))
}

fn state_of(payload: &[u8]) -> String {
    let v: Value = serde_json::from_slice(payload).unwrap();
    v["state"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_records_go_out_are_deleted_on_puback_and_the_status_is_retained() {
    let broker_cfg = BrokerConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..BrokerConfig::default()
    };
    let broker = tokio::task::spawn_blocking(move || crate::broker::start(&broker_cfg, &[]))
        .await
        .unwrap()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = GatewayConfig::default();
    cfg.uplink.url = format!("mqtt://{}", broker.addr);
    cfg.uplink.keep_alive = crate::duration::Dur::secs(1);
    let store = Store::open(&StoreConfig {
        path: dir.path().join("store"),
        ..StoreConfig::default()
    })
    .unwrap()
    .store;
    let prefix = format!("{}/{}", cfg.uplink.prefix, cfg.gateway.id);
    // Summaries only: the status goes to its own subscriber below.
    let held: Vec<u64> = (0..3)
        .map(|i| {
            let t = format!("{prefix}/summaries/s{i}");
            store.commit(Class::Summary, &t, |seq| seq.to_string().into_bytes())
        })
        .map(|r| r.unwrap().0)
        .collect();
    let ctx = Ctx::new(cfg, Scorer::fallback(Vec::new()), StoreSlot::open(store));
    let mut up = subscribe(broker.addr, "up", &format!("{prefix}/summaries/#")).await;

    let commands: Commands = Arc::new(|_, _| true);
    let (uplink, _) = Actor::spawn(None, UplinkActor, (ctx.clone(), commands))
        .await
        .unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let (payload, _) = next_on(&mut up, "").await;
        got.push(String::from_utf8(payload).unwrap());
    }
    let want: Vec<String> = held.iter().map(u64::to_string).collect();
    assert_eq!(got, want, "every held record, in seq order");
    // Deleted from the store only on its PUBACK: the backlog empties.
    let store = ctx.store.get().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while store.stats().iter().map(|(_, s)| s.count).sum::<u64>() > 0 {
        assert!(Instant::now() < deadline, "records still held after 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(store);

    // The status is retained: a subscriber that comes later reads it from the broker.
    let mut late = subscribe(broker.addr, "late", &format!("{prefix}/status")).await;
    let (payload, retained) = next_on(&mut late, "/status").await;
    assert!(retained, "status not retained");
    assert_eq!(state_of(&payload), "online");

    // Killed (no DISCONNECT): the broker publishes the last will, retained.
    uplink.kill();
    let (payload, _) = next_on(&mut late, "/status").await;
    assert_eq!(state_of(&payload), "offline");
    let v: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(v["reasons"][0], "last will");
    let mut later = subscribe(broker.addr, "later", &format!("{prefix}/status")).await;
    let (payload, retained) = next_on(&mut later, "/status").await;
    assert!(retained);
    assert_eq!(state_of(&payload), "offline");
}
