//! Parsing and validation of feedback payloads (SPEC "Uplink" table), and the signatures of
//! model announcements and threshold commands.
//!
//! Design constraints: every rejection has a short reason from a fixed set (`malformed`,
//! `unknown_sensor`, `unauthorised`) and a detail in words; unknown fields are ignored, as for
//! sensor payloads. A model announcement is signed with ed25519 over [`canonical_model_bytes`].
//! With `feedback.public_key` set, a `threshold` command must be signed too, over
//! [`canonical_threshold_bytes`], and carry an `id` and a `ts` within
//! `feedback.max_command_age` of the gateway's clock: a captured command is refused once that
//! age has passed, and before that its `id` is already seen.

use super::Kind;
pub use crate::config::{hex, public_key};
use ed25519_dalek::{Signature, VerifyingKey};
use serde::Deserialize;
use std::sync::Arc;

/// Longest accepted feedback `id`.
const MAX_ID: usize = 128;

/// A validated feedback message.
#[derive(Debug, Clone, PartialEq)]
pub enum Feedback {
    /// A labelled span.
    Label(LabelFb),
    /// A threshold override; `sensor: None` = every sensor (`"*"`).
    Threshold {
        /// The sensor, or `None` for all.
        sensor: Option<Arc<str>>,
        /// The new threshold.
        threshold: f32,
    },
    /// A request for raw samples.
    RawRequest {
        /// The sensor.
        sensor: Arc<str>,
        /// Span start, ms.
        from: i64,
        /// Span end, ms.
        to: i64,
    },
    /// A signed model announcement.
    Model(ModelAnnouncement),
}

/// A `label` message.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelFb {
    /// The sensor.
    pub sensor: Arc<str>,
    /// Span start, ms.
    pub from: i64,
    /// Span end, ms.
    pub to: i64,
    /// `true` for `anomaly`, `false` for `normal`.
    pub anomaly: bool,
}

/// A `model` announcement (signature checked).
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
pub struct ModelAnnouncement {
    /// Model name.
    pub name: String,
    /// Model version.
    pub version: String,
    /// SHA-256 of the package's weights file (64 lower-case hex digits).
    pub sha256: String,
    /// Ed25519 signature (128 hex digits) over [`canonical_model_bytes`].
    pub signature: String,
    /// Local directory of the package, delivered out of band; absent = record only.
    #[serde(default)]
    pub path: Option<String>,
}

/// Why a message was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Short reason: `malformed`, `unknown_sensor` or `unauthorised`.
    pub reason: &'static str,
    /// What exactly, for the dead letter and the log.
    pub detail: String,
}

fn malformed(detail: impl Into<String>) -> Rejection {
    Rejection {
        reason: "malformed",
        detail: detail.into(),
    }
}

/// What the validation needs to know of the gateway.
pub struct Checks<'a> {
    /// Longest span, ms.
    pub max_span_ms: i64,
    /// Largest threshold.
    pub max_threshold: f32,
    /// The command key; `None` = announcements are unauthorised and thresholds unsigned.
    pub key: Option<&'a VerifyingKey>,
    /// The gateway's clock, ms since the epoch.
    pub now_ms: i64,
    /// How far a signed command's `ts` may be from `now_ms`, ms.
    pub max_age_ms: i64,
    /// Whether a sensor is known (has a baseline or makes decisions).
    pub known: &'a dyn Fn(&str) -> bool,
}

/// The message's `id`, if it has a valid one (a string of at most 128 bytes).
pub fn id_of(payload: &[u8]) -> Result<Option<String>, Rejection> {
    #[derive(Deserialize)]
    struct Id {
        id: Option<String>,
    }
    let id = serde_json::from_slice::<Id>(payload)
        .map_err(|e| malformed(format!("invalid JSON or id: {e}")))?
        .id;
    match id {
        Some(i) if i.is_empty() || i.len() > MAX_ID => {
            Err(malformed("id must have 1 to 128 bytes"))
        }
        other => Ok(other),
    }
}

fn sensor(s: String, c: &Checks) -> Result<Arc<str>, Rejection> {
    if !super::valid_sensor_id(&s) {
        return Err(malformed(format!(
            "sensor {s:?}: must be 1 to 128 bytes without '/', '+' or '#'"
        )));
    }
    if !(c.known)(&s) {
        return Err(Rejection {
            reason: "unknown_sensor",
            detail: format!("sensor {s:?} has no baseline and makes no decisions"),
        });
    }
    Ok(s.into())
}

