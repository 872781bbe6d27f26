//! Log setup: human-readable lines by default, JSON with `telemetry.log_format = "json"` or
//! `edgegw run --log-format json` (one object per line, the event's fields at the top level);
//! `RUST_LOG` overrides the configured level. Every line goes through the rate limit of
//! [`limit`]: a log statement writes at most `telemetry.log_burst` lines per
//! `telemetry.log_window`, the rest are counted and reported in one line.
//!
//! rumqttc is kept at `warn`; the embedded rumqttd is silent by default because it logs every
//! ordinary client disconnect as an error (its start failures are caught by our own probe in
//! `broker.rs`); `RUST_LOG=rumqttd=info` brings it back. Colours only on a terminal: a log
//! redirected to a file holds plain text.

mod limit;

pub use limit::{flush, Limits};

use edgegw_actors::config::{LogFormat, TelemetryConfig};
use limit::{Clock, Monotonic, RateLimited};
use std::io::IsTerminal;
use tracing::Subscriber;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

fn filter(level: &str) -> EnvFilter {
    EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("{level},rumqttd=off,rumqttc=warn")))
}

/// Logging for the long-running gateway, to stdout.
pub fn init(cfg: &TelemetryConfig) {
    let limits = Limits {
        burst: cfg.log_burst,
        window: cfg.log_window.get(),
    };
    let ansi = std::io::stdout().is_terminal();
    let clock = Monotonic::default();
    let logs = subscriber(
        filter(&cfg.log_level),
        cfg.log_format,
        limits,
        ansi,
        std::io::stdout,
        clock,
    );
    let _ = logs.try_init();
}

/// Logging for interactive commands (demo, train): warnings only, to stderr, unless
/// `RUST_LOG` says otherwise; rate-limited with the default limits.
pub fn init_quiet() {
    let ansi = std::io::stderr().is_terminal();
    let clock = Monotonic::default();
    let logs = subscriber(
        filter("warn"),
        LogFormat::Text,
        Limits::DEFAULT,
        ansi,
        std::io::stderr,
        clock,
    );
    let _ = logs.try_init();
}

type Logs = Box<dyn Subscriber + Send + Sync>;

/// The whole pipeline: the level filter, the rate limit, the formatter, into `writer` (the
/// tests build exactly this with their own writer and clock).
fn subscriber<W, C>(
    filter: EnvFilter,
    format: LogFormat,
    limits: Limits,
    ansi: bool,
    writer: W,
    clock: C,
) -> Logs
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
    C: Clock,
{
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_ansi(ansi);
    let base = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Json => {
            let fmt = fmt.json().flatten_event(true);
            Box::new(base.with(RateLimited::with_clock(fmt, limits, clock)))
        }
        LogFormat::Text => Box::new(base.with(RateLimited::with_clock(fmt, limits, clock))),
    }
}
