//! Sensor payload parsing: JSON single samples and batches, and topic → sensor id.
//!
//! Design constraints: every way a payload can be wrong maps to one fixed reason code (the
//! `reason` label of `edgegw_ingest_rejected_total`); nothing here panics or allocates more
//! than the payload's size. Unknown JSON fields are ignored (SPEC). A batch is accepted or
//! rejected whole, so a sensor never sees half a batch.

use crate::sensor::window::Sample;
use serde::Deserialize;

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

#[derive(Deserialize)]
struct Wire {
    ts: Option<serde_json::Value>,
    v: Option<serde_json::Value>,
    samples: Option<serde_json::Value>,
}

fn number(v: &serde_json::Value, what: &str) -> Result<f64, Reject> {
    let x = v
        .as_f64()
        .ok_or_else(|| Reject::WrongType(format!("{what} must be a number")))?;
    if x.is_finite() {
        Ok(x)
    } else {
        Err(Reject::NonFinite)
    }
}

fn timestamp(v: &serde_json::Value, now_ms: i64, lim: &Limits) -> Result<i64, Reject> {
    let t = match (v.as_i64(), v.as_f64()) {
        (Some(i), _) => i,
        (None, Some(f)) if f.is_finite() && f.fract() == 0.0 && f.abs() < 9.0e15 => f as i64,
        _ => return Err(Reject::WrongType("ts must be an integer (ms)".into())),
    };
    if !(MIN_TS_MS..=now_ms.saturating_add(lim.max_future_ms)).contains(&t) {
        return Err(Reject::Timestamp(t));
    }
    Ok(t)
}

/// Parses a JSON payload into samples; `now_ms` stands in for a missing `ts`.
pub fn parse_json(payload: &[u8], now_ms: i64, lim: &Limits) -> Result<Vec<Sample>, Reject> {
    if payload.len() > lim.max_payload_bytes {
        return Err(Reject::Oversize(format!("{} bytes", payload.len())));
    }
    let wire: Wire = serde_json::from_slice(payload).map_err(|e| {
        let msg = e.to_string();
        if msg.contains("out of range") {
            Reject::NonFinite
        } else if e.is_data() {
            Reject::WrongType(msg)
        } else {
            Reject::MalformedJson(msg)
        }
    })?;
    match (wire.samples, wire.v) {
        (Some(samples), _) => {
            let arr = samples
                .as_array()
                .ok_or_else(|| Reject::WrongType("samples must be an array".into()))?;
            if arr.is_empty() {
                return Err(Reject::WrongType("samples is empty".into()));
            }
            if arr.len() > lim.max_batch_samples {
                return Err(Reject::Oversize(format!("{} samples", arr.len())));
            }
            arr.iter()
                .map(|pair| match pair.as_array().map(Vec::as_slice) {
                    Some([ts, v]) => Ok(Sample {
                        ts: timestamp(ts, now_ms, lim)?,
                        v: number(v, "sample value")?,
                    }),
                    _ => Err(Reject::WrongType(
                        "each sample must be a [ts, v] pair".into(),
                    )),
                })
                .collect()
        }
        (None, Some(v)) => {
            let ts = match wire.ts {
                None | Some(serde_json::Value::Null) => now_ms,
                Some(t) => timestamp(&t, now_ms, lim)?,
            };
            Ok(vec![Sample {
                ts,
                v: number(&v, "v")?,
            }])
        }
        (None, None) => Err(Reject::WrongType("needs \"v\" or \"samples\"".into())),
    }
}

/// A subscription filter with the index of its sensor level (`+`).
#[derive(Debug, Clone)]
pub struct TopicFilter {
    levels: Vec<String>,
    sensor_level: usize,
}

impl TopicFilter {
    /// Parses `filter`; it must contain exactly one `+` (the sensor id) and may end in `#`.
    pub fn new(filter: &str) -> Result<Self, String> {
        let levels: Vec<String> = filter.split('/').map(str::to_string).collect();
        let plus: Vec<usize> = levels
            .iter()
            .enumerate()
            .filter(|(_, l)| *l == "+")
            .map(|(i, _)| i)
            .collect();
        if plus.len() != 1 {
            return Err(format!(
                "{filter:?} must contain exactly one '+' level (the sensor id)"
            ));
        }
        if levels.iter().enumerate().any(|(i, l)| {
            (l == "#" && i + 1 != levels.len()) || (l.contains(['+', '#']) && l.len() > 1)
        }) {
            return Err(format!("{filter:?} is not a valid MQTT topic filter"));
        }
        Ok(Self {
            levels,
            sensor_level: plus[0],
        })
    }

    /// The sensor id if `topic` matches this filter.
    pub fn sensor<'t>(&self, topic: &'t str) -> Option<&'t str> {
        let mut sensor = None;
        let mut parts = topic.split('/');
        for (i, l) in self.levels.iter().enumerate() {
            if l == "#" {
                return sensor;
            }
            let p = parts.next()?;
            if i == self.sensor_level {
                sensor = Some(p);
            } else if l != p {
                return None;
            }
        }
        if parts.next().is_some() {
            return None;
        }
        sensor
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
        parse_json(p.as_bytes(), NOW, &LIM).unwrap_err().code()
    }

    #[test]
    fn accepts_single_batch_and_unknown_fields() {
        let s = parse_json(
            br#"{"ts": 1731000000123, "v": 21.5, "unit": "C"}"#,
            NOW,
            &LIM,
        )
        .unwrap();
        assert_eq!(
            s,
            vec![Sample {
                ts: 1731000000123,
                v: 21.5
            }]
        );
        let s = parse_json(br#"{"v": 3}"#, NOW, &LIM).unwrap();
        assert_eq!(s[0].ts, NOW);
        let s = parse_json(
            br#"{"samples": [[1731000000123, 21.5], [1731000000133, 21.7]]}"#,
            NOW,
            &LIM,
        )
        .unwrap();
        assert_eq!(s.len(), 2);
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
