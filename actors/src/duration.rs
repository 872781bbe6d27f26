//! Human-readable durations in config files ("500ms", "60s", "5m").
//!
//! Design constraints: a config value is always a string with a unit, so a bare number is
//! rejected with a message saying so rather than guessed at.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::time::Duration;

/// A duration read from and written to config as a string with a unit.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dur(pub Duration);

impl Dur {
    /// A duration of `ms` milliseconds, usable in `const` defaults.
    pub const fn ms(ms: u64) -> Self {
        Dur(Duration::from_millis(ms))
    }
    /// A duration of `s` seconds, usable in `const` defaults.
    pub const fn secs(s: u64) -> Self {
        Dur(Duration::from_secs(s))
    }
    /// The wrapped duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

impl fmt::Debug for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_duration(self.0))
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration string with a unit, like \"500ms\", \"60s\" or \"5m\"")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Dur, E> {
                humantime::parse_duration(v.trim())
                    .map(Dur)
                    .map_err(|e| E::custom(format!("invalid duration {v:?}: {e}")))
            }
        }
        d.deserialize_str(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        d: Dur,
    }

    #[test]
    fn parses_units_and_rejects_bare_numbers() {
        let t: T = toml::from_str("d = \"250ms\"").unwrap();
        assert_eq!(t.d.get(), Duration::from_millis(250));
        let t: T = toml::from_str("d = \"5m\"").unwrap();
        assert_eq!(t.d.get(), Duration::from_secs(300));
        assert!(toml::from_str::<T>("d = 5").is_err());
        assert!(toml::from_str::<T>("d = \"five\"").is_err());
    }
}
