//! Sensor payloads, JSON or binary, through the parser ingest uses. Beyond "no panic", what
//! is accepted must hold: never more samples than the limit, every value finite, every
//! timestamp inside the accepted range; a binary batch that decodes re-encodes to a batch
//! that decodes to the same samples.
#![no_main]

use edgegw_actors::ingest::binary;
use edgegw_actors::ingest::parse::{parse, Limits, MIN_TS_MS};
use libfuzzer_sys::fuzz_target;

const NOW: i64 = 1_800_000_000_000;
const LIMITS: Limits = Limits {
    max_payload_bytes: 64 * 1024,
    max_batch_samples: 1000,
    max_future_ms: 300_000,
};

fuzz_target!(|data: &[u8]| {
    let mut out = Vec::new();
    if parse(data, NOW, &LIMITS, &mut out).is_ok() {
        assert!(!out.is_empty() && out.len() <= LIMITS.max_batch_samples);
        for s in &out {
            assert!(s.v.is_finite(), "accepted a non-finite value");
            assert!(s.ts >= MIN_TS_MS && s.ts <= NOW + LIMITS.max_future_ms, "ts {}", s.ts);
        }
        if binary::is_binary(data) {
            let mut again = Vec::new();
            binary::encode_with(&out, binary::Width::F64, &mut again);
            let mut back = Vec::new();
            binary::decode(&again, NOW, &LIMITS, &mut back).expect("re-encoded batch decodes");
            assert_eq!(back, out);
        }
    }
});
