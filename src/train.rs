//! `edgegw train` and `edgegw model …`: build the anomaly model from normal data and look at
//! model packages.
//!
//! Design constraints: training sees exactly the features the running gateway computes (the
//! same window, baseline and normalisation code, via `features_of_series`), so a package
//! trained here works on sensors it has never seen. The shipped package is reproduced by the
//! command in `docs/model.md`.

use crate::config;
use edgegw_actors::model;
use edgegw_actors::sensor::baseline::feature_names;
use edgegw_actors::sensor::offline::features_of_series;
use edgegw_actors::sim;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `edgegw train` options.
#[derive(clap::Args)]
pub struct TrainArgs {
    /// CSV files of normal data (a timestamp column, then value columns); without any, the
    /// built-in simulator generates the data.
    csv: Vec<PathBuf>,
    /// Simulated sensors (when no CSV is given).
    #[arg(long, default_value_t = 300)]
    sim_sensors: usize,
    /// Samples per simulated sensor.
    #[arg(long, default_value_t = 3000)]
    sim_samples: usize,
    /// Simulated sample rate, Hz.
    #[arg(long, default_value_t = 10.0)]
    sim_rate: f64,
    /// Config whose `[sensors]` section defines the windows (default: built-in).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Training epochs.
    #[arg(long, default_value_t = 60)]
    epochs: usize,
    /// Seed for data, shuffling and initialisation.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Output package directory.
    #[arg(long, default_value = "model-out")]
    out: PathBuf,
    /// Also write the int8-quantised variant here.
    #[arg(long)]
    int8: Option<PathBuf>,
    /// Model name in the manifest.
    #[arg(long, default_value = "edgegw-ae")]
    name: String,
    /// Model version in the manifest.
    #[arg(long, default_value = "1.0.0")]
    version: String,
}

/// `edgegw model …`.
#[derive(clap::Subcommand)]
pub enum ModelCmd {
    /// Write a new ed25519 signing key (mode 0600) and print its public key, hex, for
    /// `feedback.public_key`.
    Keygen {
        /// The key file to create (never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print a package's manifest (and check its weights' checksum).
    Inspect {
        /// Package directory.
        dir: PathBuf,
    },
    /// Write the int8-quantised variant of a package.
    Quantize {
        /// Source package.
        src: PathBuf,
        /// Destination directory.
        dst: PathBuf,
    },
}

pub fn train(a: TrainArgs) -> ExitCode {
    let cfg = match config::load_for_command(a.config.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let (series, source) = if a.csv.is_empty() {
        let s = sim::normal_series(a.sim_sensors, a.sim_samples, a.sim_rate, a.seed);
        let src = format!(
            "simulator: {} sensors x {} samples at {} Hz, seed {}",
            a.sim_sensors, a.sim_samples, a.sim_rate, a.seed
        );
        (s, src)
    } else {
        let mut all = Vec::new();
        for f in &a.csv {
            match read_csv(f) {
                Ok(mut s) => all.append(&mut s),
                Err(e) => {
                    eprintln!("error: {}: {e}", f.display());
                    return ExitCode::from(2);
                }
            }
        }
        let names: Vec<String> = a.csv.iter().map(|p| p.display().to_string()).collect();
        (all, format!("csv: {}", names.join(", ")))
    };
    let vectors: Vec<Vec<f32>> = series
        .iter()
        .flat_map(|s| features_of_series(&cfg.sensors, s))
        .collect();
    if vectors.len() < 100 {
        eprintln!(
            "error: only {} feature vectors after warm-up; give more (or longer) series",
            vectors.len()
        );
        return ExitCode::from(2);
    }
    eprintln!(
        "training on {} feature vectors from {} series ({source})",
        vectors.len(),
        series.len()
    );
    let names = feature_names(cfg.sensors.bands);
    let opts = model::TrainOptions {
        epochs: a.epochs,
        seed: a.seed,
        name: a.name,
        version: a.version,
        trained_on: format!(
            "{source}; window {} hop {} bands {}",
            cfg.sensors.window, cfg.sensors.hop, cfg.sensors.bands
        ),
        ..model::TrainOptions::default()
    };
    let started = std::time::Instant::now();
    let trained = match model::train(&vectors, &names, &opts) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: training failed: {e}");
            return ExitCode::from(1);
        }
    };
    if let Err(e) = trained.save(&a.out) {
        eprintln!("error: cannot write {}: {e}", a.out.display());
        return ExitCode::from(1);
    }
    let m = &trained.manifest;
    eprintln!(
        "wrote {} in {:.1} s: threshold {:.4} (p99.9 of validation scores x {}), final loss {:.5}",
        a.out.display(),
        started.elapsed().as_secs_f64(),
        m.threshold,
        m.calibration.margin,
        m.train.final_loss
    );
    if let Some(dst) = a.int8 {
        if let Err(e) = model::quantize_package(&a.out, &dst) {
            eprintln!("error: int8 variant: {e}");
            return ExitCode::from(1);
        }
        eprintln!("wrote int8 variant {}", dst.display());
    }
    ExitCode::SUCCESS
}

pub fn model(cmd: ModelCmd) -> ExitCode {
    let r = match cmd {
        ModelCmd::Keygen { out } => match edgegw_actors::feedback::sign::keygen(&out) {
            Ok(public) => {
                println!("{public}");
                Ok(())
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        },
        ModelCmd::Inspect { dir } => model::load_package(&dir).map(|p| {
            println!(
                "{}",
                serde_json::to_string_pretty(&p.manifest).unwrap_or_default()
            );
        }),
        ModelCmd::Quantize { src, dst } => model::quantize_package(&src, &dst).map(|m| {
            println!("wrote {} ({} quantisation)", dst.display(), m.quantization);
        }),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}

/// Reads a CSV (comma or semicolon separated; a timestamp column first, then value columns;
/// label columns skipped) into one series per value column.
fn read_csv(path: &Path) -> Result<Vec<Vec<(i64, f64)>>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().ok_or("empty file")?;
    let sep = if header.contains(';') { ';' } else { ',' };
    let cols: Vec<String> = header
        .split(sep)
        .map(|c| c.trim().trim_matches('"').to_ascii_lowercase())
        .collect();
    let labels = ["label", "anomaly", "changepoint", "is_anomaly"];
    let value_cols: Vec<usize> = (1..cols.len())
        .filter(|i| !labels.contains(&cols[*i].as_str()))
        .collect();
    let mut series = vec![Vec::new(); value_cols.len()];
    for (n, line) in lines.enumerate() {
        let f: Vec<&str> = line
            .split(sep)
            .map(|c| c.trim().trim_matches('"'))
            .collect();
        let ts = parse_ts(f.first().copied().unwrap_or(""))
            .ok_or_else(|| format!("line {}: bad timestamp", n + 2))?;
        for (k, &c) in value_cols.iter().enumerate() {
            if let Some(v) = f
                .get(c)
                .and_then(|x| x.parse::<f64>().ok())
                .filter(|v| v.is_finite())
            {
                series[k].push((ts, v));
            }
        }
    }
    Ok(series)
}

/// Epoch seconds or ms, or an RFC 3339-like date ("2014-04-01 00:00:00", zone-less = UTC).
fn parse_ts(s: &str) -> Option<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(if n < 100_000_000_000 { n * 1000 } else { n });
    }
    let t = humantime::parse_rfc3339_weak(s).ok()?;
    t.duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_millis() as i64)
}
