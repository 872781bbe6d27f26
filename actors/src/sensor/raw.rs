//! Raw troubleshooting windows: the samples around an alert — the sensor's window before it
//! and the next `raw_after` samples — captured from the ring buffer and sent as a `raw`
//! message with the alert's id context.
//!
//! Design constraints: capture costs nothing until an alert; then one push per sample until
//! `raw_after` samples arrived (bounded memory: window + raw_after samples per capturing
//! sensor). One capture per sensor at a time: alerts during a capture are already inside it.
//! The decision comes back after the window was scored; samples that reached the ring
//! meanwhile count toward the "after" part. In real time that is milliseconds; when samples
//! arrive much faster than decisions (a replay), the ring may already have moved past the
//! start of the alert's window, and the capture then starts at the oldest sample still held.

use super::window::Sample;

/// A capture in progress.
#[derive(Debug, Clone)]
pub struct RawCapture {
    /// End of the alerting window, ms (links the raw window to its alert).
    pub alert_end: i64,
    /// Samples so far, oldest first.
    pub samples: Vec<Sample>,
    /// Samples still to collect after the alert.
    pub remaining: usize,
}

impl RawCapture {
    /// Starts from the ring's samples (oldest first) for an alert on the window
    /// `[alert_start, alert_end]`: those from the window's start on are kept, and those already
    /// past its end count toward the `after` samples.
    pub fn new(alert_start: i64, alert_end: i64, ring: Vec<Sample>, after: usize) -> Self {
        let samples: Vec<Sample> = ring.into_iter().filter(|s| s.ts >= alert_start).collect();
        let already = samples.iter().filter(|s| s.ts > alert_end).count();
        let remaining = after.saturating_sub(already);
        let mut c = Self {
            alert_end,
            samples,
            remaining,
        };
        c.samples.reserve(remaining);
        c
    }

    /// Adds one sample after the alert; true when the capture is complete.
    pub fn push(&mut self, s: Sample) -> bool {
        if self.remaining > 0 {
            self.samples.push(s);
            self.remaining -= 1;
        }
        self.remaining == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collects_before_and_after() {
        let ring = |ts: &[i64]| {
            ts.iter()
                .map(|&ts| Sample { ts, v: ts as f64 })
                .collect::<Vec<_>>()
        };
        let mut c = RawCapture::new(1, 2, ring(&[1, 2]), 2);
        assert!(!c.push(Sample { ts: 3, v: 3.0 }));
        assert!(c.push(Sample { ts: 4, v: 4.0 }));
        assert_eq!(
            c.samples.iter().map(|s| s.ts).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        // The decision came late: the ring holds older and newer samples than the alert window.
        let c = RawCapture::new(5, 6, ring(&[3, 4, 5, 6, 7, 8]), 3);
        assert_eq!(
            c.samples.iter().map(|s| s.ts).collect::<Vec<_>>(),
            vec![5, 6, 7, 8]
        );
        assert_eq!(c.remaining, 1);
        assert!(RawCapture::new(0, 0, Vec::new(), 0).push(Sample { ts: 5, v: 0.0 }));
    }
}