fn span(from: i64, to: i64, c: &Checks) -> Result<(), Rejection> {
    if from > to {
        return Err(malformed(format!("from {from} is after to {to}")));
    }
    if to.saturating_sub(from) > c.max_span_ms {
        return Err(malformed(format!(
            "span {} ms is longer than feedback.max_span ({} ms)",
            to.saturating_sub(from),
            c.max_span_ms
        )));
    }
    Ok(())
}

/// Parses and validates a payload of `kind`.
pub fn parse(kind: Kind, payload: &[u8], c: &Checks) -> Result<Feedback, Rejection> {
    let json = |e: serde_json::Error| malformed(e.to_string());
    match kind {
        Kind::Label => {
            #[derive(Deserialize)]
            struct P {
                sensor: String,
                from: i64,
                to: i64,
                label: String,
            }
            let p: P = serde_json::from_slice(payload).map_err(json)?;
            let anomaly = match p.label.as_str() {
                "anomaly" => true,
                "normal" => false,
                other => {
                    return Err(malformed(format!(
                        "label {other:?}: must be \"anomaly\" or \"normal\""
                    )))
                }
            };
            span(p.from, p.to, c)?;
            Ok(Feedback::Label(LabelFb {
                sensor: sensor(p.sensor, c)?,
                from: p.from,
                to: p.to,
                anomaly,
            }))
        }
        Kind::Threshold => {
            #[derive(Deserialize)]
            struct P {
                sensor: String,
                threshold: f64,
                id: Option<String>,
                ts: Option<i64>,
                signature: Option<String>,
            }
            let p: P = serde_json::from_slice(payload).map_err(json)?;
            if let Some(key) = c.key {
                let (Some(id), Some(ts), Some(sig)) = (&p.id, p.ts, &p.signature) else {
                    return Err(unauthorised(
                        "feedback.public_key is set: a threshold needs id, ts and signature",
                    ));
                };
                let age = c.now_ms.saturating_sub(ts);
                if age.unsigned_abs() > c.max_age_ms.unsigned_abs() {
                    return Err(unauthorised(&format!(
                        "stale: ts {ts} is {} s from the gateway's clock (feedback.max_command_age {} s)",
                        age / 1000,
                        c.max_age_ms / 1000
                    )));
                }
                let msg = canonical_threshold_bytes(id, &p.sensor, p.threshold, ts);
                check_signature(key, &msg, sig)?;
            }
            let t = p.threshold as f32;
            if !(t.is_finite() && t > 0.0 && t <= c.max_threshold) {
                return Err(malformed(format!(
                    "threshold {}: must be above 0 and at most feedback.max_threshold ({})",
                    p.threshold, c.max_threshold
                )));
            }
            let sensor = match p.sensor.as_str() {
                "*" => None,
                _ => Some(sensor(p.sensor, c)?),
            };
            Ok(Feedback::Threshold {
                sensor,
                threshold: t,
            })
        }
        Kind::RawRequest => {
            #[derive(Deserialize)]
            struct P {
                sensor: String,
                from: i64,
                to: i64,
            }
            let p: P = serde_json::from_slice(payload).map_err(json)?;
            span(p.from, p.to, c)?;
            // Raw windows outlive sensor actors in the store: any valid id may be asked for.
            if !super::valid_sensor_id(&p.sensor) {
                return Err(malformed(format!("sensor {:?}: not a valid id", p.sensor)));
            }
            Ok(Feedback::RawRequest {
                sensor: p.sensor.into(),
                from: p.from,
                to: p.to,
            })
        }
        Kind::Model => {
            let m: ModelAnnouncement = serde_json::from_slice(payload).map_err(json)?;
            if m.sha256.len() != 64 || !m.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(malformed("sha256: must be 64 hex digits"));
            }
            verify(&m, c.key)?;
            Ok(Feedback::Model(m))
        }
    }
}

/// The bytes a model announcement's signature covers: the UTF-8 of
/// `"edgegw-model-v1\n" + name + "\n" + version + "\n" + lower(sha256) + "\n" + path + "\n"`
/// (`path` empty when absent). Other fields, `id` included, are not signed.
pub fn canonical_model_bytes(name: &str, version: &str, sha256: &str, path: &str) -> Vec<u8> {
    format!(
        "edgegw-model-v1\n{name}\n{version}\n{}\n{path}\n",
        sha256.to_ascii_lowercase()
    )
    .into_bytes()
}

