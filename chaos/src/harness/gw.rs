//! The gateway under test: the real `edgegw` binary started on a generated config, with its
//! HTTP surface (`/status`, `/metrics`, `/faults`) read over plain HTTP/1.0.
//!
//! Design constraints: the binary is resolved once per process — an explicit path
//! ([`set_gateway_bin`], or env `EDGEGW_BIN`), else one `cargo build --release` of the
//! fault-injection gateway from the workspace root, whose artifact path cargo reports. Peak
//! memory is read from the kernel (`VmHWM`), never estimated.

use super::{free_port, poll_until, Proc};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

static GATEWAY_BIN: OnceLock<PathBuf> = OnceLock::new();

/// Uses `path` as the gateway binary for this process (the root package's tests pass their
/// own `CARGO_BIN_EXE_edgegw`). The first call wins; later calls with another path are ignored.
pub fn set_gateway_bin(path: impl Into<PathBuf>) {
    let _ = GATEWAY_BIN.set(path.into());
}

/// The `edgegw` binary to test: [`set_gateway_bin`]'s path, else env `EDGEGW_BIN` (a relative
/// path is taken from the workspace root, where the user typed it, not from the test's own
/// working directory), else the release build with `--features fault-injection` (built on
/// first use).
pub fn gateway_bin() -> PathBuf {
    GATEWAY_BIN
        .get_or_init(|| match std::env::var_os("EDGEGW_BIN") {
            Some(p) if !p.is_empty() => Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p),
            _ => build_gateway(),
        })
        .clone()
}

