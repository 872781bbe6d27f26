//! `edgegw feedback …`: the cloud side's tools for feedback commands. `sign-threshold` prints
//! a `threshold` command signed with the key of `edgegw model keygen`, ready to publish on
//! `{prefix}/{gateway}/feedback/threshold` (docs/security.md).

use clap::Subcommand;
use edgegw_actors::feedback::sign;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub enum FeedbackCmd {
    /// Print a signed `threshold` command (JSON, one line).
    SignThreshold {
        /// The signing key (from `edgegw model keygen`).
        #[arg(long)]
        key: PathBuf,
        /// The sensor, or `*` for every sensor.
        #[arg(long)]
        sensor: String,
        /// The new threshold.
        #[arg(long)]
        threshold: f64,
        /// The command's id (default: a random one); a repeated id is applied once.
        #[arg(long)]
        id: Option<String>,
        /// Its time, ms since the epoch (default: now); the gateway refuses it once
        /// `feedback.max_command_age` has passed.
        #[arg(long)]
        ts: Option<i64>,
    },
}

pub fn run(cmd: FeedbackCmd) -> ExitCode {
    match cmd {
        FeedbackCmd::SignThreshold {
            key,
            sensor,
            threshold,
            id,
            ts,
        } => {
            let key = match sign::read_key(&key) {
                Ok(k) => k,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::from(1);
                }
            };
            if !(threshold.is_finite() && threshold > 0.0) {
                eprintln!("error: --threshold must be a finite number above 0");
                return ExitCode::from(2);
            }
            let id = id.unwrap_or_else(|| format!("thr-{:016x}", rand::random::<u64>()));
            let ts = ts.unwrap_or_else(edgegw_actors::status::now_ms);
            println!(
                "{}",
                sign::threshold_command(&key, &id, &sensor, threshold, ts)
            );
            ExitCode::SUCCESS
        }
    }
}
