//! The retained `status` topic: its payload, and publishing it when the mode changes.

use super::*;

/// The retained status payload for the current mode.
pub fn status_payload(ctx: &Ctx, state: &str, reasons: &[String], since: i64) -> Vec<u8> {
    let scorer = ctx.scorer();
    let ev = evicted(ctx);
    json!({
        "state": state,
        "since": since,
        "reasons": reasons,
        "version": env!("CARGO_PKG_VERSION"),
        "model": {"name": scorer.name(), "version": scorer.version(), "fallback": scorer.is_fallback()},
        "evicted": {"alert": ev[0], "summary": ev[1], "raw": ev[2]},
    })
    .to_string()
    .into_bytes()
}

pub(super) fn publish_status(st: &mut UplinkState) {
    let (mode, since, reasons) = st.ctx.status.mode();
    let key = (mode.as_str().to_string(), reasons.clone(), evicted(&st.ctx));
    if st.last_status.as_ref() == Some(&key) {
        return;
    }
    let Some(s) = st.session.as_mut().filter(|s| s.connected) else {
        return;
    };
    let payload = status_payload(&st.ctx, mode.as_str(), &reasons, since);
    if s.client
        .try_publish(topic(&st.ctx, "status"), QoS::AtLeastOnce, true, payload)
        .is_ok()
    {
        s.unnumbered.push_back((Class::Alert, 0));
        st.last_status = Some(key);
    }
}
