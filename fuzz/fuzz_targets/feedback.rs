//! Feedback payloads of every kind through the gateway's validation, with a command key set
//! (so the signature paths run). Beyond "no panic": an accepted threshold is finite, above 0
//! and within the limit; an accepted span is ordered and within the limit.
#![no_main]

use ed25519_dalek::SigningKey;
use edgegw_actors::feedback::validate::{id_of, parse, Checks, Feedback};
use edgegw_actors::feedback::Kind;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&k, payload)) = data.split_first() else {
        return;
    };
    let kind = Kind::ALL[k as usize % Kind::ALL.len()];
    let key = SigningKey::from_bytes(&[7; 32]).verifying_key();
    let known = |s: &str| s.len() < 8;
    let checks = Checks {
        max_span_ms: 86_400_000,
        max_threshold: 1000.0,
        key: Some(&key),
        now_ms: 1_800_000_000_000,
        max_age_ms: 300_000,
        known: &known,
    };
    let _ = id_of(payload);
    match parse(kind, payload, &checks) {
        Ok(Feedback::Threshold { threshold, .. }) => {
            assert!(threshold.is_finite() && threshold > 0.0 && threshold <= 1000.0);
        }
        Ok(Feedback::Label(l)) => {
            assert!(l.from <= l.to && l.to - l.from <= 86_400_000);
        }
        Ok(Feedback::RawRequest { from, to, .. }) => {
            assert!(from <= to && to - from <= 86_400_000);
        }
        Ok(Feedback::Model(_)) | Err(_) => {}
    }
});
