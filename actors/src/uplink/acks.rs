//! PUBACK matching: which record each QoS 1 publish of the session carries, so a PUBACK
//! deletes exactly its record from the store.
//!
//! Design constraints: rumqttc reports the packet id of a publish only when it writes it
//! (`Outgoing::Publish`, in request order within a session), so a publish is first
//! *unnumbered* and is numbered by the next outgoing-publish event. The retained status is
//! published at QoS 1 too and takes its place in that order, but is in no store: its PUBACK
//! deletes nothing. A session's matching dies with it: a new session starts with new packet
//! ids, and its records are sent again from the store.

use crate::outbound::Class;
use std::collections::{HashMap, VecDeque};

/// What one publish handed to rumqttc carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Sent {
    /// The stored record `seq` of `class`.
    Record(Class, u64),
    /// The retained status (not stored).
    Status,
}

/// The publishes of one session that await their PUBACK.
#[derive(Debug, Default)]
pub(super) struct Acks {
    /// Handed to rumqttc, packet id not known yet, in request order.
    unnumbered: VecDeque<Sent>,
    /// Packet id → the record awaiting its PUBACK.
    awaiting: HashMap<u16, (Class, u64)>,
}

impl Acks {
    /// `sent` was handed to rumqttc.
    pub(super) fn sent(&mut self, sent: Sent) {
        self.unnumbered.push_back(sent);
    }

    /// rumqttc wrote the oldest unnumbered publish as packet `pkid`.
    pub(super) fn numbered(&mut self, pkid: u16) {
        if let Some(Sent::Record(class, seq)) = self.unnumbered.pop_front() {
            self.awaiting.insert(pkid, (class, seq));
        }
    }

    /// The broker acknowledged packet `pkid`: the record it carried, if it carried one.
    pub(super) fn acked(&mut self, pkid: u16) -> Option<(Class, u64)> {
        self.awaiting.remove(&pkid)
    }

    /// Publishes not acknowledged yet (what `uplink.inflight` bounds).
    pub(super) fn in_flight(&self) -> usize {
        self.unnumbered.len() + self.awaiting.len()
    }

    /// Nothing awaits a PUBACK.
    pub(super) fn is_empty(&self) -> bool {
        self.in_flight() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pubacks_delete_the_records_their_packets_carried() {
        let mut a = Acks::default();
        a.sent(Sent::Record(Class::Summary, 7));
        a.sent(Sent::Status);
        a.sent(Sent::Record(Class::Alert, 8));
        assert_eq!(a.in_flight(), 3);
        // Numbered in request order; the status takes packet 2 and is in no store.
        a.numbered(1);
        a.numbered(2);
        a.numbered(3);
        assert_eq!(a.in_flight(), 2);
        assert_eq!(a.acked(3), Some((Class::Alert, 8)));
        assert_eq!(a.acked(2), None);
        assert_eq!(a.acked(3), None, "a PUBACK counts once");
        assert!(!a.is_empty());
        assert_eq!(a.acked(1), Some((Class::Summary, 7)));
        assert!(a.is_empty());
    }

    #[test]
    fn an_unknown_packet_id_changes_nothing() {
        let mut a = Acks::default();
        a.sent(Sent::Record(Class::Raw, 1));
        assert_eq!(a.acked(1), None, "not numbered yet");
        a.numbered(9);
        a.numbered(10); // an outgoing publish nobody asked for: ignored
        assert_eq!(a.acked(10), None);
        assert_eq!(a.acked(9), Some((Class::Raw, 1)));
    }
}