/// The bytes a threshold command's signature covers: the UTF-8 of
/// `"edgegw-threshold-v1\n" + id + "\n" + sensor + "\n" + threshold + "\n" + ts + "\n"`, the
/// threshold written as the shortest decimal that reads back as the same f64, without an
/// exponent (`0.8`, `2`, `0.0001`), and `ts` in ms since the epoch. `edgegw feedback sign`
/// writes such commands.
pub fn canonical_threshold_bytes(id: &str, sensor: &str, threshold: f64, ts: i64) -> Vec<u8> {
    format!("edgegw-threshold-v1\n{id}\n{sensor}\n{threshold}\n{ts}\n").into_bytes()
}

fn unauthorised(detail: &str) -> Rejection {
    Rejection {
        reason: "unauthorised",
        detail: detail.into(),
    }
}

/// Checks that `sig` (128 hex digits) is `key`'s ed25519 signature of `msg`.
fn check_signature(key: &VerifyingKey, msg: &[u8], sig: &str) -> Result<(), Rejection> {
    let sig: [u8; 64] = hex(sig)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| unauthorised("signature: must be 128 hex digits"))?;
    key.verify_strict(msg, &Signature::from_bytes(&sig))
        .map_err(|_| unauthorised("signature does not verify with feedback.public_key"))
}

