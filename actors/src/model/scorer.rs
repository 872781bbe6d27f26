//! [`Scorer`]: one interface over the trained model and the fallback rule.
//!
//! # Design constraints
//! - Callers (one task per sensor) hold a `Scorer` and never need to know which variant is
//!   active; the model variant shares its network through an `Arc`, so cloning is cheap.
//! - Switching to the fallback is an explicit, observable event: [`Scorer::load_or_fallback`]
//!   returns the error that caused it so the caller can log or report it.
//! - Both variants refuse rows whose length differs from their feature list, so a mismatched
//!   extractor is caught whichever variant runs.

use std::path::Path;
use std::sync::Arc;

use super::fallback::{FallbackRule, FALLBACK_NAME, FALLBACK_VERSION};
use super::{load_package, LoadedModel, ModelError};

/// The active scoring method.
#[derive(Debug, Clone)]
pub enum Scorer {
    /// A loaded, verified model package.
    Model(Arc<LoadedModel>),
    /// The rule, with the feature names (in row order) it reads.
    Fallback(FallbackRule, Vec<String>),
}

impl Scorer {
    /// The fallback rule (default limits) over `features`.
    pub fn fallback(features: Vec<String>) -> Scorer {
        Scorer::Fallback(FallbackRule::default(), features)
    }

    /// Loads the package in `dir` and checks that its features are exactly `features` (same
    /// names, same order). On any failure returns the fallback rule over `features` together
    /// with the error, so the gateway keeps working and can report why.
    pub fn load_or_fallback(
        dir: &Path,
        features: &[String],
        rule: FallbackRule,
    ) -> (Scorer, Option<ModelError>) {
        let loaded = load_package(dir).and_then(|m| {
            if m.manifest.features == features {
                Ok(m)
            } else {
                Err(ModelError::FeatureNamesMismatch {
                    model: m.manifest.features,
                    extractor: features.to_vec(),
                })
            }
        });
        match loaded {
            Ok(m) => (Scorer::Model(Arc::new(m)), None),
            Err(e) => (Scorer::Fallback(rule, features.to_vec()), Some(e)),
        }
    }

    /// Scores every row; a row is anomalous when its score is above [`Scorer::threshold`].
    /// Rows of the wrong length refuse the batch with [`ModelError::FeatureMismatch`].
    pub fn score_batch(&self, x: &[Vec<f32>]) -> Result<Vec<f32>, ModelError> {
        match self {
            Scorer::Model(m) => m.model.score_batch(x),
            Scorer::Fallback(rule, names) => {
                if let Some(row) = x.iter().find(|r| r.len() != names.len()) {
                    return Err(ModelError::FeatureMismatch {
                        expected: names.len(),
                        got: row.len(),
                    });
                }
                Ok(rule.score_batch(names, x))
            }
        }
    }

    /// Score above which a row is flagged.
    pub fn threshold(&self) -> f32 {
        match self {
            Scorer::Model(m) => m.manifest.threshold,
            Scorer::Fallback(rule, _) => rule.threshold(),
        }
    }

    /// Whether `score` (from [`Scorer::score_batch`]) is anomalous: strictly above the
    /// threshold. NaN is never produced by the scorers; it would count as not anomalous.
    pub fn is_anomalous(&self, score: f32) -> bool {
        score > self.threshold()
    }

    /// Model name from the manifest, or `"fallback"`.
    pub fn name(&self) -> &str {
        match self {
            Scorer::Model(m) => &m.manifest.name,
            Scorer::Fallback(..) => FALLBACK_NAME,
        }
    }

    /// Model version from the manifest, or `"rule-1"`.
    pub fn version(&self) -> &str {
        match self {
            Scorer::Model(m) => &m.manifest.version,
            Scorer::Fallback(..) => FALLBACK_VERSION,
        }
    }

    /// SHA-256 (hex) of the package's weights, or `""` for the fallback rule.
    pub fn sha256(&self) -> &str {
        match self {
            Scorer::Model(m) => &m.manifest.weights_sha256,
            Scorer::Fallback(..) => "",
        }
    }

    /// Feature names, in the order rows must follow.
    pub fn feature_names(&self) -> &[String] {
        match self {
            Scorer::Model(m) => &m.manifest.features,
            Scorer::Fallback(_, names) => names,
        }
    }

    /// Whether the fallback rule is active.
    pub fn is_fallback(&self) -> bool {
        matches!(self, Scorer::Fallback(..))
    }
}
