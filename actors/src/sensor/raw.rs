//! Raw troubleshooting windows: the samples around an alert — the sensor's window before it
//! and the next `raw_after` samples — captured from the ring buffer and sent as a `raw`
//! message with the alert's id context.
//!
//! Design constraints: capture costs nothing until an alert; then one push per sample until
//! `raw_after` samples arrived (bounded memory: window + raw_after samples per capturing
//! sensor). One capture per sensor at a time: alerts during a capture are already inside it.

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
    /// Starts with the window's samples before the alert.
    pub fn new(alert_end: i64, before: Vec<Sample>, after: usize) -> Self {
        let mut samples = before;
        samples.reserve(after);
        Self {
            alert_end,
            samples,
            remaining: after,
        }
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
        let before = vec![Sample { ts: 1, v: 1.0 }, Sample { ts: 2, v: 2.0 }];
        let mut c = RawCapture::new(2, before, 2);
        assert!(!c.push(Sample { ts: 3, v: 3.0 }));
        assert!(c.push(Sample { ts: 4, v: 4.0 }));
        assert_eq!(
            c.samples.iter().map(|s| s.ts).collect::<Vec<_>>(),
            vec![1, 2, 3, 4]
        );
        assert!(RawCapture::new(0, Vec::new(), 0).push(Sample { ts: 5, v: 0.0 }));
    }
}
