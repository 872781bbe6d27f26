//! Sensor payload encoding: the JSON payloads of `SPEC.md` ("Sensor ingest"), written the way
//! a sensor would send them. Used by `edgegw replay` and by load generators and benches.
//!
//! Design constraints:
//! - Every encoder *appends* to a caller-owned `Vec<u8>`: a publisher clears and reuses one
//!   buffer, so encoding allocates nothing beyond that buffer's growth.
//! - Numbers are written with `itoa` (timestamps) and `ryu` (values): the shortest text that
//!   parses back to the same `f64`, so a value survives the trip through JSON bit for bit.
//! - The ingest side accepts finite values only. A non-finite value is written as `null`, so
//!   the output is still valid JSON (the gateway rejects it as `wrong_type`); callers that
//!   mean to send good data skip non-finite values before encoding.

use crate::sensor::window::Sample;

/// Appends one sample, `{"ts":1731000000123,"v":21.5}`, to `out`.
pub fn json_single(s: Sample, out: &mut Vec<u8>) {
    out.extend_from_slice(b"{\"ts\":");
    int(s.ts, out);
    out.extend_from_slice(b",\"v\":");
    float(s.v, out);
    out.push(b'}');
}

/// Appends a batch, `{"samples":[[1731000000123,21.5],[1731000000133,21.7]]}`, to `out`.
pub fn json_batch(samples: &[Sample], out: &mut Vec<u8>) {
    // `[ts,v]` is at most 2 + 20 + 1 + 24 + 1 bytes; reserve a typical size once.
    out.reserve(16 + samples.len() * 32);
    out.extend_from_slice(b"{\"samples\":[");
    for (i, s) in samples.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'[');
        int(s.ts, out);
        out.push(b',');
        float(s.v, out);
        out.push(b']');
    }
    out.extend_from_slice(b"]}");
}

fn int(n: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

fn float(v: f64, out: &mut Vec<u8>) {
    if v.is_finite() {
        out.extend_from_slice(ryu::Buffer::new().format_finite(v).as_bytes());
    } else {
        out.extend_from_slice(b"null");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse::{parse_json, Limits};

    const LIMITS: Limits = Limits {
        max_payload_bytes: 1 << 20,
        max_batch_samples: 10_000,
        max_future_ms: 300_000,
    };
    const NOW: i64 = 1_731_000_100_000;

    fn s(ts: i64, v: f64) -> Sample {
        Sample { ts, v }
    }

    fn parsed(payload: &[u8]) -> Result<Vec<Sample>, crate::ingest::parse::Reject> {
        let mut out = Vec::new();
        parse_json(payload, NOW, &LIMITS, &mut out).map(|()| out)
    }

    #[test]
    fn single_matches_the_spec_example() {
        let mut out = Vec::new();
        json_single(s(1_731_000_000_123, 21.5), &mut out);
        assert_eq!(out, br#"{"ts":1731000000123,"v":21.5}"#);
    }

    #[test]
    fn batch_matches_the_spec_example_and_appends() {
        let mut out = b"x".to_vec();
        json_batch(
            &[s(1_731_000_000_123, 21.5), s(1_731_000_000_133, 21.7)],
            &mut out,
        );
        assert_eq!(
            out,
            br#"x{"samples":[[1731000000123,21.5],[1731000000133,21.7]]}"#
        );
        out.clear();
        json_batch(&[], &mut out);
        assert_eq!(out, br#"{"samples":[]}"#);
    }

    #[test]
    fn values_round_trip_through_the_ingest_parser() {
        let vals = [
            0.0,
            -0.0,
            1.0,
            -3.25,
            0.1 + 0.2,
            73.967_322_07,
            1e-300,
            5e-324,
            1.797_693_134_862_315_7e308,
            9_926_554.0,
            -1e21,
            std::f64::consts::PI,
        ];
        let samples: Vec<Sample> = vals
            .iter()
            .enumerate()
            .map(|(i, v)| s(NOW - 10_000 + i as i64, *v))
            .collect();
        let mut out = Vec::new();
        json_batch(&samples, &mut out);
        let back = parsed(&out).unwrap();
        assert_eq!(back.len(), samples.len());
        for (a, b) in back.iter().zip(&samples) {
            assert_eq!(a.ts, b.ts);
            assert_eq!(a.v.to_bits(), b.v.to_bits(), "{} became {}", b.v, a.v);
        }
        for x in &samples {
            out.clear();
            json_single(*x, &mut out);
            let back = parsed(&out).unwrap();
            assert_eq!(back, vec![*x]);
        }
    }

    #[test]
    fn non_finite_values_stay_valid_json() {
        let mut out = Vec::new();
        json_batch(&[s(1, f64::NAN), s(2, f64::INFINITY)], &mut out);
        assert_eq!(out, br#"{"samples":[[1,null],[2,null]]}"#);
        assert!(parsed(&out).is_err());
    }
}
