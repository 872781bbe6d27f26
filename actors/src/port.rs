//! A stage's current address, as handed to the stages that send to it.
//!
//! Design constraints: a restarted stage has a new address, so a sender holds a [`Slot`] (set
//! by the supervisor when the stage starts, cleared while it restarts), never a captured
//! `ActorRef`. A send to an empty slot fails visibly and the caller counts it.

use parking_lot::RwLock;
use ractor::{ActorRef, Message};

/// The current address of a stage, empty while it restarts.
pub struct Slot<M: Message>(RwLock<Option<ActorRef<M>>>);

impl<M: Message> Default for Slot<M> {
    fn default() -> Self {
        Slot(RwLock::new(None))
    }
}

impl<M: Message> Slot<M> {
    /// Publishes (or clears) the stage's address.
    pub fn set(&self, r: Option<ActorRef<M>>) {
        *self.0.write() = r;
    }
    /// The stage's address, if it is up.
    pub fn get(&self) -> Option<ActorRef<M>> {
        self.0.read().clone()
    }
    /// Sends `msg` to the stage; false if it is down (the message is dropped).
    pub fn cast(&self, msg: M) -> bool {
        match self.0.read().as_ref() {
            Some(r) => r.cast(msg).is_ok(),
            None => false,
        }
    }
}
