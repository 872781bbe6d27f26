//! What the feedback stage shares with the rest of the gateway: the limiters, the threshold
//! overrides read on every decision, a short per-sensor score history for calibration, and
//! the figures of `/status`.
//!
//! Design constraints: [`FeedbackShared::decide`] is the sensor actor's only call into
//! feedback, once per decision (never per sample): it records `(window end, score)` in a
//! fixed ring of [`HISTORY`] entries (constant memory per sensor, at most
//! `sensors.max_sensors` sensors) and returns the threshold in force.

use super::limits::Limits;
use super::validate::LabelFb;
use parking_lot::{Mutex, RwLock};
use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Decisions remembered per sensor for calibration.
pub const HISTORY: usize = 256;
/// A calibration never raises a threshold above this multiple of the model's.
pub const RAISE_CAP: f32 = 4.0;
/// A calibration never lowers a threshold below this multiple of the model's.
pub const LOWER_FLOOR: f32 = 0.5;
/// Calibrations listed in `/status`.
const RECENT: usize = 10;

/// The last [`HISTORY`] decisions of one sensor.
struct History {
    ts: Box<[i64; HISTORY]>,
    score: Box<[f32; HISTORY]>,
    next: usize,
    len: usize,
    /// The model's threshold at the last decision (bounds of calibration).
    model_threshold: f32,
    last: Instant,
}

impl History {
    fn new(model_threshold: f32) -> Self {
        History {
            ts: Box::new([0; HISTORY]),
            score: Box::new([0.0; HISTORY]),
            next: 0,
            len: 0,
            model_threshold,
            last: Instant::now(),
        }
    }

    fn push(&mut self, ts: i64, score: f32, model_threshold: f32) {
        self.ts[self.next] = ts;
        self.score[self.next] = score;
        self.next = (self.next + 1) % HISTORY;
        self.len = (self.len + 1).min(HISTORY);
        self.model_threshold = model_threshold;
        self.last = Instant::now();
    }

    fn scores_in(&self, from: i64, to: i64) -> impl Iterator<Item = f32> + '_ {
        (0..self.len)
            .filter(move |i| (from..=to).contains(&self.ts[*i]))
            .map(|i| self.score[i])
    }
}

/// Counters and recent events shown in `/status` (`feedback` section).
#[derive(Default)]
struct Figures {
    duplicate: u64,
    labels_evicted: u64,
    calibrations: u64,
    recent_calibrations: VecDeque<Value>,
    model_announced: Option<Value>,
}

/// The feedback state, shared with the sensors and `/status` through [`super::FeedbackPorts`].
pub struct FeedbackShared {
    /// The inbound limits, asked by the uplink on every feedback message.
    pub limits: Limits,
    /// Per-sensor threshold overrides (from `threshold` messages and calibration).
    thresholds: RwLock<HashMap<Arc<str>, f32>>,
    /// The `"*"` override: every sensor without its own.
    all: RwLock<Option<f32>>,
    history: Mutex<HashMap<Arc<str>, History>>,
    max_sensors: usize,
    figures: Mutex<Figures>,
}

/// A threshold change made by calibration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Calibration {
    /// The threshold before.
    pub from: f32,
    /// The threshold after.
    pub to: f32,
    /// The decisions of the labelled span that were looked at.
    pub decisions: usize,
}

impl FeedbackShared {
    /// Empty state with the limits of `cfg`.
    pub fn new(cfg: &crate::config::GatewayConfig) -> Self {
        FeedbackShared {
            limits: Limits::new(&cfg.feedback),
            thresholds: RwLock::default(),
            all: RwLock::default(),
            history: Mutex::default(),
            max_sensors: cfg.sensors.max_sensors,
            figures: Mutex::default(),
        }
    }

    /// The threshold in force for `sensor`: its own override, else the `"*"` one, else
    /// `model_threshold`.
    pub fn threshold_for(&self, sensor: &str, model_threshold: f32) -> f32 {
        if let Some(t) = self.thresholds.read().get(sensor) {
            return *t;
        }
        self.all.read().unwrap_or(model_threshold)
    }

    /// Called once per decision: records the score for calibration, returns the threshold.
    pub fn decide(&self, sensor: &Arc<str>, end_ts: i64, score: f32, model_threshold: f32) -> f32 {
        {
            let mut h = self.history.lock();
            if let Some(e) = h.get_mut(sensor) {
                e.push(end_ts, score, model_threshold);
            } else if h.len() < self.max_sensors {
                let mut e = History::new(model_threshold);
                e.push(end_ts, score, model_threshold);
                h.insert(sensor.clone(), e);
            }
        }
        self.threshold_for(sensor, model_threshold)
    }

