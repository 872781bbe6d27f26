//! Fault injection for edgegw: the pieces the chaos scenarios, the tests and the demo use to
//! break things on purpose.
//!
//! # Layout
//!
//! - [`proxy`]: a TCP fault proxy between the gateway and a broker.
//! - [`oracle`]: records what arrived upstream and judges it against what was committed.
pub mod oracle;
pub mod proxy;
