//! Process faults: the gateway killed with SIGKILL at random moments, restarted on the same
//! store each time.

use edgegw_chaos::scenario::{Rig, Settings};
use std::time::Duration;

/// kill -9 at seeded random moments, N times (soak: 50), same store: nothing committed is
/// lost, no seq is reused (the judge sees one epoch and one payload per seq), duplicates stay
/// within the in-flight window per uplink session (each run opens at least one).
#[test]
fn kill9_repeatedly() {
    let mut rig = Rig::start("kill9_repeatedly", Settings::default());
    let kills = rig.pick(5, 50);
    for i in 0..kills {
        let after = rig.random_duration(Duration::from_millis(800), Duration::from_millis(3000));
        std::thread::sleep(after);
        rig.inject(format!("kill -9 #{i} {after:?} after ready"));
        let clean = rig.kill9_and_restart();
        rig.check(clean, || {
            format!("the store had to be recreated after kill -9 #{i}")
        });
    }
    rig.end_faults();
    rig.finish();
}
