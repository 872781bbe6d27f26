//! Black-box harness shared by the root package's tests and the chaos scenarios: real
//! mosquitto brokers, real `mosquitto_pub`/`mosquitto_sub` clients and the real `edgegw`
//! binary, all on free loopback ports.
//!
//! Design constraints:
//! - Every process started here is owned by a guard that kills it on drop, also when the test
//!   panics; nothing outlives the test that started it.
//! - Only loopback and free ports (never 1883/9464, which a system broker or gateway may hold).
//! - Eventually-true conditions are polled with a deadline ([`wait_until`], [`poll_until`]);
//!   the only fixed sleeps are the pacing of a feeder or a fault schedule.
//! - The gateway binary is resolved once per process ([`gateway_bin`]); the root tests point it
//!   at their own `CARGO_BIN_EXE_edgegw` ([`set_gateway_bin`]) so they never start a nested
//!   cargo build.

pub mod certs;
mod clients;
mod gw;
pub mod rotel;

pub use clients::{feeder, feeder_counted, feeder_with, publish_once, Pub, Sub};
pub use gw::{gateway_bin, gateway_command, json_lines, metric_in, set_gateway_bin, Gw};

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free loopback port")
}

/// Polls `f` every 100 ms until it is true (→ `true`) or `timeout` passed (→ `false`).
pub fn poll_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until `f` is true, polling, or panics with `what` after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, f: impl FnMut() -> bool) {
    assert!(
        poll_until(timeout, f),
        "timed out after {timeout:?} waiting for {what}"
    );
}

/// A child process killed (SIGKILL) and reaped on drop.
pub struct Proc(pub Child);

impl Proc {
    /// Kills and reaps the process now (idempotent).
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A mosquitto broker on a free loopback port, without persistence: a restart wipes every
/// session and every queued or retained message.
pub struct Mosquitto {
    /// The port it listens on (kept across [`Mosquitto::restart`]).
    pub port: u16,
    proc: Option<Proc>,
    conf: PathBuf,
    _dir: tempfile::TempDir,
}

impl Mosquitto {
    /// Starts a broker on a free port and waits until it accepts connections.
    pub fn start() -> Self {
        Self::start_with(|port| format!("listener {port} 127.0.0.1\nallow_anonymous true\n"))
    }

    /// Starts a broker whose listener is `listener(port)` (mosquitto.conf lines: the
    /// `listener` itself, TLS files, `password_file`, `allow_anonymous` …) on a free port.
    /// `user root` keeps a broker started by root able to read the test's files.
    pub fn start_with(listener: impl Fn(u16) -> String) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "{}\npersistence false\nmax_queued_messages 100000\nuser root\n",
                listener(port)
            ),
        )
        .expect("write mosquitto.conf");
        let mut m = Mosquitto {
            port,
            proc: None,
            conf,
            _dir: dir,
        };
        m.start_again();
        m
    }

    /// The broker's URL for gateway configs.
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    /// SIGKILL: every session and queued message is gone.
    pub fn kill(&mut self) {
        if let Some(mut p) = self.proc.take() {
            p.kill();
        }
    }

    /// Starts the broker (again) on the same port and waits until it accepts connections.
    pub fn start_again(&mut self) {
        self.kill();
        let spawn = || {
            Command::new("mosquitto")
                .arg("-c")
                .arg(&self.conf)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("mosquitto not installed: run the README's test command, which installs it")
        };
        // The old listener's port may linger for a moment after a kill: retry the bind.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mut child = Proc(spawn());
            let up = poll_until(Duration::from_secs(5), || {
                matches!(child.0.try_wait(), Ok(None))
                    && TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            });
            if up {
                self.proc = Some(child);
                return;
            }
            child.kill();
            assert!(
                Instant::now() < deadline,
                "mosquitto did not come up on port {}",
                self.port
            );
        }
    }

    /// Kill and start again on the same port: a broker restart with every session wiped.
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }
}

/// Writes `text` to a file in `dir` and returns its path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write file");
    p
}
