//! The replay loop: merged rows → paced, encoded publishes.
//!
//! Design constraints:
//! - Pacing is by the first timestamp: the sample at `ts` is published at
//!   `start + (ts − t0) / speed`, never earlier; with no speed (`--speed max`) nothing waits.
//!   Falling behind (a slow broker) is not caught up by skipping: late samples go at once.
//! - Batching (`batch`, `binary`, `binary64`) groups up to `batch` consecutive samples of one sensor. A
//!   sample never waits past its due time for a batch to fill: before the loop sleeps until
//!   the next row is due, every pending batch is flushed. So at `--speed max` batches are full,
//!   and when pacing is slower than the data, a batch holds the samples that fell due together.
//! - One encode buffer for the whole replay; per message only rumqttc's own copy is allocated.

use super::csv::{ReadError, Skips};
use super::link::{Link, LinkError};
use super::merge::Merge;
use edgegw_actors::ingest::binary::{self, Width};
use edgegw_actors::ingest::encode;
use edgegw_actors::sensor::window::Sample;
use std::time::{Duration, Instant};

/// Longest pacing delay computed, seconds (keeps the arithmetic finite for absurd speeds).
const MAX_DELAY_S: f64 = 1e9;

/// The payload format of `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One `{"ts": ms, "v": x}` message per sample.
    Json,
    /// `{"samples": [[ts, v], …]}`, up to `--batch` samples of one sensor per message.
    Batch,
    /// The compact binary batch (docs/wire.md) with f32 values (~7 significant digits; a batch
    /// holding a value beyond the f32 range is sent with f64 values).
    Binary,
    /// The binary batch with f64 values: exact, twice the value bytes.
    Binary64,
}

/// How to play.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    /// Event time per wall time; `None`: as fast as possible.
    pub speed: Option<f64>,
    /// Payload format.
    pub format: Format,
    /// Most samples per message (batch formats).
    pub batch: usize,
}

/// One sensor being replayed.
pub struct Sensor {
    /// Its name (the topic's `{sensor}`).
    pub name: String,
    /// Where its samples go.
    pub topic: String,
    /// Samples waiting for their batch to be sent.
    pending: Vec<Sample>,
    /// Samples published so far.
    pub published: u64,
}

impl Sensor {
    /// A sensor publishing on `topic`.
    pub fn new(name: String, topic: String) -> Sensor {
        Sensor {
            name,
            topic,
            pending: Vec::new(),
            published: 0,
        }
    }
}

/// What the loop has published.
#[derive(Debug, Default, Clone, Copy)]
pub struct Totals {
    /// Samples published.
    pub samples: u64,
    /// MQTT messages published.
    pub messages: u64,
}

/// Why the loop stopped early.
#[derive(Debug, thiserror::Error)]
pub enum PlayError {
    /// A file could not be read.
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The broker connection failed.
    #[error(transparent)]
    Link(#[from] LinkError),
}

/// Publishes every row of `merge` to `sensors` over `link` as `plan` says.
pub async fn play(
    merge: &mut Merge,
    skips: &mut Skips,
    sensors: &mut [Sensor],
    link: &Link,
    plan: Plan,
) -> Result<Totals, PlayError> {
    let mut out = Out {
        link,
        buf: Vec::with_capacity(4096),
        totals: Totals::default(),
        format: plan.format,
    };
    let start = Instant::now();
    let t0 = merge.peek_ts().unwrap_or(0);
    while let Some(row) = merge.next_row(skips)? {
        if let Some(speed) = plan.speed {
            let offset_s =
                (row.ts.saturating_sub(t0).max(0) as f64 / 1000.0 / speed).min(MAX_DELAY_S);
            let due = start + Duration::from_secs_f64(offset_s);
            if due > Instant::now() {
                for s in sensors.iter_mut() {
                    out.flush(s).await?;
                }
                tokio::time::sleep_until(due.into()).await;
            }
        }
        for &(i, v) in row.values {
            let s = &mut sensors[i];
            let sample = Sample { ts: row.ts, v };
            match plan.format {
                Format::Json => out.single(s, sample).await?,
                Format::Batch | Format::Binary | Format::Binary64 => {
                    s.pending.push(sample);
                    if s.pending.len() >= plan.batch {
                        out.flush(s).await?;
                    }
                }
            }
        }
    }
    for s in sensors.iter_mut() {
        out.flush(s).await?;
    }
    Ok(out.totals)
}

/// Encoding and publishing, with one reused buffer.
struct Out<'l> {
    link: &'l Link,
    buf: Vec<u8>,
    totals: Totals,
    format: Format,
}

impl Out<'_> {
    async fn single(&mut self, s: &mut Sensor, sample: Sample) -> Result<(), LinkError> {
        self.buf.clear();
        encode::json_single(sample, &mut self.buf);
        self.send(s, 1).await
    }

    /// Sends `s`'s pending batch, if any.
    async fn flush(&mut self, s: &mut Sensor) -> Result<(), LinkError> {
        if s.pending.is_empty() {
            return Ok(());
        }
        self.buf.clear();
        match self.format {
            Format::Json | Format::Batch => encode::json_batch(&s.pending, &mut self.buf),
            Format::Binary if s.pending.iter().all(|x| fits_f32(x.v)) => {
                binary::encode(&s.pending, &mut self.buf);
            }
            Format::Binary | Format::Binary64 => {
                binary::encode_with(&s.pending, Width::F64, &mut self.buf);
            }
        }
        let n = s.pending.len() as u64;
        s.pending.clear();
        self.send(s, n).await
    }

    async fn send(&mut self, s: &mut Sensor, samples: u64) -> Result<(), LinkError> {
        self.link.publish(&s.topic, &self.buf).await?;
        s.published += samples;
        self.totals.samples += samples;
        self.totals.messages += 1;
        Ok(())
    }
}

/// Whether `v` stays finite as an f32.
fn fits_f32(v: f64) -> bool {
    v.abs() <= f64::from(f32::MAX)
}
