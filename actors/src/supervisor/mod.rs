//! Supervision: the root supervisor; the restart policy and the bookkeeping every supervisor
//! shares are in [`crate::restart`].
//!
//! Design constraints: ractor restarts nothing by itself and a supervisor stops on any child
//! exit by default, so every supervisor here implements `handle_supervisor_evt` with a
//! [`crate::config::RestartPolicy`]. The tree:
//!
//! ```text
//! root ─┬─ uplink
//!       ├─ inference (pool) ── worker × N
//!       ├─ sensors (supervisor) ── sensor × (≤ max_sensors)
//!       ├─ ingest
//!       └─ http
//! ```

pub mod root;

pub use crate::config::{RestartPolicy, Strategy};
pub use crate::restart::{RestartTracker, Verdict};
pub use root::{RootMsg, RootSupervisor, Stage};
