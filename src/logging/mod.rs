//! Log setup: human-readable lines by default, JSON with `telemetry.log_format = "json"` or
//! `edgegw run --log-format json` (one object per line, the event's fields at the top level);
//! `RUST_LOG` overrides the configured level. Every line goes through the rate limit of
//! [`limit`]: a log statement writes at most `telemetry.log_burst` lines per
//! `telemetry.log_window`, the rest are counted and reported in one line.
//!
//! rumqttc is kept at `warn`; the embedded rumqttd is silent by default because it logs every
//! ordinary client disconnect as an error (its start failures are caught by our own probe in
//! `broker.rs`), and it opens an `error`-level span per routed packet; these defaults hold
//! under any `RUST_LOG` that does not name the crate, and `RUST_LOG=warn,rumqttd=info` brings
//! it back. Colours only on a terminal: a log redirected to a file holds plain text.

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

/// The filter directives: `RUST_LOG` when it is set (else the configured level), then the MQTT
/// crates' defaults for whichever of them it does not name. `RUST_LOG=warn` must not wake the
/// embedded broker: rumqttd opens an `error`-level span for every packet it routes, and a
/// subscriber that enables them spends a sixth of the gateway's CPU at full load building them
/// and formatting their fields.
fn directives(rust_log: Option<&str>, level: &str) -> String {
    let base = rust_log
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(level);
    let mut out = base.to_string();
    for (krate, default) in [("rumqttd", "off"), ("rumqttc", "warn")] {
        if !base.contains(krate) {
            out.push_str(&format!(",{krate}={default}"));
        }
    }
    out
}

fn filter(level: &str) -> EnvFilter {
    let rust_log = std::env::var("RUST_LOG").ok();
    EnvFilter::try_new(directives(rust_log.as_deref(), level))
        // A malformed RUST_LOG falls back to the configured level, as it always has.
        .unwrap_or_else(|_| EnvFilter::new(directives(None, level)))
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

#[cfg(test)]
mod filter_tests {
    use super::directives;

    #[test]
    fn rust_log_keeps_the_broker_quiet_unless_it_names_it() {
        assert_eq!(directives(None, "info"), "info,rumqttd=off,rumqttc=warn");
        assert_eq!(
            directives(Some("warn"), "info"),
            "warn,rumqttd=off,rumqttc=warn"
        );
        assert_eq!(
            directives(Some("debug,rumqttd=info"), "info"),
            "debug,rumqttd=info,rumqttc=warn"
        );
        assert_eq!(
            directives(Some("  "), "error"),
            "error,rumqttd=off,rumqttc=warn"
        );
    }
}