    /// Whether `sensor` made a decision recently.
    pub fn deciding(&self, sensor: &str) -> bool {
        self.history.lock().contains_key(sensor)
    }

    /// Sets (or, with `None`, clears) `sensor`'s override; `sensor: None` sets the `"*"`
    /// override and clears every per-sensor one.
    pub fn set_threshold(&self, sensor: Option<&Arc<str>>, t: Option<f32>) {
        match sensor {
            Some(s) => match t {
                Some(t) => {
                    self.thresholds.write().insert(s.clone(), t);
                }
                None => {
                    self.thresholds.write().remove(s);
                }
            },
            None => {
                self.thresholds.write().clear();
                *self.all.write() = t;
            }
        }
    }

    /// Calibrates `label.sensor`'s threshold from its recorded decisions in the span: a
    /// `normal` span whose scores passed the threshold raises it just above the highest
    /// (≤ [`RAISE_CAP`] × the model's); an `anomaly` span whose scores all stayed below lowers
    /// it just below the lowest (≥ [`LOWER_FLOOR`] × the model's). `None` = no change.
    pub fn calibrate(&self, label: &LabelFb) -> Option<Calibration> {
        let (scores, model) = {
            let h = self.history.lock();
            let e = h.get(&label.sensor)?;
            let s: Vec<f32> = e.scores_in(label.from, label.to).collect();
            (s, e.model_threshold)
        };
        if scores.is_empty() {
            return None;
        }
        let current = self.threshold_for(&label.sensor, model);
        let to = if label.anomaly {
            let low = scores.iter().copied().fold(f32::INFINITY, f32::min);
            if low <= current {
                let t = (low * 0.99).max(model * LOWER_FLOOR);
                (t < current).then_some(t)
            } else {
                None
            }
        } else {
            let high = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            if high > current {
                let t = (high * 1.01 + f32::EPSILON).min(model * RAISE_CAP);
                (t > current).then_some(t)
            } else {
                None
            }
        }?;
        self.set_threshold(Some(&label.sensor), Some(to));
        let c = Calibration {
            from: current,
            to,
            decisions: scores.len(),
        };
        let mut f = self.figures.lock();
        f.calibrations += 1;
        if f.recent_calibrations.len() == RECENT {
            f.recent_calibrations.pop_front();
        }
        f.recent_calibrations.push_back(json!({
            "sensor": &*label.sensor, "label": if label.anomaly { "anomaly" } else { "normal" },
            "from": c.from, "to": c.to, "decisions": c.decisions,
        }));
        Some(c)
    }

    /// Forgets the history of sensors without a decision for `idle`, and idle limiter keys.
    pub fn cleanup(&self, idle: Duration) {
        self.history.lock().retain(|_, e| e.last.elapsed() < idle);
        self.limits.cleanup();
    }

    /// Counts a duplicate (acknowledged and ignored).
    pub fn duplicate(&self) {
        self.figures.lock().duplicate += 1;
    }

    /// Counts labels evicted from the store.
    pub fn labels_evicted(&self, n: u64) {
        self.figures.lock().labels_evicted += n;
    }

    /// Records the last model announcement and what became of it.
    pub fn model_announced(&self, v: Value) {
        self.figures.lock().model_announced = Some(v);
    }

    /// The `feedback` section of `/status`.
    pub fn status(&self) -> Value {
        let f = self.figures.lock();
        let th = self.thresholds.read();
        let mut overrides: Vec<(&Arc<str>, &f32)> = th.iter().collect();
        overrides.sort_by(|a, b| a.0.cmp(b.0));
        json!({
            "duplicate": f.duplicate,
            "labels_evicted": f.labels_evicted,
            "calibrations": f.calibrations,
            "recent_calibrations": f.recent_calibrations,
            "model_announced": f.model_announced,
            "threshold_all": *self.all.read(),
            "threshold_overrides": th.len(),
            "thresholds": overrides.iter().take(20).map(|(s, t)| json!({"sensor": &***s, "threshold": t})).collect::<Vec<_>>(),
            "limiter_keys": self.limits.keys(),
        })
    }

    /// Every override, for persisting (`"*"` for the all-sensor one).
    pub fn overrides(&self) -> Vec<(String, f32)> {
        let mut v: Vec<(String, f32)> = self
            .thresholds
            .read()
            .iter()
            .map(|(s, t)| (s.to_string(), *t))
            .collect();
        if let Some(t) = *self.all.read() {
            v.push(("*".into(), t));
        }
        v
    }
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
