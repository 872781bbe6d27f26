//! Restart policy: how often a supervised stage may fail, how long to wait before restarting
//! it, and when to escalate.
//!
//! Design constraints: pure and clock-injected (every method takes `now`), so it is tested
//! without sleeping. Backoff doubles per consecutive failure from `backoff_initial` up to
//! `backoff_max`, with ±`jitter` spread so a fleet of crashing actors does not restart in
//! lock-step. More than `max_restarts` failures inside `period` escalates: the stage keeps being
//! retried, but only at `backoff_max`, and the gateway reports itself degraded until the
//! failures stop.

mod children;

pub use children::{ChildKey, Children, Handle, Restart};

use crate::config::RestartPolicy;
use rand::Rng;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What a supervisor does about one failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Restart after this delay; the stage is within its policy.
    Restart(Duration),
    /// The stage failed more than `max_restarts` times in `period`: restart after this (long)
    /// delay and report the gateway degraded.
    Escalate(Duration),
}

impl Verdict {
    /// The delay before the restart, whatever the verdict.
    pub fn delay(self) -> Duration {
        match self {
            Verdict::Restart(d) | Verdict::Escalate(d) => d,
        }
    }
}

/// Failure history of one supervised child.
#[derive(Debug, Clone, Default)]
pub struct RestartTracker {
    /// Failure instants inside the policy period, oldest first.
    recent: VecDeque<Instant>,
    /// Failures since the last time the child stayed up for a whole period.
    consecutive: u32,
    /// When the child last (re)started, to reset `consecutive` after a quiet period.
    last_start: Option<Instant>,
    /// Total restarts over the child's life (for `/status`).
    pub total: u64,
}

impl RestartTracker {
    /// Records that the child started at `now`.
    pub fn started(&mut self, now: Instant) {
        self.last_start = Some(now);
    }

    /// Whether the child is currently escalated (too many recent failures).
    pub fn escalated(&self, policy: &RestartPolicy, now: Instant) -> bool {
        let period = policy.period.get();
        self.recent
            .iter()
            .filter(|t| now.duration_since(**t) < period)
            .count()
            > policy.max_restarts as usize
    }

    /// Records a failure at `now` and decides what to do.
    pub fn on_failure(
        &mut self,
        policy: &RestartPolicy,
        now: Instant,
        rng: &mut impl Rng,
    ) -> Verdict {
        let period = policy.period.get();
        while self
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= period)
        {
            self.recent.pop_front();
        }
        if self
            .last_start
            .is_some_and(|s| now.duration_since(s) >= period)
        {
            self.consecutive = 0;
        }
        self.recent.push_back(now);
        self.consecutive = self.consecutive.saturating_add(1);
        self.total += 1;
        let max = policy.backoff_max.get();
        if self.recent.len() > policy.max_restarts as usize {
            return Verdict::Escalate(jittered(max, policy.jitter, rng));
        }
        let exp = self.consecutive.saturating_sub(1).min(20);
        let base = policy
            .backoff_initial
            .get()
            .saturating_mul(1u32 << exp)
            .min(max);
        Verdict::Restart(jittered(base, policy.jitter, rng))
    }
}

/// `d` spread uniformly by ±`jitter`.
pub fn jittered(d: Duration, jitter: f64, rng: &mut impl Rng) -> Duration {
    if jitter <= 0.0 {
        return d;
    }
    let f = rng.random_range((1.0 - jitter)..=(1.0 + jitter));
    d.mul_f64(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::duration::Dur;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn policy() -> RestartPolicy {
        RestartPolicy {
            jitter: 0.0,
            max_restarts: 3,
            period: Dur::secs(10),
            backoff_initial: Dur::ms(100),
            backoff_max: Dur::secs(2),
            ..RestartPolicy::default()
        }
    }

    #[test]
    fn backoff_doubles_then_escalates() {
        let p = policy();
        let mut t = RestartTracker::default();
        let mut rng = StdRng::seed_from_u64(1);
        let now = Instant::now();
        t.started(now);
        let v: Vec<_> = (0..4)
            .map(|i| t.on_failure(&p, now + Duration::from_millis(i), &mut rng))
            .collect();
        assert_eq!(v[0], Verdict::Restart(Duration::from_millis(100)));
        assert_eq!(v[1], Verdict::Restart(Duration::from_millis(200)));
        assert_eq!(v[2], Verdict::Restart(Duration::from_millis(400)));
        assert_eq!(v[3], Verdict::Escalate(Duration::from_secs(2)));
        assert!(t.escalated(&p, now + Duration::from_secs(1)));
        assert!(!t.escalated(&p, now + Duration::from_secs(11)));
        assert_eq!(t.total, 4);
    }

    #[test]
    fn quiet_period_resets_backoff() {
        let p = policy();
        let mut t = RestartTracker::default();
        let mut rng = StdRng::seed_from_u64(1);
        let now = Instant::now();
        t.started(now);
        t.on_failure(&p, now, &mut rng);
        t.on_failure(&p, now, &mut rng);
        let later = now + Duration::from_secs(30);
        t.started(now);
        assert_eq!(
            t.on_failure(&p, later, &mut rng),
            Verdict::Restart(Duration::from_millis(100))
        );
    }

    #[test]
    fn jitter_stays_in_bounds() {
        let mut rng = StdRng::seed_from_u64(7);
        for _ in 0..1000 {
            let d = jittered(Duration::from_millis(1000), 0.2, &mut rng);
            assert!(d >= Duration::from_millis(800) && d <= Duration::from_millis(1200));
        }
    }

    #[test]
    fn validate_names_keys() {
        let p = RestartPolicy {
            max_restarts: 0,
            ..RestartPolicy::default()
        };
        assert_eq!(
            p.validate("supervisor").unwrap_err().key,
            "supervisor.max_restarts"
        );
        let p = RestartPolicy {
            backoff_max: Dur::ms(1),
            ..RestartPolicy::default()
        };
        assert_eq!(
            p.validate("supervisor").unwrap_err().key,
            "supervisor.backoff_max"
        );
    }
}
