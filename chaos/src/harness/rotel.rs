//! rotel, a real OTLP collector, for the trace tests and the telemetry chaos scenario: started
//! on loopback ports with its debug log of every received span on stdout, parsed back into
//! spans here (or only counted, for long runs). Killed when its guard drops. The binary is
//! found, or installed, by [`agent::agent`].

mod agent;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One span as the collector printed it.
#[derive(Debug, Clone, Default)]
pub struct SpanRec {
    pub trace_id: String,
    /// Empty for a root span.
    pub parent_id: String,
    pub span_id: String,
    pub name: String,
    /// Attribute → printed value, e.g. `Str(s1)`, `Double(2.5)`, `Bool(true)`, `Int(3)`.
    pub attrs: BTreeMap<String, String>,
}

/// A running collector (killed on drop).
pub struct Rotel {
    pub port: u16,
    child: Option<Child>,
    out: Arc<Mutex<String>>,
    received: Arc<AtomicU64>,
    _dir: tempfile::TempDir,
}

impl Rotel {
    /// A collector on a free port that keeps the text of every span it prints ([`spans`]).
    ///
    /// [`spans`]: Self::spans
    pub fn start() -> Self {
        Self::spawn(super::free_port(), true)
    }

    /// A collector on `port` that only counts the spans it receives ([`received`]): for long
    /// runs, and to bring a killed collector back on the port the gateway was given.
    ///
    /// [`received`]: Self::received
    pub fn counting_on(port: u16) -> Self {
        Self::spawn(port, false)
    }

    fn spawn(port: u16, keep_text: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let http = super::free_port();
        let agent = agent::agent();
        let mut child = Command::new(&agent)
            .args(["start", "--otlp-grpc-endpoint"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--otlp-http-endpoint")
            .arg(format!("127.0.0.1:{http}"))
            .args([
                "--exporter",
                "blackhole",
                "--debug-log",
                "traces",
                "--debug-log",
                "metrics",
                "--debug-log-verbosity",
                "detailed",
            ])
            .arg("--pid-file")
            .arg(dir.path().join("rotel.pid"))
            .arg("--log-file")
            .arg(dir.path().join("rotel.log"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", agent.display()));
        let out = Arc::new(Mutex::new(String::new()));
        let received = Arc::new(AtomicU64::new(0));
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
            child
                .stderr
                .take()
                .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        ]
        .into_iter()
        .flatten()
        {
            let (o, n) = (out.clone(), received.clone());
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    if line.trim_start().starts_with("Span #") {
                        n.fetch_add(1, Ordering::Relaxed);
                    }
                    if keep_text {
                        let mut o = o.lock().expect("rotel output lock");
                        o.push_str(&line);
                        o.push('\n');
                    }
                }
            });
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "rotel did not listen on {port}:\n{}",
                out.lock().expect("rotel output lock")
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Rotel {
            port,
            child: Some(child),
            out,
            received,
            _dir: dir,
        }
    }

    /// The gateway's `telemetry.otlp_endpoint` for this collector.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything the collector printed so far.
    pub fn output(&self) -> String {
        self.out.lock().expect("rotel output lock").clone()
    }

    /// Spans received so far (every `Span #` block of the debug log).
    pub fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// The metrics received so far (see [`parse_metrics`]).
    pub fn metrics(&self) -> BTreeMap<String, f64> {
        parse_metrics(&self.output())
    }

    /// The spans received so far.
    pub fn spans(&self) -> Vec<SpanRec> {
        parse(&self.output())
    }

    /// SIGKILL: the collector vanishes mid-run.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Rotel {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The metrics of the last export rotel printed that carried each of them: name → the sum
/// of its data points' values (`Value:` of sums and gauges, `Count:` of histograms).
pub fn parse_metrics(text: &str) -> BTreeMap<String, f64> {
    let mut last: BTreeMap<String, f64> = BTreeMap::new();
    let mut export: BTreeMap<String, f64> = BTreeMap::new();
    let mut name: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("ResourceMetrics #") || t.starts_with("ResourceSpans #") {
            last.append(&mut export);
            name = None;
            continue;
        }
        if t.starts_with("Span #") {
            name = None;
            continue;
        }
        if let Some(n) = t.strip_prefix("-> Name: ") {
            export.entry(n.to_string()).or_default();
            name = Some(n.to_string());
            continue;
        }
        let value = t
            .strip_prefix("Value: ")
            .or_else(|| t.strip_prefix("Count: "));
        if let (Some(n), Some(v)) = (&name, value.and_then(|v| v.parse::<f64>().ok())) {
            *export.entry(n.clone()).or_default() += v;
        }
    }
    last.append(&mut export);
    last
}

/// Parses rotel's detailed debug log (`Span #n` blocks: `Trace ID : …`, `Parent ID : …`,
/// `ID : …`, `Name : …`, then `Attributes:` lines `-> key: Type(value)`).
pub fn parse(text: &str) -> Vec<SpanRec> {
    let mut spans = Vec::new();
    let mut cur: Option<SpanRec> = None;
    let mut in_attrs = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("Span #") {
            spans.extend(cur.take());
            cur = Some(SpanRec::default());
            in_attrs = false;
            continue;
        }
        if t.starts_with("ResourceSpans #")
            || t.starts_with("ScopeSpans #")
            || t.starts_with("ResourceMetrics #")
        {
            spans.extend(cur.take());
            in_attrs = false;
            continue;
        }
        let Some(s) = cur.as_mut() else { continue };
        if t == "Attributes:" {
            in_attrs = true;
            continue;
        }
        if let Some(kv) = t.strip_prefix("-> ") {
            if in_attrs {
                if let Some((k, v)) = kv.split_once(": ") {
                    s.attrs.insert(k.to_string(), v.to_string());
                }
            }
            continue;
        }
        if let Some((k, v)) = t.split_once(':') {
            let v = v.trim().to_string();
            match k.trim() {
                "Trace ID" => s.trace_id = v,
                "Parent ID" => s.parent_id = v,
                "ID" => s.span_id = v,
                "Name" => s.name = v,
                _ => {}
            }
        }
    }
    spans.extend(cur);
    spans
}
