//! The uplink's MQTT session: connecting with a fresh client per session (last will, feedback
//! subscription), and what the link reports: connection, PUBACKs matched to their records, the
//! feedback messages received, and the loss of the session (backoff with jitter).

use super::*;

pub(super) fn connect(
    myself: &ActorRef<UplinkMsg>,
    st: &mut UplinkState,
    delay: Duration,
) -> Result<(), ActorProcessingErr> {
    let cfg = &st.ctx.cfg.uplink;
    let url = mqtt::parse_url(&cfg.url)?;
    st.gen += 1;
    let gen = st.gen;
    let client_id = format!(
        "edgegw-{}-uplink-{}",
        st.ctx.cfg.gateway.id,
        std::process::id()
    );
    let mut opts = mqtt::options(&url, &client_id, cfg.keep_alive.get(), 4 << 20);
    opts.set_inflight(cfg.inflight.min(u16::MAX as usize) as u16);
    let will = status_payload(&st.ctx, "offline", &["last will".to_string()], now_ms());
    opts.set_last_will(LastWill::new(
        topic(&st.ctx, "status"),
        will,
        QoS::AtLeastOnce,
        true,
    ));
    let (client, el) = mqtt::client(opts, cfg.inflight + 16);
    let me = myself.clone();
    let task = mqtt::spawn_session(el, delay, move |ev| {
        me.cast(UplinkMsg::Link(gen, ev)).is_ok()
    });
    st.session = Some(Session {
        client,
        task,
        connected: false,
        unnumbered: VecDeque::new(),
        awaiting: HashMap::new(),
        last_progress: Instant::now(),
        live_start: 0,
        backlog_cursor: 0,
        live_cursor: 0,
    });
    Ok(())
}

pub(super) fn drop_session(myself: &ActorRef<UplinkMsg>, st: &mut UplinkState, error: &str) {
    if let Some(s) = st.session.take() {
        s.task.abort();
        if s.connected {
            warn!(message = "Uplink disconnected.", %error, backlog = backlog(&st.ctx));
        }
    }
    st.ctx.metrics.uplink_connected.set(0);
    st.ctx
        .status
        .condition(Condition::UplinkDown, Some(error.to_string()));
    let cfg = &st.ctx.cfg.uplink;
    let wait = jittered(st.delay, 0.25, &mut rand::rng());
    st.delay = (st.delay * 2).min(cfg.reconnect_max.get());
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
            s.live_start = st.durable + 1;
            s.backlog_cursor = 0;
            s.live_cursor = s.live_start;
            st.delay = st.ctx.cfg.uplink.reconnect_initial.get();
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
            if let Some((class, seq)) = s.unnumbered.pop_front() {
                if seq != 0 {
                    s.awaiting.insert(pkid, (class, seq));
                }
            }
        }
        LinkEvent::Event(Event::Incoming(Packet::PubAck(ack))) => {
            s.last_progress = Instant::now();
            if let Some((class, seq)) = s.awaiting.remove(&ack.pkid) {
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
