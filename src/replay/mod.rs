//! `edgegw replay`: publishes recorded CSV time series (NAB, SKAB and alike) to sensor topics
//! in global timestamp order, paced at a multiple of real time, so a gateway can be fed real
//! data sets.
//!
//! Design constraints:
//! - Every input file is opened and its header checked before the broker is contacted: a
//!   missing file or a file without a timestamp column exits 2 naming it, and nothing was sent.
//! - Streaming from end to end ([`csv`] reads a row at a time, [`merge`] holds one row per
//!   file), so the size of the files does not matter.
//! - Exit 0 only when every sample was handed to the broker (acknowledged at QoS 1); rows
//!   that could not be parsed are skipped, counted and reported with `file:line`, never fatal.
//!
//! The rules for columns, sensor names and timestamps are in [`columns`] and [`ts`], and for
//! users in `docs/operations.md` ("Replaying recorded data").

pub(crate) mod columns;
pub(crate) mod csv;
mod lines;
mod link;
mod merge;
mod play;
pub(crate) mod ts;

use self::csv::{OpenError, Skips, Source};
use link::Link;
use play::{Format, Plan, Sensor};
use rumqttc::QoS;
use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// `edgegw replay` options.
#[derive(clap::Args)]
#[command(after_help = "\
Each value column becomes one sensor named PREFIX + the column name (lower-case, \
non-alphanumerics as '_'); in a file with a single value column (NAB's timestamp,value) the \
sensor is named PREFIX + the file stem instead. Label columns (label, anomaly, changepoint, \
is_anomaly) are not published. The timestamp column is named timestamp, datetime, date_time, \
time, ts, date or time_stamp; it holds dates like 2014-04-10 00:00:00 or ISO 8601 \
(2014-04-10T00:00:00.123+02:00), UTC when no zone is given, or epoch numbers (below 10^11: \
seconds, else ms). Comma, semicolon or tab separated.

Example: edgegw replay --speed max data/realTraffic/*.csv")]
pub struct ReplayArgs {
    /// CSV files to replay, merged in timestamp order.
    #[arg(required = true, value_name = "FILE.csv")]
    files: Vec<PathBuf>,
    /// Broker to publish to.
    #[arg(long, value_name = "URL", default_value = "mqtt://127.0.0.1:1883")]
    broker: String,
    /// Event time per wall time: 1 = real time, 60 = a minute of data per second; `max` = no
    /// pacing, as fast as the broker takes it.
    #[arg(long, value_name = "X", default_value = "1", value_parser = parse_speed)]
    speed: Speed,
    /// Put in front of every sensor name (part of one topic level: no '/', '+', '#').
    #[arg(long, value_name = "P", default_value = "")]
    sensor_prefix: String,
    /// Topic of each sensor; `{sensor}` is replaced by the sensor name.
    #[arg(long, value_name = "TEMPLATE", default_value = "sensors/{sensor}/data")]
    topic: String,
    /// Payload format: one JSON message per sample, JSON batches, or binary batches
    /// (docs/wire.md).
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
    /// Most samples of one sensor per message with the batch formats (JSON ≈ 35 bytes a
    /// sample, binary 5–10: keep a batch under the gateway's `ingest.max_payload_bytes`).
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u16).range(1..=10_000))]
    batch: u16,
    /// MQTT QoS of the publishes; at 1 the replay ends only once the broker acknowledged all.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(0..=1))]
    qos: u8,
    /// How long to keep trying to reach the broker, and to wait for its acknowledgements at
    /// the end.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    connect_timeout: Duration,
}

/// `--speed`: a factor, or as fast as possible.
#[derive(Debug, Clone, Copy)]
struct Speed(Option<f64>);

fn parse_speed(s: &str) -> Result<Speed, String> {
    if s.eq_ignore_ascii_case("max") {
        return Ok(Speed(None));
    }
    match s.parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(Speed(Some(x))),
        _ => Err(format!("{s:?} is neither a number > 0 nor `max`")),
    }
}

/// Why a replay failed, and its exit code.
#[derive(Debug, thiserror::Error)]
enum ReplayError {
    /// An input file cannot be replayed (exit 2).
    #[error(transparent)]
    Input(#[from] OpenError),
    /// Inconsistent options (exit 2).
    #[error("{0}")]
    Usage(String),
    /// Reading or publishing failed midway (exit 1).
    #[error(transparent)]
    Play(#[from] play::PlayError),
    /// The broker (exit 1).
    #[error(transparent)]
    Link(#[from] link::LinkError),
}

/// Runs `edgegw replay`.
pub async fn run(args: ReplayArgs) -> ExitCode {
    match replay(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(match e {
                ReplayError::Input(_) | ReplayError::Usage(_) => 2,
                ReplayError::Play(_) | ReplayError::Link(_) => 1,
            })
        }
    }
}

async fn replay(a: ReplayArgs) -> Result<(), ReplayError> {
    let broker = edgegw_actors::mqtt::parse_url(&a.broker)
        .map_err(|e| ReplayError::Usage(format!("--broker: {e}")))?;
    if broker.tls {
        return Err(ReplayError::Usage(
            "--broker: replay publishes to a local broker in the clear (mqtt://host:port)".into(),
        ));
    }
    columns::check_prefix(&a.sensor_prefix).map_err(ReplayError::Usage)?;
    if !a.topic.contains("{sensor}") || a.topic.contains(['+', '#']) {
        return Err(ReplayError::Usage(format!(
            "--topic {:?} must contain {{sensor}} and no wildcard",
            a.topic
        )));
    }
    let (sources, mut sensors) = open_all(&a)?;
    let files = sources.len();
    let mut skips = Skips::default();
    let mut merge = merge::Merge::new(sources, &mut skips).map_err(play::PlayError::from)?;
    let names: Vec<&str> = sensors.iter().take(5).map(|s| s.name.as_str()).collect();
    let more = if sensors.len() > 5 { ", …" } else { "" };
    eprintln!(
        "replay: {files} file(s), {} sensor(s) ({}{more}) → {}, speed {}",
        sensors.len(),
        names.join(", "),
        a.broker,
        a.speed.0.map_or("max".into(), |x| format!("{x}×")),
    );
    let qos = if a.qos == 0 {
        QoS::AtMostOnce
    } else {
        QoS::AtLeastOnce
    };
    let link = Link::connect(&broker, &a.broker, qos, a.connect_timeout).await?;
    let started = Instant::now();
    let plan = Plan {
        speed: a.speed.0,
        format: a.format,
        batch: usize::from(a.batch),
    };
    let result = play::play(&mut merge, &mut skips, &mut sensors, &link, plan).await;
    let totals = match result {
        Ok(t) => t,
        Err(e) => {
            report_skips(&skips);
            return Err(e.into());
        }
    };
    link.finish(totals.messages, a.connect_timeout).await?;
    let wall = started.elapsed().as_secs_f64();
    report_skips(&skips);
    println!(
        "replay: {files} file(s), {} sensor(s), {} samples published in {} messages (QoS {}{}), \
         {} rows skipped, {} non-finite values skipped, {wall:.2} s, {:.0} samples/s",
        sensors.iter().filter(|s| s.published > 0).count(),
        totals.samples,
        totals.messages,
        a.qos,
        if a.qos == 1 { ", all acknowledged" } else { "" },
        skips.rows,
        skips.non_finite,
        totals.samples as f64 / wall.max(1e-9),
    );
    Ok(())
}

/// Opens every file and names every sensor; the same sensor name in two files is one sensor.
fn open_all(a: &ReplayArgs) -> Result<(Vec<Source>, Vec<Sensor>), ReplayError> {
    let mut sensors: Vec<Sensor> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut sources = Vec::with_capacity(a.files.len());
    for path in &a.files {
        let mut src = Source::open(path, &a.sensor_prefix)?;
        let ids = src
            .layout
            .values
            .iter()
            .map(|(_, name)| {
                *index.entry(name.clone()).or_insert_with(|| {
                    let topic = a.topic.replace("{sensor}", name);
                    sensors.push(Sensor::new(name.clone(), topic));
                    sensors.len() - 1
                })
            })
            .collect();
        src.set_sensors(ids);
        sources.push(src);
    }
    Ok((sources, sensors))
}

/// Prints the skipped rows (the first few with `file:line`) to stderr.
fn report_skips(skips: &Skips) {
    for e in &skips.examples {
        eprintln!("skipped {e}");
    }
    let unlisted = skips.rows.saturating_sub(skips.examples.len() as u64);
    if unlisted > 0 {
        eprintln!("skipped {unlisted} more rows");
    }
    if skips.backwards > 0 {
        eprintln!(
            "warning: {} rows went back in time within their file (published where they came; \
             the gateway may reject them as late)",
            skips.backwards
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speed_is_a_positive_factor_or_max() {
        assert_eq!(parse_speed("max").unwrap().0, None);
        assert_eq!(parse_speed("MAX").unwrap().0, None);
        assert_eq!(parse_speed("2").unwrap().0, Some(2.0));
        assert_eq!(parse_speed("0.5").unwrap().0, Some(0.5));
        for bad in ["0", "-1", "inf", "NaN", "fast", ""] {
            assert!(parse_speed(bad).is_err(), "{bad:?}");
        }
    }
}
