//! Harness for black-box tests: real mosquitto brokers, real `mosquitto_pub`/`mosquitto_sub`
//! clients, the real `edgegw` binary, all on free loopback ports. Every process started here
//! is stopped when its guard drops (also when the test panics).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until `f` is true, polling, or panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

fn wait_port(port: u16, timeout: Duration) {
    wait_until(timeout, &format!("port {port} to accept"), || {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// A child process killed on drop.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A mosquitto broker on a free port.
pub struct Mosquitto {
    pub port: u16,
    _proc: Proc,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n"),
        )
        .unwrap();
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto not installed: run the README's test command, which installs it");
        wait_port(port, Duration::from_secs(10));
        Mosquitto {
            port,
            _proc: Proc(child),
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

/// A mosquitto client (`mosquitto_pub`/`mosquitto_sub`) aimed at the broker on `port`.
fn mosquitto_client(bin: &str, port: u16) -> Command {
    let mut c = Command::new(bin);
    c.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
    c
}

/// `mosquitto_sub` on `filter`, collecting `(topic, payload)` lines.
pub struct Sub {
    pub lines: Arc<Mutex<Vec<(String, String)>>>,
    _proc: Proc,
}

impl Sub {
    pub fn start(port: u16, filter: &str) -> Self {
        let mut child = mosquitto_client("mosquitto_sub", port)
            .args(["-t", filter, "-v", "-q", "1", "-i"])
            .arg(format!("test-sub-{}", free_port()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_sub not installed");
        let out = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if let Some((t, p)) = line.split_once(' ') {
                    l.lock().unwrap().push((t.to_string(), p.to_string()));
                }
            }
        });
        // mosquitto_sub has no "subscribed" signal; give it a moment to connect and subscribe.
        std::thread::sleep(Duration::from_millis(300));
        Sub {
            lines,
            _proc: Proc(child),
        }
    }

    /// Parsed JSON payloads of topics containing `part`.
    pub fn json(&self, part: &str) -> Vec<(String, serde_json::Value)> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| t.contains(part))
            .filter_map(|(t, p)| serde_json::from_str(p).ok().map(|v| (t.clone(), v)))
            .collect()
    }
}

/// `mosquitto_pub -l`: one message per line written to it, on `topic`.
pub struct Pub {
    stdin: Option<ChildStdin>,
    proc: Proc,
}

impl Pub {
    pub fn start(port: u16, topic: &str, qos: u8) -> Self {
        let mut child = mosquitto_client("mosquitto_pub", port)
            .args(["-t", topic, "-l", "-q", &qos.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto_pub not installed");
        Pub {
            stdin: child.stdin.take(),
            proc: Proc(child),
        }
    }

    pub fn send(&mut self, line: &str) {
        let s = self.stdin.as_mut().unwrap();
        s.write_all(line.as_bytes()).unwrap();
        s.write_all(b"\n").unwrap();
    }

    /// Closes stdin and waits for mosquitto_pub to send everything and exit.
    pub fn finish(mut self) {
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.proc.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("mosquitto_pub did not finish");
    }
}

/// Publishes one message with `mosquitto_pub -m`.
pub fn publish_once(port: u16, topic: &str, payload: &str) {
    let st = mosquitto_client("mosquitto_pub", port)
        .args(["-t", topic, "-m", payload, "-q", "1"])
        .status()
        .unwrap();
    assert!(st.success());
}

pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_edgegw"))
}

/// The `edgegw` binary running `run --config` on a generated config.
pub struct Gw {
    pub http: u16,
    pub dir: PathBuf,
    _tmp: Option<tempfile::TempDir>,
    proc: Proc,
}

impl Gw {
    /// Starts the gateway with `toml` (its `[http]` and `[store]` are added here) in a fresh
    /// directory and waits for `/readyz`.
    pub fn start(toml: &str) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let mut gw = Self::start_in(tmp.path(), toml);
        gw._tmp = Some(tmp);
        gw
    }

    /// Starts the gateway with its store and log in `dir` (kept across restarts).
    pub fn start_in(dir: &Path, toml: &str) -> Self {
        let gw = Self::start_unready_in(dir, toml);
        wait_until(Duration::from_secs(30), "gateway /readyz", || {
            gw.get("/readyz").0 == 200
        });
        gw
    }

    /// As [`Gw::start_in`], but waits only for `/healthz` (the gateway may run degraded).
    pub fn start_unready_in(dir: &Path, toml: &str) -> Self {
        let http = free_port();
        let cfg = format!(
            "{toml}\n[http]\nbind = \"127.0.0.1:{http}\"\n[store]\npath = \"{}\"\n",
            dir.join("data").display()
        );
        let path = dir.join("gateway.toml");
        std::fs::write(&path, cfg).unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("gateway.log"))
            .unwrap();
        let child = Command::new(bin())
            .args(["run", "--config"])
            .arg(&path)
            .env("RUST_LOG", "info")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let gw = Gw {
            http,
            dir: dir.to_path_buf(),
            _tmp: None,
            proc: Proc(child),
        };
        wait_until(Duration::from_secs(30), "gateway /healthz", || {
            gw.get("/healthz").0 == 200
        });
        gw
    }

    /// `GET path` → (status, body).
    pub fn get(&self, path: &str) -> (u16, String) {
        http(self.http, "GET", path, "")
    }

    /// `POST path` with a JSON body → (status, body).
    pub fn post(&self, path: &str, body: &str) -> (u16, String) {
        http(self.http, "POST", path, body)
    }

    /// A metric's value (sum over label sets matching `name` + `labels` prefix), 0 if absent.
    pub fn metric(&self, series: &str) -> f64 {
        let (_, text) = self.get("/metrics");
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.rsplit_once(' '))
            .filter(|(k, _)| *k == series)
            .filter_map(|(_, v)| v.parse::<f64>().ok())
            .sum()
    }

    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.get("/status").1).unwrap_or_default()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("gateway.log")).unwrap_or_default()
    }

    /// SIGKILL: no shutdown, no flush.
    pub fn kill9(mut self) {
        let _ = self.proc.0.kill();
        let _ = self.proc.0.wait();
    }

    /// SIGTERM, then wait for a clean exit; returns the exit code.
    pub fn stop(mut self) -> Option<i32> {
        let pid = self.proc.0.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = self.proc.0.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

fn http(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(SocketAddr::from(([127, 0, 0, 1], port))) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let req = format!(
        "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
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

/// Writes `text` to a file in `dir` and returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Feeds `sensors` sensors continuously (ts advancing 100 ms per sample, in the past) until
/// `stop` is set.
pub fn feeder(port: u16, sensors: usize, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut pubs: Vec<Pub> = (0..sensors)
            .map(|i| Pub::start(port, &format!("sensors/f{i}/data"), 0))
            .collect();
        let mut ts = edgegw_actors::status::now_ms() - 3_600_000;
        let mut k = 0u64;
        while !stop.load(Ordering::Relaxed) {
            for (i, p) in pubs.iter_mut().enumerate() {
                let body: Vec<String> = (0..10)
                    .map(|j| {
                        let x = (k + j) as f64;
                        format!(
                            "[{},{}]",
                            ts + j as i64 * 100,
                            50.0 + i as f64 + (x * 0.2).sin() + 0.1 * (x * 1.7).cos()
                        )
                    })
                    .collect();
                p.send(&format!("{{\"samples\":[{}]}}", body.join(",")));
            }
            ts += 1000;
            k += 10;
            std::thread::sleep(Duration::from_millis(20));
        }
        for p in pubs {
            p.finish();
        }
    })
}
