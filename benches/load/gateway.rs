//! The gateway under test: the release `edgegw` binary as its own process, its `/metrics`
//! read as snapshots, and what the load benchmark computes from them.

use crate::common::{free_port, get, rss_mib};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running gateway with its embedded broker, stopped (SIGTERM, then waited for) on drop.
pub struct Gateway {
    child: Child,
    pub pid: u32,
    pub broker: u16,
    pub http: u16,
    dir: PathBuf,
}

impl Gateway {
    /// Starts a gateway on fresh loopback ports with the benchmark's base config plus
    /// `extra` TOML (later keys of the same table win, so `extra` may only add tables the base
    /// does not have; `sensors`, `ingest`, `uplink` and `summary` are built from the arguments).
    pub fn start(o: &GatewayOpts) -> Self {
        let (broker, http) = (free_port(), free_port());
        let uplink = o.uplink_port.unwrap_or(broker);
        let dir = std::env::temp_dir().join(format!(
            "edgegw-load-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let cfg = dir.join("load.toml");
        std::fs::write(
            &cfg,
            format!(
                "[broker]\nbind = \"127.0.0.1:{broker}\"\n\
                 [ingest]\nurl = \"mqtt://127.0.0.1:{broker}\"\nqos = {}\n\
                 [uplink]\nurl = \"mqtt://127.0.0.1:{uplink}\"\n[http]\nbind = \"127.0.0.1:{http}\"\n\
                 [store]\npath = \"{}\"\n[sensors]\nwarmup_samples = 200\nmax_sensors = {}\n\
                 [summary]\nperiod = \"{}ms\"\n{}",
                o.ingest_qos,
                dir.join("data").display(),
                o.max_sensors.max(10_000),
                o.summary_ms,
                o.extra
            ),
        )
        .expect("config written");
        let child = Command::new(env!("CARGO_BIN_EXE_edgegw"))
            .args(["run", "--config"])
            .arg(&cfg)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("edgegw binary");
        let gw = Gateway {
            pid: child.id(),
            child,
            broker,
            http,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while !get(http, "/readyz").starts_with("ready") {
            assert!(Instant::now() < deadline, "gateway not ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        gw
    }

    /// A `/metrics` snapshot.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            text: get(self.http, "/metrics"),
            at: Instant::now(),
            cpu_s: cpu_secs(self.pid),
            machine: MachineCpu::now(),
        }
    }

    /// `/status` as JSON (null if unreachable).
    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&get(self.http, "/status")).unwrap_or_default()
    }

    /// Resident memory now, MiB.
    pub fn rss(&self) -> f64 {
        rss_mib(self.pid)
    }

    /// Highest resident memory so far (the kernel's high-water mark), MiB.
    pub fn peak_rss(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.pid))
            .ok()
            .and_then(|s| {
                let l = s.lines().find(|l| l.starts_with("VmHWM:"))?.to_string();
                l.split_whitespace().nth(1)?.parse::<f64>().ok()
            })
            .map_or(f64::NAN, |kib| kib / 1024.0)
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What a gateway is started with.
#[derive(Debug, Clone)]
pub struct GatewayOpts {
    pub ingest_qos: u8,
    pub max_sensors: usize,
    pub summary_ms: u64,
    /// The uplink's broker port; `None` = the embedded broker itself.
    pub uplink_port: Option<u16>,
    /// Further TOML tables.
    pub extra: String,
}

/// One reading of `/metrics` with the time, the process CPU and the machine's CPU counters
/// it was taken at.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub text: String,
    pub at: Instant,
    pub cpu_s: f64,
    pub machine: MachineCpu,
}

/// The machine's CPU time counters (all cores, `/proc/stat`, in clock ticks).
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineCpu {
    /// user + nice + system + irq + softirq.
    pub busy: f64,
    /// Time the hypervisor ran something else while this machine wanted a CPU.
    pub steal: f64,
    /// Every state, idle and steal included.
    pub total: f64,
}

