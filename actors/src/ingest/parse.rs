//! Sensor payload parsing: JSON single samples and batches, and topic → sensor id.
//!
//! Design constraints: every way a payload can be wrong maps to one fixed reason code (the
//! `reason` label of `edgegw_ingest_rejected_total`); nothing here panics or allocates more
//! than the payload's size. Unknown JSON fields are ignored (SPEC). A batch is accepted or
//! rejected whole, so a sensor never sees half a batch.

pub use crate::config::TopicFilter;
use crate::sensor::window::Sample;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

/// Why a message was rejected; `code()` is the metric label.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// The topic matches no configured filter with a sensor level.
    #[error("topic matches no ingest filter")]
    Topic,
    /// The sensor id in the topic is empty or too long.
    #[error("bad sensor id")]
    SensorId,
    /// Payload larger than `ingest.max_payload_bytes`, or a batch with too many samples.
    #[error("payload too large: {0}")]
    Oversize(String),
    /// Not valid JSON.
    #[error("malformed JSON: {0}")]
    MalformedJson(String),
    /// Starts with the binary magic byte but does not follow the binary layout.
    #[error("malformed binary batch: {0}")]
    MalformedBinary(String),
    /// Valid JSON of the wrong shape or type.
    #[error("wrong type: {0}")]
    WrongType(String),
    /// A value that is NaN, infinite or out of f64 range.
    #[error("non-finite value")]
    NonFinite,
    /// A timestamp too far in the future, negative or before 2000-01-01.
    #[error("absurd timestamp {0}")]
    Timestamp(i64),
}

impl Reject {
    /// The fixed reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Reject::Topic => "topic",
            Reject::SensorId => "sensor_id",
            Reject::Oversize(_) => "oversize",
            Reject::MalformedJson(_) => "malformed_json",
            Reject::MalformedBinary(_) => "malformed_binary",
            Reject::WrongType(_) => "wrong_type",
            Reject::NonFinite => "non_finite",
            Reject::Timestamp(_) => "timestamp",
        }
    }
}

/// 2000-01-01T00:00:00Z in ms: anything older is a sensor with a broken clock.
pub const MIN_TS_MS: i64 = 946_684_800_000;

/// Limits applied while parsing.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest payload accepted, bytes.
    pub max_payload_bytes: usize,
    /// Most samples in one batch.
    pub max_batch_samples: usize,
    /// How far ahead of the gateway clock a timestamp may be, ms.
    pub max_future_ms: i64,
}

/// Parses a payload, JSON or binary (by its first byte), into `out` (cleared first).
pub fn parse(
    payload: &[u8],
    now_ms: i64,
    lim: &Limits,
    out: &mut Vec<Sample>,
) -> Result<(), Reject> {
    if super::binary::is_binary(payload) {
        super::binary::decode(payload, now_ms, lim, out)
    } else {
        parse_json(payload, now_ms, lim, out)
    }
}

/// Parses a JSON payload into `out` (cleared first); `now_ms` stands in for a missing `ts`.
///
/// The payload is walked once by a serde visitor that writes samples straight into `out`:
/// no `serde_json::Value` tree and no allocation per sample (`out` is reused by the caller).
/// Semantic failures (bad timestamp, non-finite value, too many samples) are kept in the
/// visitor's state and abort the walk; serde's own errors map to `malformed_json` (syntax)
/// or `wrong_type` (shape).
pub fn parse_json(
    payload: &[u8],
    now_ms: i64,
    lim: &Limits,
    out: &mut Vec<Sample>,
) -> Result<(), Reject> {
    out.clear();
    if payload.len() > lim.max_payload_bytes {
        return Err(Reject::Oversize(format!("{} bytes", payload.len())));
    }
    let mut failed = None;
    let top = Top {
        out,
        lim,
        now_ms,
        failed: &mut failed,
    };
    let mut de = serde_json::Deserializer::from_slice(payload);
    let walked = de.deserialize_map(top).and_then(|()| de.end());
    match (walked, failed) {
        (_, Some(r)) => Err(r),
        (Ok(()), None) => Ok(()),
        (Err(e), None) => Err(classify(&e)),
    }
}

fn classify(e: &serde_json::Error) -> Reject {
    let msg = e.to_string();
    if msg.contains("out of range") {
        Reject::NonFinite
    } else if e.is_data() {
        Reject::WrongType(msg)
    } else {
        Reject::MalformedJson(msg)
    }
}

fn check_ts(t: i64, now_ms: i64, lim: &Limits) -> Result<i64, Reject> {
    if (MIN_TS_MS..=now_ms.saturating_add(lim.max_future_ms)).contains(&t) {
        Ok(t)
    } else {
        Err(Reject::Timestamp(t))
    }
}

fn check_v(v: f64) -> Result<f64, Reject> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Reject::NonFinite)
    }
}

/// A timestamp on the wire: an integer, or a float with no fractional part.
struct Ts(i64);

