//! `[store]`: where the store lives and how much it may hold.

use super::{check, ConfigError};
use crate::duration::Dur;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// `[store]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// Directory of the store.
    pub path: PathBuf,
    /// On-disk budget in bytes, sled's space amplification included.
    pub max_bytes: u64,
    /// sled's page cache (its default of 1 GiB is wrong for a small device).
    pub cache_bytes: u64,
    /// Amplification (disk bytes / logical bytes) assumed until measured.
    pub initial_amplification: f64,
    /// Above this share of the budget the gateway reports itself degraded (`store_near_budget`).
    pub near_budget: f64,
    /// Dead letters kept (oldest dropped first).
    pub dead_letters_max: u64,
    /// How often the disk size is measured and the budget re-checked.
    pub check_every: Dur,
    /// Raw troubleshooting windows are kept this long for `raw-request`s.
    pub raw_retention: Dur,
    /// Most raw windows kept (oldest dropped first).
    pub raw_windows_max: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            path: PathBuf::from("./data"),
            max_bytes: 1 << 30,
            cache_bytes: 16 << 20,
            initial_amplification: 3.0,
            near_budget: 0.8,
            dead_letters_max: 10_000,
            check_every: Dur::secs(5),
            raw_retention: Dur::secs(24 * 3600),
            raw_windows_max: 10_000,
        }
    }
}

impl StoreConfig {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check(
            !self.path.as_os_str().is_empty(),
            "store.path",
            "must not be empty",
        )?;
        check(
            self.max_bytes >= 1 << 20,
            "store.max_bytes",
            "must be at least 1048576 (1 MiB)",
        )?;
        check(
            (1 << 20..=1 << 32).contains(&self.cache_bytes),
            "store.cache_bytes",
            "must be between 1048576 and 4294967296",
        )?;
        check(
            (1.0..=20.0).contains(&self.initial_amplification),
            "store.initial_amplification",
            "must be between 1 and 20",
        )?;
        check(
            (0.1..1.0).contains(&self.near_budget),
            "store.near_budget",
            "must be in [0.1, 1)",
        )?;
        check(
            self.dead_letters_max > 0,
            "store.dead_letters_max",
            "must be greater than 0",
        )?;
        check(
            !self.check_every.get().is_zero(),
            "store.check_every",
            "must be greater than 0",
        )?;
        check(
            self.raw_windows_max > 0,
            "store.raw_windows_max",
            "must be greater than 0",
        )
    }
}
