//! The uplink's MQTT session: connecting with a fresh client per session (last will, feedback
//! subscription), and what the link reports: connection, PUBACKs matched to their records, the
//! feedback messages received, and the loss of the session (backoff with jitter).

use super::acks::Acks;
use super::lanes::Lanes;
use super::*;

/// One MQTT session of the uplink: its client and event loop task, and what it has sent.
pub(super) struct Session {
    pub(super) client: AsyncClient,
    task: JoinHandle<()>,
    pub(super) connected: bool,
    /// The publishes awaiting their PUBACK.
    pub(super) acks: Acks,
    /// Last PUBACK (or connect) time, for the watchdog.
    last_progress: Instant,
    /// Where the live and backlog lanes are.
    pub(super) lanes: Lanes,
}

impl Session {
    /// The watchdog's verdict: connected, with publishes awaiting a PUBACK, and none for
    /// longer than `timeout`.
    pub(super) fn stuck(&self, timeout: Duration, now: Instant) -> bool {
        self.connected
            && !self.acks.is_empty()
            && now.saturating_duration_since(self.last_progress) > timeout
    }

    /// Ends the session at once, without DISCONNECT (the broker sees a lost connection).
    pub(super) fn abort(&self) {
        self.task.abort();
    }

    /// Ends the session cleanly: DISCONNECT (so the broker does not publish the last will),
    /// then the event loop stops.
    pub(super) async fn close(self) {
        let _ = self.client.try_disconnect();
        // Give the event loop a moment to send DISCONNECT, then stop it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        self.task.abort();
    }
}

/// The delay before the next connection attempt: from `initial`, doubling after each lost
/// session or failed attempt up to `max`, spread ±25 %, and back to `initial` on a connect.
#[derive(Debug, Clone)]
pub(super) struct Redial {
    next: Duration,
    initial: Duration,
    max: Duration,
}

impl Redial {
    /// Starts at `initial`.
    pub(super) fn new(initial: Duration, max: Duration) -> Self {
        Redial {
            next: initial,
            initial,
            max,
        }
    }

    /// The wait before the next attempt, after a failure; doubles the one after.
    pub(super) fn after_failure(&mut self, rng: &mut impl rand::Rng) -> Duration {
        let wait = jittered(self.next, 0.25, rng);
        self.next = (self.next * 2).min(self.max);
        wait
    }

    /// Connected: the next failure waits `initial` again.
    pub(super) fn reset(&mut self) {
        self.next = self.initial;
    }
}

pub(super) fn connect(
    myself: &ActorRef<UplinkMsg>,
    st: &mut UplinkState,
    delay: Duration,
) -> Result<(), ActorProcessingErr> {
    let cfg = &st.ctx.cfg.uplink;
    st.gen += 1;
    let gen = st.gen;
    let client_id = format!(
        "edgegw-{}-uplink-{}",
        st.ctx.cfg.gateway.id,
        std::process::id()
    );
    let mut opts = mqtt::link_options(&st.link, &client_id, cfg.keep_alive.get(), 4 << 20);
    opts.set_inflight(cfg.inflight.min(u16::MAX as usize) as u16);
    let will = status_payload(&st.ctx, "offline", &["last will".to_string()], now_ms())
        .map_err(|e| format!("last will not encodable: {e}"))?;
    opts.set_last_will(LastWill::new(
        topic(&st.ctx, "status"),
        will,
        QoS::AtLeastOnce,
        true,
    ));
    let (client, el) = mqtt::client(opts, cfg.inflight + 16);
    let me = myself.clone();
    let task = mqtt::spawn_session(el, st.link.clone(), delay, move |ev| {
        me.cast(UplinkMsg::Link(gen, ev)).is_ok()
    });
    st.session = Some(Session {
        client,
        task,
        connected: false,
        acks: Acks::default(),
        last_progress: Instant::now(),
        lanes: Lanes::default(),
    });
    Ok(())
}

pub(super) fn drop_session(myself: &ActorRef<UplinkMsg>, st: &mut UplinkState, error: &str) {
    if let Some(s) = st.session.take() {
        s.abort();
        if s.connected {
            warn!(message = "Uplink disconnected.", %error, backlog = backlog(&st.ctx));
        }
    }
    st.ctx.metrics.uplink_connected.set(0);
    st.ctx
        .status
        .condition(Condition::UplinkDown, Some(error.to_string()));
    let wait = st.redial.after_failure(&mut rand::rng());
    st.gen += 1;
    let gen = st.gen;
    myself.send_after(wait, move || UplinkMsg::Connect(gen));
}

