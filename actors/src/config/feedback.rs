//! `[feedback]`: inbound limits, validation bounds, idempotency memory, the model key.

use super::{check, ConfigError};
use crate::duration::Dur;
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Largest accepted `feedback.max_threshold`.
const THRESHOLD_CAP: f32 = 1.0e6;

/// `[feedback]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedbackConfig {
    /// Feedback messages processed per second, all kinds together.
    pub rate_per_sec: u32,
    /// Burst allowance above the rate (all kinds together).
    pub burst: u32,
    /// Per-kind limits, each inside the global one.
    pub kinds: KindLimits,
    /// Messages per minute for one sensor (kinds that name a sensor, together).
    pub per_sensor_per_min: u32,
    /// Burst allowance per sensor.
    pub per_sensor_burst: u32,
    /// Longest span (`to - from`) of a `label` or `raw-request`.
    pub max_span: Dur,
    /// Largest threshold a `threshold` message may set.
    pub max_threshold: f32,
    /// Feedback ids remembered (persisted) for idempotency; the oldest are forgotten first.
    pub seen_ids: u64,
    /// Labels kept for retraining; the oldest are evicted first (counted).
    pub labels_max: u64,
    /// Ed25519 public key (64 hex digits) that signs model announcements and `threshold`
    /// commands; empty = announcements are refused and thresholds need no signature.
    /// (`model_public_key`, its earlier name, is still read.)
    #[serde(alias = "model_public_key")]
    pub public_key: String,
    /// How far a signed command's `ts` may be from the gateway's clock, either way: an older
    /// (or later) command is refused as stale, so a captured one cannot be replayed later.
    /// Within it, the seen ids refuse a repeat.
    pub max_command_age: Dur,
}

/// `[feedback.kinds.*]`: one limit per kind.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KindLimits {
    /// `label` messages.
    pub label: KindLimit,
    /// `threshold` messages.
    pub threshold: KindLimit,
    /// `raw-request` messages.
    #[serde(rename = "raw-request")]
    pub raw_request: KindLimit,
    /// `model` announcements.
    pub model: KindLimit,
}

/// The limit of one kind.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindLimit {
    /// Messages of this kind per second.
    pub rate_per_sec: u32,
    /// Burst allowance of this kind.
    pub burst: u32,
}

const fn limit(rate_per_sec: u32, burst: u32) -> KindLimit {
    KindLimit {
        rate_per_sec,
        burst,
    }
}

impl Default for KindLimits {
    fn default() -> Self {
        Self {
            label: limit(10, 20),
            threshold: limit(5, 10),
            raw_request: limit(5, 10),
            model: limit(1, 2),
        }
    }
}

impl KindLimits {
    /// The limit of `kind`.
    pub fn get(&self, kind: Kind) -> KindLimit {
        match kind {
            Kind::Label => self.label,
            Kind::Threshold => self.threshold,
            Kind::RawRequest => self.raw_request,
            Kind::Model => self.model,
        }
    }
}

impl Default for FeedbackConfig {
    fn default() -> Self {
        Self {
            rate_per_sec: 20,
            burst: 40,
            kinds: KindLimits::default(),
            per_sensor_per_min: 60,
            per_sensor_burst: 10,
            max_span: Dur::secs(86_400),
            max_threshold: 1000.0,
            seen_ids: 10_000,
            labels_max: 10_000,
            public_key: String::new(),
            max_command_age: Dur::secs(300),
        }
    }
}