impl MachineCpu {
    pub fn now() -> Self {
        let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
        let f: Vec<f64> = stat
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .skip(1)
            .filter_map(|v| v.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal (guest time is inside user).
        let at = |i: usize| f.get(i).copied().unwrap_or(0.0);
        MachineCpu {
            busy: at(0) + at(1) + at(2) + at(5) + at(6),
            steal: at(7),
            total: (0..8).map(at).sum(),
        }
    }

    /// `(busy %, steal %)` of the machine's CPU time from `self` to `later`.
    pub fn until(&self, later: &MachineCpu) -> (f64, f64) {
        let total = (later.total - self.total).max(1e-9);
        (
            (later.busy - self.busy) / total * 100.0,
            (later.steal - self.steal) / total * 100.0,
        )
    }
}

impl Snapshot {
    /// Sum of the series named exactly `series` (with its labels, if any).
    pub fn get(&self, series: &str) -> f64 {
        self.text
            .lines()
            .filter_map(|l| l.rsplit_once(' '))
            .filter(|(k, _)| *k == series)
            .filter_map(|(_, v)| v.parse::<f64>().ok())
            .sum()
    }

    /// Cumulative buckets `(le, count)` of histogram `name`, sorted by bound.
    fn buckets(&self, name: &str) -> Vec<(f64, f64)> {
        let prefix = format!("{name}_bucket{{le=\"");
        let mut b: Vec<(f64, f64)> = self
            .text
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter_map(|l| {
                let (le, rest) = l.split_once('"')?;
                let v = rest.rsplit_once(' ')?.1.parse::<f64>().ok()?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, v))
            })
            .collect();
        b.sort_by(|a, b| a.0.total_cmp(&b.0));
        b
    }
}

/// What happened between two snapshots.
pub struct Delta<'a> {
    pub from: &'a Snapshot,
    pub to: &'a Snapshot,
}

impl Delta<'_> {
    /// Seconds between the snapshots.
    pub fn secs(&self) -> f64 {
        (self.to.at - self.from.at).as_secs_f64()
    }

    /// Increase of counter `series` per second.
    pub fn rate(&self, series: &str) -> f64 {
        (self.to.get(series) - self.from.get(series)) / self.secs()
    }

    /// Increase of counter `series`.
    pub fn diff(&self, series: &str) -> f64 {
        self.to.get(series) - self.from.get(series)
    }

    /// Gateway CPU over the interval, % of one core.
    pub fn cpu_pct(&self) -> f64 {
        (self.to.cpu_s - self.from.cpu_s) / self.secs() * 100.0
    }

    /// The whole machine over the interval: `(busy %, stolen by the hypervisor %)` of all
    /// cores' time.
    pub fn machine_pct(&self) -> (f64, f64) {
        self.from.machine.until(&self.to.machine)
    }

    /// Quantile `q` of histogram `name` over the interval only: the upper bound of the first
    /// bucket whose count reaches `q` of the observations made between the snapshots.
    pub fn quantile(&self, name: &str, q: f64) -> f64 {
        let before = self.from.buckets(name);
        let after = self.to.buckets(name);
        let counts: Vec<(f64, f64)> = after
            .iter()
            .map(|&(le, n)| {
                let was = before.iter().find(|b| b.0 == le).map_or(0.0, |b| b.1);
                (le, n - was)
            })
            .collect();
        let total = counts.last().map_or(0.0, |b| b.1);
        if total <= 0.0 {
            return f64::NAN;
        }
        counts
            .iter()
            .find(|(_, c)| *c >= q * total)
            .map_or(f64::NAN, |b| b.0)
    }
}

/// CPU seconds (user + system) process `pid` has used.
pub fn cpu_secs(pid: u32) -> f64 {
    // USER_HZ is 100 on every Linux architecture this runs on.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(") ")?.1.to_string();
            let f: Vec<&str> = rest.split_whitespace().collect();
            Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) / 100.0)
        })
        .unwrap_or(f64::NAN)
}