pub(super) fn on_link(myself: &ActorRef<UplinkMsg>, st: &mut UplinkState, ev: LinkEvent) {
    let Some(s) = st.session.as_mut() else { return };
    match ev {
        LinkEvent::Event(Event::Incoming(Packet::ConnAck(_))) => {
            s.connected = true;
            s.last_progress = Instant::now();
            s.lanes = Lanes::starting_after(st.durable);
            st.redial.reset();
            st.ctx.metrics.uplink_connected.set(1);
            st.ctx.status.condition(Condition::UplinkDown, None);
            st.last_status = None;
            info!(message = "Uplink connected.", url = %st.ctx.cfg.uplink.url, backlog = backlog(&st.ctx));
            // Clean sessions forget subscriptions: renew on every connect.
            let _ = s
                .client
                .try_subscribe(topic(&st.ctx, FEEDBACK_FILTER), QoS::AtLeastOnce);
            publish_status(st);
            pump(myself, st);
        }
        LinkEvent::Event(Event::Outgoing(Outgoing::Publish(pkid))) => {
            s.acks.numbered(pkid);
        }
        LinkEvent::Event(Event::Incoming(Packet::PubAck(ack))) => {
            s.last_progress = Instant::now();
            if let Some((class, seq)) = s.acks.acked(ack.pkid) {
                st.traced.acked(seq);
                // Without the store (closed) or on failure the record stays and is sent again
                // later: a duplicate, never a loss.
                if let Some(Err(e)) = st.ctx.store.get().map(|store| store.ack(class, seq)) {
                    recovery::store_failed(myself, st, "delete after PUBACK", &e);
                }
            }
            pump(myself, st);
        }
        LinkEvent::Event(Event::Incoming(Packet::Publish(p))) => {
            // Feedback: classified and limited here, applied by the feedback stage.
            if !(st.commands)(&p.topic, p.payload) {
                if let Some(suppressed) = st.droplog.allow("feedback_kind", Instant::now()) {
                    warn!(message = "Feedback of an unknown kind ignored.", topic = %p.topic, suppressed);
                }
            }
        }
        LinkEvent::Event(_) => {}
        LinkEvent::Down { error, .. } => drop_session(myself, st, &error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn redial_doubles_to_its_cap_with_jitter_and_resets_on_connect() {
        let (initial, max) = (Duration::from_millis(100), Duration::from_millis(700));
        let mut r = Redial::new(initial, max);
        let mut rng = StdRng::seed_from_u64(3);
        let waits: Vec<Duration> = (0..5).map(|_| r.after_failure(&mut rng)).collect();
        for (w, base) in waits.iter().zip([100, 200, 400, 700, 700]) {
            let base = Duration::from_millis(base);
            assert!(
                *w >= base.mul_f64(0.75) && *w <= base.mul_f64(1.25),
                "{w:?} not within 25 % of {base:?}"
            );
        }
        r.reset();
        let w = r.after_failure(&mut rng);
        assert!(w <= initial.mul_f64(1.25), "{w:?}");
    }

    #[tokio::test]
    async fn the_watchdog_fires_only_on_a_connected_session_waiting_too_long() {
        let opts = rumqttc::MqttOptions::new("t", "127.0.0.1", 1);
        let (client, _el) = AsyncClient::new(opts, 4);
        let t0 = Instant::now();
        let mut s = Session {
            client,
            task: tokio::spawn(async {}),
            connected: true,
            acks: Acks::default(),
            last_progress: t0,
            lanes: Lanes::default(),
        };
        let (timeout, late) = (Duration::from_secs(5), t0 + Duration::from_secs(6));
        assert!(!s.stuck(timeout, late), "nothing awaits a PUBACK");
        s.acks.sent(super::super::acks::Sent::Status);
        assert!(
            !s.stuck(timeout, t0 + Duration::from_secs(4)),
            "within the timeout"
        );
        assert!(s.stuck(timeout, late));
        s.connected = false;
        assert!(
            !s.stuck(timeout, late),
            "not connected: the backoff handles it"
        );
        s.abort();
    }
}
