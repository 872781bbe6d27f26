//! The label vocabularies of the instruments: one `&'static str` label per family, from
//! small fixed sets, so cardinality stays bounded.

use super::read::LabelPair;
use crate::config::Kind;
use prometheus_client::encoding::EncodeLabelSet;

/// `{reason}` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// A fixed reason code, e.g. `malformed_json`.
    pub reason: &'static str,
}

/// `{class}` label: `alert`, `summary`, `raw`, `status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ClassLabel {
    /// Uplink message class.
    pub class: &'static str,
}

/// Every uplink class label (`status` is never stored, so it has no store series).
pub const CLASSES: [&str; 4] = ["alert", "summary", "raw", "status"];

/// Every stage label of `edgegw_actor_restarts_total` (a small fixed set).
pub const RESTART_STAGES: &[&str] = &[
    "ingest",
    "sensors",
    "sensor",
    "inference",
    "inference_worker",
    "uplink",
    "feedback",
    "http",
];

/// `{stage}` label: `ingest`, `sensors`, `sensor`, `inference`, `inference_worker`, `uplink`, `feedback`, `http`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabel {
    /// Supervised stage name.
    pub stage: &'static str,
}

/// `{kind}` label for feedback.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// Feedback kind.
    pub kind: &'static str,
}

/// Implements [`LabelPair`] for label sets of one `&'static str` field.
macro_rules! label_pair {
    ($($t:ident . $field:ident),* $(,)?) => {$(
        impl LabelPair for $t {
            const NAME: &'static str = stringify!($field);
            fn value(&self) -> &'static str {
                self.$field
            }
        }
    )*};
}

label_pair!(
    ReasonLabel.reason,
    ClassLabel.class,
    StageLabel.stage,
    KindLabel.kind
);

/// Why an anomalous decision did not become an alert (the `reason` label of
/// `edgegw_alerts_suppressed_by_reason_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suppressed {
    /// Its episode has alerted and no reminder is due.
    Duplicate,
    /// The sensor's previous alert is younger than `alert_cooldown`.
    Cooldown,
    /// The global cap `alerts.max_per_minute` is exhausted.
    Cap,
}

impl Suppressed {
    /// Every reason, for zeroed series.
    pub const ALL: [Suppressed; 3] = [Self::Duplicate, Self::Cooldown, Self::Cap];

    /// The label value.
    pub fn reason(self) -> &'static str {
        match self {
            Self::Duplicate => "duplicate",
            Self::Cooldown => "cooldown",
            Self::Cap => "cap",
        }
    }
}

/// Feedback kinds as the `{kind}` label.
impl Kind {
    /// `{kind}` metric label.
    pub fn label(self) -> KindLabel {
        KindLabel {
            kind: self.as_str(),
        }
    }
}