impl FeedbackConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check(
            self.rate_per_sec > 0,
            "feedback.rate_per_sec",
            "must be greater than 0",
        )?;
        check(self.burst > 0, "feedback.burst", "must be greater than 0")?;
        for kind in Kind::ALL {
            let l = self.kinds.get(kind);
            let key = |k: &str| format!("feedback.kinds.{}.{k}", kind.as_str());
            if l.rate_per_sec == 0 {
                return Err(ConfigError::new(
                    key("rate_per_sec"),
                    "must be greater than 0",
                ));
            }
            if l.burst == 0 {
                return Err(ConfigError::new(key("burst"), "must be greater than 0"));
            }
            if l.burst > self.burst {
                return Err(ConfigError::new(
                    key("burst"),
                    "must not exceed feedback.burst (the global limit would refuse the excess)",
                ));
            }
        }
        check(
            self.per_sensor_per_min > 0,
            "feedback.per_sensor_per_min",
            "must be greater than 0",
        )?;
        check(
            (1..=self.burst).contains(&self.per_sensor_burst),
            "feedback.per_sensor_burst",
            "must be between 1 and feedback.burst",
        )?;
        check(
            self.max_span.get() >= Duration::from_secs(1),
            "feedback.max_span",
            "must be at least 1s",
        )?;
        check(
            self.max_threshold.is_finite()
                && self.max_threshold > 0.0
                && self.max_threshold <= THRESHOLD_CAP,
            "feedback.max_threshold",
            "must be a finite number above 0 and at most 1e6",
        )?;
        check(
            (1..=10_000_000).contains(&self.seen_ids),
            "feedback.seen_ids",
            "must be between 1 and 10000000",
        )?;
        check(
            (1..=10_000_000).contains(&self.labels_max),
            "feedback.labels_max",
            "must be between 1 and 10000000",
        )?;
        if !self.public_key.is_empty() {
            public_key(&self.public_key).map_err(|r| ConfigError::new("feedback.public_key", r))?;
        }
        check(
            self.max_command_age.get() >= std::time::Duration::from_secs(1),
            "feedback.max_command_age",
            "must be at least 1s",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_of(f: impl FnOnce(&mut FeedbackConfig)) -> Option<String> {
        let mut c = FeedbackConfig::default();
        f(&mut c);
        c.validate().err().map(|e| e.key)
    }

    #[test]
    fn impossible_values_are_rejected_naming_the_key() {
        assert_eq!(key_of(|_| {}), None);
        assert_eq!(
            key_of(|c| c.rate_per_sec = 0).as_deref(),
            Some("feedback.rate_per_sec")
        );
        assert_eq!(key_of(|c| c.burst = 0).as_deref(), Some("feedback.burst"));
        assert_eq!(
            key_of(|c| c.kinds.label.burst = 41).as_deref(),
            Some("feedback.kinds.label.burst")
        );
        assert_eq!(
            key_of(|c| c.kinds.raw_request.rate_per_sec = 0).as_deref(),
            Some("feedback.kinds.raw-request.rate_per_sec")
        );
        assert_eq!(
            key_of(|c| c.per_sensor_burst = 0).as_deref(),
            Some("feedback.per_sensor_burst")
        );
        assert_eq!(
            key_of(|c| c.max_threshold = f32::NAN).as_deref(),
            Some("feedback.max_threshold")
        );
        assert_eq!(
            key_of(|c| c.seen_ids = 0).as_deref(),
            Some("feedback.seen_ids")
        );
        assert_eq!(
            key_of(|c| c.public_key = "abc".into()).as_deref(),
            Some("feedback.public_key")
        );
        let key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        assert_eq!(key_of(|c| c.public_key = key.into()), None);
        assert_eq!(
            key_of(|c| c.max_command_age = Dur::ms(10)).as_deref(),
            Some("feedback.max_command_age")
        );
    }

    #[test]
    fn kinds_are_read_from_toml() {
        let c: FeedbackConfig = toml::from_str(
            "rate_per_sec = 50\nburst = 100\n[kinds.raw-request]\nrate_per_sec = 7\nburst = 9\n",
        )
        .unwrap();
        assert_eq!(c.kinds.raw_request.rate_per_sec, 7);
        assert_eq!(c.kinds.label.burst, 20, "unset kinds keep their defaults");
        c.validate().unwrap();
    }
}

/// Decodes hex (either case); `None` if it is not hex.
pub fn hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|d| u8::from_str_radix(d, 16).ok()))
        .collect()
}

/// The configured public key, or why it is unusable.
pub fn public_key(s: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = hex(s)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "must be 64 hex digits (an ed25519 public key)".to_string())?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| format!("not an ed25519 public key: {e}"))
}

/// A feedback kind (the last topic level).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Labels a span of a sensor as `anomaly` or `normal`.
    Label = 0,
    /// Sets a decision threshold.
    Threshold = 1,
    /// Asks for the raw samples of a span.
    RawRequest = 2,
    /// Announces a model package (OTA).
    Model = 3,
}

impl Kind {
    /// Every kind (the `feedback/{kind}` topics of `SPEC.md`).
    pub const ALL: [Kind; 4] = [Kind::Label, Kind::Threshold, Kind::RawRequest, Kind::Model];

    /// Topic level and metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Label => "label",
            Kind::Threshold => "threshold",
            Kind::RawRequest => "raw-request",
            Kind::Model => "model",
        }
    }

    /// The kind named by a topic level.
    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// Whether payloads of this kind name a sensor (and are limited per sensor).
    pub fn names_sensor(self) -> bool {
        !matches!(self, Kind::Model)
    }
}
