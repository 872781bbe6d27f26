//! Log setup: human-readable lines by default, JSON with `telemetry.log_format = "json"`;
//! `RUST_LOG` overrides the configured level. rumqttc is kept at `warn`; the embedded rumqttd is
//! silent by default because it logs every ordinary client disconnect as an error (its start
//! failures are caught by our own probe in `broker.rs`); `RUST_LOG=rumqttd=info` brings it back.

use edgegw_actors::config::{LogFormat, TelemetryConfig};
use tracing_subscriber::EnvFilter;

fn filter(level: &str) -> EnvFilter {
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},rumqttd=off,rumqttc=warn")))
}

/// Logging for the long-running gateway.
pub fn init(cfg: &TelemetryConfig) {
    let builder = tracing_subscriber::fmt().with_env_filter(filter(&cfg.log_level));
    let _ = match cfg.log_format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

/// Logging for interactive commands (demo, train): warnings only, to stderr, unless
/// `RUST_LOG` says otherwise.
pub fn init_quiet() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter("warn"))
        .with_writer(std::io::stderr)
        .try_init();
}
