//! `edgegw`: the gateway process. Parses the command line, assembles the config, sets up
//! logging and trace export, and runs one of the commands of `SPEC.md`.
//!
//! Trace export (`run` only) is started before the async runtime and shut down after it has
//! finished, on this thread, with a timeout: a hung exporter can delay the exit by at most
//! [`telemetry::SHUTDOWN_TIMEOUT`], never block a runtime worker.
//!
//! Exit codes: 0 clean; 2 bad usage or bad config (the message names the problem); 1 fatal
//! runtime error.

mod config;
mod demo;
mod eval;
mod feedback_cmd;
mod logging;
mod replay;
mod store_cmd;
mod train;

use clap::{Parser, Subcommand, ValueEnum};
use edgegw_actors::config::LogFormat;
use edgegw_actors::telemetry::{self, Telemetry};
use edgegw_actors::Gateway;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "edgegw",
    version,
    about = "Edge gateway for real-time IoT analytics."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the gateway (built-in defaults without --config).
    Run {
        /// Config file; keys not in it keep their defaults.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Log line format; overrides `telemetry.log_format`.
        #[arg(long, value_enum)]
        log_format: Option<LogFormatArg>,
    },
    /// Embedded broker + simulated fleet + gateway, with a live terminal view.
    Demo(demo::DemoArgs),
    /// Publish recorded CSV time series (NAB, SKAB, …) to sensor topics in timestamp order.
    Replay(replay::ReplayArgs),
    /// Run labelled CSV series through the detection path of `run` and score its alerts
    /// with NAB's method.
    Eval(eval::EvalArgs),
    /// Validate a config file: exit 0, or exit 2 naming the key and the reason.
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
    /// Train the anomaly model on normal data and write a model package.
    Train(train::TrainArgs),
    /// Model packages.
    #[command(subcommand)]
    Model(train::ModelCmd),
    /// Read the local store offline.
    #[command(subcommand)]
    Store(store_cmd::StoreCmd),
    /// Feedback commands for the cloud side.
    #[command(subcommand)]
    Feedback(feedback_cmd::FeedbackCmd),
}

/// `--log-format`.
#[derive(Clone, Copy, ValueEnum)]
enum LogFormatArg {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl From<LogFormatArg> for LogFormat {
    fn from(f: LogFormatArg) -> Self {
        match f {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        }
    }
}

fn main() -> ExitCode {
    // Before any thread exists: it sets an environment variable (see the function).
    edgegw_actors::model::pin_kernel_threads();
    let code = command(Cli::parse().cmd);
    // The counts of lines still suppressed, or they would be lost with the process.
    logging::flush();
    code
}

fn command(cmd: Cmd) -> ExitCode {
    match cmd {
        Cmd::CheckConfig { file } => match config::load(Some(&file), std::env::vars()) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => config_error(&e),
        },
        Cmd::Run { config, log_format } => {
            let mut cfg = match config::load(config.as_deref(), std::env::vars()) {
                Ok(c) => c,
                Err(e) => return config_error(&e),
            };
            if let Some(f) = log_format {
                cfg.telemetry.log_format = f.into();
            }
            logging::init(&cfg.telemetry);
            // A broken exporter never stops the gateway: it runs untraced, said in the log.
            let tel = Telemetry::start(&cfg.telemetry, &cfg.gateway.id).unwrap_or_else(|e| {
                tracing::error!(message = "Trace export unavailable; running without it.", error = %e);
                None
            });
            let code = runtime().block_on(run(cfg, tel.as_ref()));
            if let Some(t) = tel {
                t.shutdown(telemetry::SHUTDOWN_TIMEOUT);
            }
            code
        }
        Cmd::Demo(args) => {
            logging::init_quiet();
            runtime().block_on(demo::run(args))
        }
        Cmd::Replay(args) => {
            logging::init_quiet();
            runtime().block_on(replay::run(args))
        }
        Cmd::Train(args) => {
            logging::init_quiet();
            train::train(args)
        }
        Cmd::Eval(args) => {
            logging::init_quiet();
            eval::eval(args)
        }
        Cmd::Model(cmd) => train::model(cmd),
        Cmd::Store(cmd) => store_cmd::run(cmd),
        Cmd::Feedback(cmd) => feedback_cmd::run(cmd),
    }
}

fn config_error(e: &edgegw_actors::ConfigError) -> ExitCode {
    eprintln!("error: invalid config: {e}");
    ExitCode::from(2)
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            std::process::exit(1);
        }
    }
}

async fn run(cfg: edgegw_actors::GatewayConfig, tel: Option<&Telemetry>) -> ExitCode {
    let gw = match Gateway::start_traced(cfg, tel.map(Telemetry::traces)).await {
        Ok(g) => g,
        Err(edgegw_actors::StartError::Config(e)) => return config_error(&e),
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    if let Some(t) = tel {
        t.export_metrics(gw.ctx.metrics.clone());
    }
    tracing::info!(message = "Gateway running.", gateway = %gw.ctx.cfg.gateway.id, http = %gw.ctx.cfg.http.bind);
    wait_for_signal().await;
    tracing::info!(message = "Shutting down: stopping ingest, draining.");
    gw.shutdown(Duration::from_secs(10)).await;
    tracing::info!(message = "Stopped.");
    ExitCode::SUCCESS
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