impl<'de> Deserialize<'de> for Ts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Ts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("ts as an integer (ms)")
            }
            fn visit_i64<E: de::Error>(self, i: i64) -> Result<Ts, E> {
                Ok(Ts(i))
            }
            fn visit_u64<E: de::Error>(self, u: u64) -> Result<Ts, E> {
                Ok(Ts(i64::try_from(u).unwrap_or(i64::MAX)))
            }
            fn visit_f64<E: de::Error>(self, f: f64) -> Result<Ts, E> {
                if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 {
                    Ok(Ts(f as i64))
                } else {
                    Err(E::invalid_type(de::Unexpected::Float(f), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// A sample value on the wire: any JSON number.
struct Num(f64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, i: i64) -> Result<Num, E> {
                Ok(Num(i as f64))
            }
            fn visit_u64<E: de::Error>(self, u: u64) -> Result<Num, E> {
                Ok(Num(u as f64))
            }
            fn visit_f64<E: de::Error>(self, f: f64) -> Result<Num, E> {
                Ok(Num(f))
            }
        }
        d.deserialize_any(V)
    }
}

/// One `[ts, v]` pair; any other length is a wrong type.
struct Pair(i64, f64);

impl<'de> Deserialize<'de> for Pair {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pair;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a [ts, v] pair")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Pair, A::Error> {
                let short = |n| de::Error::invalid_length(n, &"a [ts, v] pair");
                let Ts(t) = seq.next_element()?.ok_or_else(|| short(0))?;
                let Num(v) = seq.next_element()?.ok_or_else(|| short(1))?;
                if seq.next_element::<de::IgnoredAny>()?.is_some() {
                    return Err(short(3));
                }
                Ok(Pair(t, v))
            }
        }
        d.deserialize_seq(V)
    }
}

/// The top-level object: `ts`, `v`, `samples`; anything else is skipped unread.
struct Top<'a> {
    out: &'a mut Vec<Sample>,
    lim: &'a Limits,
    now_ms: i64,
    failed: &'a mut Option<Reject>,
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with \"v\" or \"samples\"")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let (mut ts, mut v, mut batch) = (None, None, false);
        while let Some(key) = map.next_key::<Key>()? {
            match key {
                Key::Ts => ts = map.next_value::<Option<Ts>>()?,
                Key::V => v = Some(map.next_value::<Num>()?.0),
                Key::Samples => {
                    batch = true;
                    map.next_value_seed(Samples {
                        out: &mut *self.out,
                        lim: self.lim,
                        now_ms: self.now_ms,
                        failed: &mut *self.failed,
                    })?;
                }
                Key::Other => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        let single = || -> Result<Sample, Reject> {
            let v = v.ok_or_else(|| Reject::WrongType("needs \"v\" or \"samples\"".into()))?;
            let ts = match ts {
                None => self.now_ms,
                Some(Ts(t)) => check_ts(t, self.now_ms, self.lim)?,
            };
            Ok(Sample { ts, v: check_v(v)? })
        };
        let result = if batch {
            if self.out.is_empty() {
                Err(Reject::WrongType("samples is empty".into()))
            } else {
                Ok(())
            }
        } else {
            single().map(|s| self.out.push(s))
        };
        result.map_err(|r| fail(self.failed, r))
    }
}

/// Records the semantic reason and aborts the walk with a placeholder serde error.
fn fail<E: de::Error>(slot: &mut Option<Reject>, r: Reject) -> E {
    let e = E::custom(&r);
    *slot = Some(r);
    e
}

enum Key {
    Ts,
    V,
    Samples,
    Other,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Key;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key, E> {
                Ok(match s {
                    "ts" => Key::Ts,
                    "v" => Key::V,
                    "samples" => Key::Samples,
                    _ => Key::Other,
                })
            }
        }
        d.deserialize_identifier(V)
    }
}

/// `samples`: an array of `[ts, v]` pairs, each checked and pushed as it is read.
struct Samples<'a> {
    out: &'a mut Vec<Sample>,
    lim: &'a Limits,
    now_ms: i64,
    failed: &'a mut Option<Reject>,
}

impl<'de> DeserializeSeed<'de> for Samples<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Samples<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("samples as an array of [ts, v] pairs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(Pair(t, v)) = seq.next_element::<Pair>()? {
            if self.out.len() == self.lim.max_batch_samples {
                return Err(fail(
                    self.failed,
                    Reject::Oversize(format!("more than {} samples", self.lim.max_batch_samples)),
                ));
            }
            let s = check_ts(t, self.now_ms, self.lim)
                .and_then(|ts| Ok(Sample { ts, v: check_v(v)? }))
                .map_err(|r| fail(self.failed, r))?;
            self.out.push(s);
        }
        Ok(())
    }
}

