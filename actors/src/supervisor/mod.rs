//! Supervision: the restart policy every supervisor applies, and the root supervisor.
//!
//! Design constraints: ractor restarts nothing by itself and a supervisor stops on any child
//! exit by default, so every supervisor here implements `handle_supervisor_evt` with a
//! [`policy::RestartPolicy`]. The tree:
//!
//! ```text
//! root ─┬─ uplink
//!       ├─ inference (pool) ── worker × N
//!       ├─ sensors (supervisor) ── sensor × (≤ max_sensors)
//!       ├─ ingest
//!       └─ http
//! ```

pub mod policy;
pub mod root;

pub use policy::{RestartPolicy, RestartTracker, Strategy, Verdict};
pub use root::{RootMsg, RootSupervisor, Stage};