/// `cargo build --release -p edgegw --features fault-injection --bin edgegw`, from the
/// workspace root; returns the executable cargo reports for the `edgegw` bin.
fn build_gateway() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let cargo = option_env!("CARGO").unwrap_or("cargo");
    let mut build = Command::new(cargo);
    // The variables cargo set for this test (`CARGO_MANIFEST_DIR`, `CARGO_PKG_*`) would leak
    // into the nested build, where build scripts that watch them (ring's) see a change, rerun,
    // and rebuild everything above them; the next outer build then rebuilds it all back.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("CARGO_MANIFEST_") || k.starts_with("CARGO_PKG_") {
            build.env_remove(k.as_ref());
        }
    }
    let out = build
        .current_dir(&root)
        .args([
            "build",
            "--release",
            "-p",
            "edgegw",
            "--features",
            "fault-injection",
            "--bin",
            "edgegw",
            "--message-format=json",
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("cannot run cargo to build the gateway (or set EDGEGW_BIN)");
    assert!(out.status.success(), "building the gateway failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "edgegw")
        .filter(|v| v["target"]["kind"].to_string().contains("\"bin\""))
        .find_map(|v| v["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported no edgegw executable")
}

/// A command running `bin` with the harness's own `EDGEGW_*` variables (`EDGEGW_BIN`,
/// `EDGEGW_CHAOS_*`…) removed: the gateway reads every `EDGEGW_` variable as a config
/// override and refuses one that is not `EDGEGW_<SECTION>__<KEY>`.
///
/// `RUST_BACKTRACE` is removed too, unless `EDGEGW_CHAOS_BACKTRACE` is set: the scenarios
/// make stages panic on purpose, and with backtraces on, the first panic makes std symbolize
/// one, which parses the binary's debug info (the release profile keeps line tables) and keeps
/// it for the life of the process — about 200 MiB of RSS that the memory bound would count
/// against the gateway.
pub fn gateway_command(bin: &Path) -> Command {
    let mut c = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k.starts_with("EDGEGW_") && !k.contains("__") {
            c.env_remove(k.as_ref());
        }
    }
    if std::env::var_os("EDGEGW_CHAOS_BACKTRACE").is_none() {
        c.env_remove("RUST_BACKTRACE");
        c.env_remove("RUST_LIB_BACKTRACE");
    }
    c
}

/// The `edgegw` binary running `run --config` on a generated config.
pub struct Gw {
    /// The HTTP port (`/status`, `/metrics`, `/faults`).
    pub http: u16,
    /// The directory holding `gateway.toml`, `gateway.log` and the store (`data/`).
    pub dir: PathBuf,
    /// Declared before `tmp`: the process dies before its directory is removed.
    proc: Proc,
    tmp: Option<tempfile::TempDir>,
}

impl Gw {
    /// Starts the gateway with `toml` (its `[http]` and `[store]` are added here) in a fresh
    /// directory and waits for `/readyz`.
    pub fn start(toml: &str) -> Self {
        let tmp = tempfile::tempdir().expect("tempdir");
        let mut gw = Self::start_in(tmp.path(), toml);
        gw.tmp = Some(tmp);
        gw
    }

    /// Starts the gateway with its store and log in `dir` (kept across restarts) and waits for
    /// `/readyz`. `toml` must not contain `[http]` or `[store]` sections; put store keys in
    /// [`Gw::start_with_store`].
    pub fn start_in(dir: &Path, toml: &str) -> Self {
        Self::start_with_store(dir, toml, "")
    }

    /// [`Gw::start_in`] with extra `[store]` keys (`store_keys`, TOML lines).
    pub fn start_with_store(dir: &Path, toml: &str, store_keys: &str) -> Self {
        Self::launch(dir, toml, store_keys, "", "/readyz", &[])
    }

    /// [`Gw::start_in`] with extra arguments to `edgegw run` (e.g. `["--log-format", "json"]`).
    pub fn start_with_args_in(dir: &Path, toml: &str, args: &[&str]) -> Self {
        Self::launch(dir, toml, "", "", "/readyz", args)
    }

    /// As [`Gw::start_in`], but waits only for `/healthz`: for a gateway expected to run
    /// degraded (not ready), e.g. without its store.
    pub fn start_unready_in(dir: &Path, toml: &str) -> Self {
        Self::launch(dir, toml, "", "", "/healthz", &[])
    }

    /// [`Gw::start_in`] with extra `[http]` keys (`http_keys`, TOML lines), e.g. a
    /// `token_file`.
    pub fn start_with_http_in(dir: &Path, toml: &str, http_keys: &str) -> Self {
        Self::launch(dir, toml, "", http_keys, "/readyz", &[])
    }

    fn launch(
        dir: &Path,
        toml: &str,
        store_keys: &str,
        http_keys: &str,
        wait_for: &str,
        args: &[&str],
    ) -> Self {
        let http = free_port();
        let cfg = format!(
            "{toml}\n[http]\nbind = \"127.0.0.1:{http}\"\n{http_keys}\n[store]\npath = \"{}\"\n{store_keys}\n",
            dir.join("data").display()
        );
        let path = dir.join("gateway.toml");
        std::fs::write(&path, cfg).expect("write gateway.toml");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("gateway.log"))
            .expect("open gateway.log");
        let child = gateway_command(&gateway_bin())
            .args(["run", "--config"])
            .arg(&path)
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().expect("dup log"))
            .stderr(log)
            .spawn()
            .expect("cannot start the gateway binary");
        let gw = Gw {
            http,
            dir: dir.to_path_buf(),
            tmp: None,
            proc: Proc(child),
        };
        let ready = poll_until(Duration::from_secs(30), || gw.get(wait_for).0 == 200);
        if !ready {
            let log = gw.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            panic!(
                "gateway not answering {wait_for} after 30 s; /status {}; log tail (newest first):\n{}",
                gw.get("/status").1,
                tail.join("\n")
            );
        }
        gw
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.proc.0.id()
    }

    /// Peak resident memory so far (`VmHWM` of `/proc/<pid>/status`), MiB; 0 if unreadable.
    pub fn peak_rss_mib(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }

    /// `GET path` → (status, body); (0, "") when the gateway does not answer.
    pub fn get(&self, path: &str) -> (u16, String) {
        http(self.http, "GET", path, "", "")
    }

    /// `GET path` with `Authorization: Bearer <token>` → (status, body).
    pub fn get_with_token(&self, path: &str, token: &str) -> (u16, String) {
        let auth = format!("Authorization: Bearer {token}\r\n");
        http(self.http, "GET", path, &auth, "")
    }

    /// `POST path` with a JSON body → (status, body).
    pub fn post(&self, path: &str, body: &str) -> (u16, String) {
        http(self.http, "POST", path, "", body)
    }

    /// A metric's value (sum over the exposition lines whose series is exactly `series`,
    /// e.g. `edgegw_actor_restarts_total{stage="uplink"}`), 0 if absent.
    pub fn metric(&self, series: &str) -> f64 {
        metric_in(&self.get("/metrics").1, series)
    }

    /// Every series of metric `name` (e.g. `edgegw_ingest_rejected_total`) with its value.
    pub fn metric_family(&self, name: &str) -> Vec<(String, f64)> {
        self.get("/metrics")
            .1
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter(|(k, _)| *k == name || k.starts_with(&format!("{name}{{")))
            .filter_map(|(k, v)| v.parse::<f64>().ok().map(|v| (k.to_string(), v)))
            .collect()
    }

    /// `/status` as JSON (`Null` when the gateway does not answer).
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/status").1).unwrap_or_default()
    }

    /// The gateway's log so far (stdout and stderr, all runs in this directory).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default()
    }

    /// The log lines that are JSON objects (a gateway run with `--log-format json`).
    pub fn log_json(&self) -> Vec<serde_json::Value> {
        json_lines(&self.log())
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill9(mut self) {
        self.proc.kill();
    }

    /// SIGTERM, then wait for a clean exit; returns the exit code (`None`: did not exit in 30 s,
    /// or was killed by a signal).
    pub fn stop(mut self) -> Option<i32> {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let mut code = None;
        poll_until(Duration::from_secs(30), || match self.proc.0.try_wait() {
            Ok(Some(st)) => {
                code = st.code();
                true
            }
            _ => false,
        });
        code
    }
}

/// The lines of `log` that are JSON objects.
pub fn json_lines(log: &str) -> Vec<serde_json::Value> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(serde_json::Value::is_object)
        .collect()
}

/// The value of `series` in a Prometheus text exposition (summed over duplicates), 0 if absent.
pub fn metric_in(text: &str, series: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(k, _)| *k == series)
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

/// One HTTP/1.0 request; `headers` are extra header lines, each ending in `\r\n`.
fn http(port: u16, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let code = resp
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = resp
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (code, body)
}