/// The sensor id of `topic` under the first matching filter.
pub fn sensor_of<'t>(filters: &[TopicFilter], topic: &'t str) -> Result<&'t str, Reject> {
    let id = filters
        .iter()
        .find_map(|f| f.sensor(topic))
        .ok_or(Reject::Topic)?;
    if id.is_empty() || id.len() > 128 {
        return Err(Reject::SensorId);
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_731_000_000_000;
    const LIM: Limits = Limits {
        max_payload_bytes: 4096,
        max_batch_samples: 100,
        max_future_ms: 300_000,
    };

    fn code(p: &str) -> &'static str {
        parse_json(p.as_bytes(), NOW, &LIM, &mut Vec::new())
            .unwrap_err()
            .code()
    }

    fn ok(p: &str) -> Vec<Sample> {
        let mut out = vec![Sample { ts: 1, v: 1.0 }];
        parse_json(p.as_bytes(), NOW, &LIM, &mut out).unwrap();
        out
    }

    #[test]
    fn accepts_single_batch_and_unknown_fields() {
        let s = ok(r#"{"ts": 1731000000123, "v": 21.5, "unit": {"a": [1, "x"]}}"#);
        assert_eq!(
            s,
            vec![Sample {
                ts: 1731000000123,
                v: 21.5
            }]
        );
        let s = ok(r#"{"v": 3, "ts": null}"#);
        assert_eq!(s, vec![Sample { ts: NOW, v: 3.0 }]);
        let s = ok(r#"{"samples": [[1731000000123, 21.5], [1731000000133.0, -7]], "x": 1}"#);
        assert_eq!(
            s,
            vec![
                Sample {
                    ts: 1731000000123,
                    v: 21.5
                },
                Sample {
                    ts: 1731000000133,
                    v: -7.0
                }
            ]
        );
        // Binary goes through the same entry point.
        let mut bin = Vec::new();
        crate::ingest::binary::encode(&s, &mut bin);
        let mut out = Vec::new();
        parse(&bin, NOW, &LIM, &mut out).unwrap();
        assert_eq!(out, s);
    }

    #[test]
    fn rejects_each_bad_shape_with_its_reason() {
        assert_eq!(code("not json"), "malformed_json");
        assert_eq!(code("{\"v\": 1"), "malformed_json");
        assert_eq!(code(r#"{"v": "21.5"}"#), "wrong_type");
        assert_eq!(code(r#"[1, 2]"#), "wrong_type");
        assert_eq!(code(r#"{"ts": 1}"#), "wrong_type");
        assert_eq!(code(r#"{"v": 1e400}"#), "non_finite");
        assert_eq!(code(r#"{"ts": "soon", "v": 1}"#), "wrong_type");
        assert_eq!(code(r#"{"ts": 99999999999999, "v": 1}"#), "timestamp");
        assert_eq!(code(r#"{"ts": -5, "v": 1}"#), "timestamp");
        assert_eq!(code(r#"{"samples": [[1731000000123]]}"#), "wrong_type");
        assert_eq!(code(r#"{"samples": []}"#), "wrong_type");
        assert_eq!(code(r#"{"samples": 3}"#), "wrong_type");
        assert_eq!(
            code(r#"{"samples": [[1731000000123, 1, 2]]}"#),
            "wrong_type"
        );
        assert_eq!(
            code(r#"{"samples": [[1731000000123, null]]}"#),
            "wrong_type"
        );
        assert_eq!(
            code(r#"{"samples": [[1731000000123, 1e999]]}"#),
            "non_finite"
        );
        assert_eq!(code(r#"{"samples": [[5, 1]]}"#), "timestamp");
        assert_eq!(code(r#"{"ts": 1.5, "v": 1}"#), "wrong_type");
        assert_eq!(code(r#"{"v": 1} trailing"#), "malformed_json");
        let big = format!("{{\"v\": 1, \"pad\": \"{}\"}}", "x".repeat(5000));
        assert_eq!(code(&big), "oversize");
        let many: Vec<String> = (0..101)
            .map(|i| format!("[{},{i}]", NOW - 1000 + i))
            .collect();
        assert_eq!(
            code(&format!("{{\"samples\": [{}]}}", many.join(","))),
            "oversize"
        );
    }

    #[test]
    fn topic_filters_find_the_sensor_level() {
        let f = vec![
            TopicFilter::new("sensors/+/data").unwrap(),
            TopicFilter::new("plant/+/#").unwrap(),
        ];
        assert_eq!(sensor_of(&f, "sensors/s1/data"), Ok("s1"));
        assert_eq!(sensor_of(&f, "plant/p7/a/b"), Ok("p7"));
        assert_eq!(sensor_of(&f, "sensors/s1/other"), Err(Reject::Topic));
        assert_eq!(sensor_of(&f, "sensors/s1/data/x"), Err(Reject::Topic));
        assert_eq!(sensor_of(&f, "sensors//data"), Err(Reject::SensorId));
        assert!(TopicFilter::new("sensors/data").is_err());
        assert!(TopicFilter::new("a/+/+/b").is_err());
        assert!(TopicFilter::new("a/#/+").is_err());
    }
}
