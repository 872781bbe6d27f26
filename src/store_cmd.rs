//! `edgegw store inspect|export`: read a store offline (the gateway using it must be stopped;
//! a store in use is refused, never touched).

use crate::config;
use edgegw_actors::store::{Store, StoreConfig};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// `edgegw store …`.
#[derive(clap::Subcommand)]
pub enum StoreCmd {
    /// Backlog per class, bytes, evictions, dead letters, as JSON.
    Inspect(Where),
    /// Every held record (or, with --dead-letters, every dead letter; with --labels, every
    /// feedback label) as JSON lines.
    Export {
        #[command(flatten)]
        at: Where,
        /// Export dead letters instead of outbound records.
        #[arg(long)]
        dead_letters: bool,
        /// Export the feedback labels kept for retraining instead.
        #[arg(long, conflicts_with = "dead_letters")]
        labels: bool,
    },
}

/// Which store.
#[derive(clap::Args)]
pub struct Where {
    /// Store directory (default: `store.path` of --config, or of the built-in defaults).
    #[arg(long)]
    path: Option<PathBuf>,
    /// Config whose `store.path` to use.
    #[arg(long)]
    config: Option<PathBuf>,
}

fn store_config(w: &Where) -> Result<StoreConfig, ExitCode> {
    let cfg = config::load_for_command(w.config.as_deref())?;
    let mut sc = cfg.store;
    if let Some(p) = &w.path {
        sc.path = p.clone();
    }
    Ok(sc)
}

pub fn run(cmd: StoreCmd) -> ExitCode {
    let (at, export, dead, labels) = match &cmd {
        StoreCmd::Inspect(w) => (w, false, false, false),
        StoreCmd::Export {
            at,
            dead_letters,
            labels,
        } => (at, true, *dead_letters, *labels),
    };
    let sc = match store_config(at) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let store = match Store::open_existing(&sc) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {}: {e}", sc.path.display());
            return ExitCode::from(1);
        }
    };
    let mut out = std::io::stdout().lock();
    let r = if !export {
        let mut report = serde_json::to_value(store.report()).unwrap_or_default();
        report["dead_letters_recent"] = serde_json::Value::Array(store.dead.recent(10));
        writeln!(
            out,
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        )
    } else if labels {
        match edgegw_actors::feedback::export_labels(&store) {
            Ok(all) => all.iter().try_for_each(|l| writeln!(out, "{l}")),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    } else if dead {
        store
            .dead
            .recent(usize::MAX)
            .iter()
            .try_for_each(|d| writeln!(out, "{d}"))
    } else {
        match store.records() {
            Ok(records) => records.iter().try_for_each(|r| {
                let payload: serde_json::Value =
                    serde_json::from_slice(&r.payload).unwrap_or_else(|_| String::from_utf8_lossy(&r.payload).into());
                let line = serde_json::json!({"seq": r.seq, "class": r.class.as_str(), "topic": r.topic, "payload": payload});
                writeln!(out, "{line}")
            }),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(1);
            }
        }
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(1)
        }
    }
}
