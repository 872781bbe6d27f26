//! Recorded CSV files as `edgegw replay` and `edgegw eval` read them: the delimiter sniffed,
//! the header laid out, every row parsed or skipped. The reader lives in the binary crate, so
//! its files are compiled in here as they are there. Beyond "no panic": every value handed on
//! is finite and belongs to a value column, and the skip report stays bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

#[allow(dead_code)]
mod replay {
    #[path = "../../../src/replay/columns.rs"]
    pub mod columns;
    #[path = "../../../src/replay/csv.rs"]
    pub mod csv;
    #[path = "../../../src/replay/lines.rs"]
    pub mod lines;
    #[path = "../../../src/replay/ts.rs"]
    pub mod ts;
}

use replay::csv::{Skips, Source, MAX_REPORTED};

/// One scratch file per fuzzing process, rewritten for every input.
fn scratch() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("edgegw-fuzz-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("scratch directory");
        dir.join("series.csv")
    })
}

fuzz_target!(|data: &[u8]| {
    let path = scratch();
    std::fs::write(path, data).expect("scratch file");
    let Ok(mut src) = Source::open(path, "") else {
        return;
    };
    let n = src.layout.values.len();
    assert!(n > 0, "a layout without value columns was accepted");
    src.set_sensors((0..n).collect());
    let mut skips = Skips::default();
    while let Ok(true) = src.advance(&mut skips) {
        for &(sensor, v) in &src.values {
            assert!(sensor < n && v.is_finite(), "bad value {v} for column {sensor}");
        }
    }
    assert!(skips.examples.len() <= MAX_REPORTED);
});
