//! The retained `status` topic: its payload, and publishing it when the mode changes.

use super::*;
use crate::outbound::{Evicted, StatusMessage, StatusModel};

/// The retained status payload for the current mode.
pub fn status_payload(
    ctx: &Ctx,
    state: &str,
    reasons: &[String],
    since: i64,
) -> Result<Vec<u8>, serde_json::Error> {
    let scorer = ctx.scorer();
    let [alert, summary, raw] = evicted(ctx);
    let message = StatusMessage {
        evicted: Evicted {
            alert,
            raw,
            summary,
        },
        model: StatusModel {
            fallback: scorer.is_fallback(),
            name: scorer.name().to_string(),
            version: scorer.version().to_string(),
        },
        reasons: reasons.to_vec(),
        since,
        state: state.to_string(),
        version: env!("CARGO_PKG_VERSION").to_string(),
    };
    serde_json::to_vec(&message)
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
    let payload = match status_payload(&st.ctx, mode.as_str(), &reasons, since) {
        Ok(p) => p,
        Err(e) => {
            warn!(message = "Status message not encodable; not published.", error = %e);
            return;
        }
    };
    if s.client
        .try_publish(topic(&st.ctx, "status"), QoS::AtLeastOnce, true, payload)
        .is_ok()
    {
        s.acks.sent(super::acks::Sent::Status);
        st.last_status = Some(key);
    }
}