fn verify(m: &ModelAnnouncement, key: Option<&VerifyingKey>) -> Result<(), Rejection> {
    let Some(key) = key else {
        return Err(unauthorised(
            "no feedback.public_key configured: model announcements are refused",
        ));
    };
    let msg = canonical_model_bytes(
        &m.name,
        &m.version,
        &m.sha256,
        m.path.as_deref().unwrap_or(""),
    );
    check_signature(key, &msg, &m.signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn checks<'a>(key: Option<&'a VerifyingKey>, known: &'a dyn Fn(&str) -> bool) -> Checks<'a> {
        Checks {
            max_span_ms: 86_400_000,
            max_threshold: 100.0,
            key,
            now_ms: NOW,
            max_age_ms: 300_000,
            known,
        }
    }

    const NOW: i64 = 1_700_000_000_000;

    fn signed_threshold(sk: &SigningKey, id: &str, sensor: &str, t: f64, ts: i64) -> String {
        let sig = sk.sign(&canonical_threshold_bytes(id, sensor, t, ts));
        let sig: String = sig.to_bytes().iter().map(|b| format!("{b:02x}")).collect();
        format!(
            r#"{{"id":"{id}","sensor":"{sensor}","threshold":{t},"ts":{ts},"signature":"{sig}"}}"#
        )
    }

    #[test]
    fn with_a_key_thresholds_need_a_fresh_valid_signature() {
        let sk = SigningKey::from_bytes(&[7; 32]);
        let vk = sk.verifying_key();
        let known = |_: &str| true;
        let c = checks(Some(&vk), &known);
        let reason = |p: &str| {
            parse(Kind::Threshold, p.as_bytes(), &c)
                .err()
                .map(|r| r.reason)
        };
        // Signed, fresh: applied.
        let ok = signed_threshold(&sk, "t-1", "s1", 0.8, NOW - 1_000);
        assert_eq!(
            parse(Kind::Threshold, ok.as_bytes(), &c),
            Ok(Feedback::Threshold {
                sensor: Some("s1".into()),
                threshold: 0.8
            })
        );
        assert_eq!(
            reason(&signed_threshold(&sk, "t-2", "*", 2.0, NOW + 60_000)),
            None,
            "a clock a minute ahead is within the bound"
        );
        // Unsigned, or missing id or ts.
        assert_eq!(
            reason(r#"{"sensor":"*","threshold":1000}"#),
            Some("unauthorised")
        );
        assert_eq!(
            reason(r#"{"sensor":"*","threshold":1,"ts":1,"signature":"00"}"#),
            Some("unauthorised")
        );
        // Stale either way.
        assert_eq!(
            reason(&signed_threshold(&sk, "t-3", "s1", 0.8, NOW - 301_000)),
            Some("unauthorised")
        );
        assert_eq!(
            reason(&signed_threshold(&sk, "t-4", "s1", 0.8, NOW + 301_000)),
            Some("unauthorised")
        );
        // Signed by another key, or altered after signing.
        let other = SigningKey::from_bytes(&[8; 32]);
        assert_eq!(
            reason(&signed_threshold(&other, "t-5", "s1", 0.8, NOW)),
            Some("unauthorised")
        );
        let altered = signed_threshold(&sk, "t-6", "s1", 0.8, NOW).replace("0.8", "90");
        assert_eq!(reason(&altered), Some("unauthorised"));
        let moved = signed_threshold(&sk, "t-7", "s1", 0.8, NOW).replace("\"s1\"", "\"*\"");
        assert_eq!(reason(&moved), Some("unauthorised"));
        // A valid signature does not lift the other checks.
        assert_eq!(
            reason(&signed_threshold(&sk, "t-8", "s1", 1e9, NOW)),
            Some("malformed")
        );
    }

    #[test]
    fn without_a_key_thresholds_need_no_signature() {
        let known = |_: &str| true;
        let c = checks(None, &known);
        assert!(parse(Kind::Threshold, br#"{"sensor":"*","threshold":2}"#, &c).is_ok());
    }

    #[test]
    fn the_threshold_is_signed_as_its_shortest_decimal() {
        let b = |t: f64| String::from_utf8(canonical_threshold_bytes("i", "s", t, 5)).unwrap();
        assert_eq!(b(0.8), "edgegw-threshold-v1\ni\ns\n0.8\n5\n");
        assert_eq!(b(2.0), "edgegw-threshold-v1\ni\ns\n2\n5\n");
        assert_eq!(b(0.0001), "edgegw-threshold-v1\ni\ns\n0.0001\n5\n");
    }

    #[test]
    fn payloads_are_checked_per_kind() {
        let known = |s: &str| s == "s1";
        let c = checks(None, &known);
        let ok = |k, p: &str| parse(k, p.as_bytes(), &c);
        let reason = |k, p: &str| ok(k, p).err().map(|r| r.reason);
        assert!(matches!(
            ok(
                Kind::Label,
                r#"{"sensor":"s1","from":1,"to":2,"label":"anomaly","x":1}"#
            ),
            Ok(Feedback::Label(LabelFb { anomaly: true, .. }))
        ));
        assert_eq!(
            reason(
                Kind::Label,
                r#"{"sensor":"s2","from":1,"to":2,"label":"normal"}"#
            ),
            Some("unknown_sensor")
        );
        assert_eq!(
            reason(
                Kind::Label,
                r#"{"sensor":"s1","from":0,"to":90000000,"label":"normal"}"#
            ),
            Some("malformed"),
            "span longer than max_span"
        );
        assert_eq!(
            ok(Kind::Threshold, r#"{"sensor":"*","threshold":2.5}"#),
            Ok(Feedback::Threshold {
                sensor: None,
                threshold: 2.5
            })
        );
        for bad in ["0", "101", "-1", "1e400"] {
            let p = format!(r#"{{"sensor":"s1","threshold":{bad}}}"#);
            assert_eq!(reason(Kind::Threshold, &p), Some("malformed"), "{bad}");
        }
        assert!(ok(Kind::RawRequest, r#"{"sensor":"gone","from":1,"to":1}"#).is_ok());
        assert_eq!(
            reason(Kind::RawRequest, r#"{"sensor":"a#","from":1,"to":1}"#),
            Some("malformed")
        );
        assert_eq!(
            id_of(br#"{"id":""}"#).map_err(|r| r.reason),
            Err("malformed")
        );
        assert_eq!(id_of(br#"{"id":"a"}"#), Ok(Some("a".into())));
    }

    #[test]
    fn model_announcements_need_a_valid_signature() {
        let sk = SigningKey::from_bytes(&[1; 32]);
        let vk = sk.verifying_key();
        let known = |_: &str| true;
        let sha = "ab".repeat(32);
        let sig = |k: &SigningKey, path: &str| {
            let s = k
                .sign(&canonical_model_bytes("m", "1", &sha, path))
                .to_bytes();
            s.iter().map(|b| format!("{b:02x}")).collect::<String>()
        };
        let payload = |sig: String, path: &str| {
            format!(
                r#"{{"name":"m","version":"1","sha256":"{sha}","signature":"{sig}","path":"{path}"}}"#
            )
        };
        let with_key = checks(Some(&vk), &known);
        let p = payload(sig(&sk, "/p"), "/p");
        assert!(parse(Kind::Model, p.as_bytes(), &with_key).is_ok());
        let reason =
            |p: &str, c: &Checks| parse(Kind::Model, p.as_bytes(), c).err().map(|r| r.reason);
        assert_eq!(
            reason(&p, &checks(None, &known)),
            Some("unauthorised"),
            "no key"
        );
        let other = SigningKey::from_bytes(&[2; 32]);
        assert_eq!(
            reason(&payload(sig(&other, "/p"), "/p"), &with_key),
            Some("unauthorised")
        );
        assert_eq!(
            reason(&payload(sig(&sk, "/p"), "/elsewhere"), &with_key),
            Some("unauthorised"),
            "the path is signed"
        );
    }
}
