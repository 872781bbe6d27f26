//! Rate-limited logging for repeated errors: at most one line per key per interval, carrying
//! how many similar lines were suppressed since the last one.
//!
//! Design constraints: keys come from small fixed sets (reason codes), so the map stays small;
//! the check is a hash lookup, cheap enough for every rejected message.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Per-key log limiter.
pub struct RateLog {
    every: Duration,
    last: HashMap<&'static str, (Instant, u64)>,
}

impl RateLog {
    /// At most one line per key every `every`.
    pub fn new(every: Duration) -> Self {
        Self {
            every,
            last: HashMap::new(),
        }
    }

    /// `Some(suppressed)` when a line for `key` may be logged now (with the count of lines
    /// suppressed since the last), `None` when it must be suppressed.
    pub fn allow(&mut self, key: &'static str, now: Instant) -> Option<u64> {
        match self.last.get_mut(key) {
            Some((at, n)) if now.duration_since(*at) < self.every => {
                *n += 1;
                None
            }
            Some((at, n)) => {
                let s = *n;
                *at = now;
                *n = 0;
                Some(s)
            }
            None => {
                self.last.insert(key, (now, 0));
                Some(0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suppresses_within_interval() {
        let mut r = RateLog::new(Duration::from_secs(10));
        let t = Instant::now();
        assert_eq!(r.allow("a", t), Some(0));
        assert_eq!(r.allow("a", t + Duration::from_secs(1)), None);
        assert_eq!(r.allow("a", t + Duration::from_secs(2)), None);
        assert_eq!(r.allow("b", t), Some(0));
        assert_eq!(r.allow("a", t + Duration::from_secs(11)), Some(2));
    }
}
