//! The end of a scenario: the faults stop, then [`Rig::finish`] checks the properties listed
//! in [`super`] and returns the report.

use super::*;

impl Rig {
    /// Marks the end of the fault phase: recovery is measured from here.
    pub fn end_faults(&mut self) {
        self.proxy.heal();
        let end = FaultEnd {
            at: Instant::now(),
            hw: self.committed(),
            decisions: self.gw().metric("edgegw_decisions_total"),
        };
        println!(
            "{}: faults end at high-water {}",
            self.report.scenario, end.hw
        );
        self.fault_end = Some(end);
    }

    /// Every check after the faults; publishes the report and panics if a property failed.
    pub fn finish(mut self) -> Report {
        if self.fault_end.is_none() {
            self.end_faults();
        }
        let end = self.fault_end.expect("set above");
        let scale = if self.soak { 5 } else { 1 };
        self.check_fresh(end, Duration::from_secs(90 * scale));
        if let Some((stop, feed)) = self.feed.take() {
            stop.store(true, Ordering::Relaxed);
            let _ = feed.join();
        }
        let verdict = self.drain_and_judge(end, Duration::from_secs(120 * scale));
        self.record_verdict(&verdict);
        let status = self.gw().status();
        if let Some(stages) = status["stages"].as_object() {
            for (name, s) in stages {
                self.check(s["state"] == "running", || {
                    format!("stage {name} is {} at the end: {s}", s["state"])
                });
            }
        }
        let gw = self.retire_gateway(false).expect("gateway running");
        self.report.restarts = self.earlier_restarts.clone();
        let (peak, bound) = (self.report.peak_rss_mib, self.settings.rss_bound_mib);
        self.check(peak > 0.0 && peak < bound, || {
            format!("peak RSS {peak:.1} MiB, bound {bound} MiB")
        });
        let t0 = Instant::now();
        let code = gw.stop();
        let took = t0.elapsed();
        self.figure("shutdown_s", took.as_secs_f64());
        self.check(code == Some(0), || {
            format!("gateway exit code {code:?}, not 0")
        });
        let bound = self.settings.shutdown_bound;
        self.check(took < bound, || {
            format!("SIGTERM took {took:?}, bound {bound:?}")
        });
        self.report.wall_s = self.started.elapsed().as_secs_f64();
        self.report.pass = self.report.failures.is_empty();
        self.report.publish();
        assert!(
            self.report.pass,
            "scenario {} failed (seed {}): {:?}",
            self.report.scenario, self.report.seed, self.report.failures
        );
        std::mem::take(&mut self.report)
    }

    /// Property 1: fresh decisions and fresh messages upstream after the faults.
    fn check_fresh(&mut self, end: FaultEnd, timeout: Duration) {
        let mut first: Option<Instant> = None;
        let ok = poll_until(timeout, || {
            first = self
                .upstream()
                .iter()
                .filter(|(t, _, _)| !t.ends_with("/status"))
                .filter(|(_, p, _)| seq_of(p).is_some_and(|s| s > end.hw))
                .map(|(_, _, at)| *at)
                .min();
            first.is_some() && self.gw().metric("edgegw_decisions_total") > end.decisions
        });
        self.report.recovery_first_fresh_s =
            first.map(|at| at.saturating_duration_since(end.at).as_secs_f64());
        let decisions = self.gw().metric("edgegw_decisions_total");
        self.check(ok, || {
            format!(
                "no fresh decisions/messages within {timeout:?} of the fault end: decisions {} → \
                 {decisions}, first upstream seq above {}: {first:?}",
                end.decisions, end.hw
            )
        });
    }

    /// Property 2: waits until the backlog is empty and every committed seq arrived, then
    /// judges the record.
    fn drain_and_judge(&mut self, end: FaultEnd, timeout: Duration) -> Verdict {
        let mut verdict = Verdict::default();
        let drained = poll_until(timeout, || {
            verdict = self.judge_now();
            verdict.missing.is_empty() && self.backlog() == Some(0)
        });
        if drained {
            self.report.recovery_drained_s = Some(end.at.elapsed().as_secs_f64());
        }
        verdict = self.judge_now();
        let backlog = self.backlog();
        self.check(drained, || {
            format!("backlog not drained within {timeout:?}: backlog {backlog:?}")
        });
        if let Err(e) = verdict.holds() {
            self.report.failures.push(format!("oracle: {e}"));
        }
        verdict
    }

    /// The oracle's verdict on the record so far. The record is read before the high-water,
    /// so everything in it was committed by then.
    pub fn judge_now(&self) -> Verdict {
        let record: Vec<Received> = self
            .upstream()
            .into_iter()
            .map(|(topic, payload, _)| Received {
                topic,
                payload: payload.into_bytes(),
            })
            .collect();
        let status = self.gw().status();
        let hw = status["store"]["next_seq"]
            .as_u64()
            .map_or(0, |n| n.saturating_sub(1));
        let epoch = status["epoch"].as_i64().unwrap_or(0);
        let ev = &status["store"]["evicted"];
        let evicted: u64 = ["alert", "summary", "raw"]
            .iter()
            .filter_map(|c| ev[c].as_u64())
            .sum();
        let sessions = self.proxy.connections().max(1) as usize;
        judge(
            &record,
            GATEWAY,
            epoch,
            hw,
            evicted,
            self.settings.inflight * sessions,
        )
    }

    fn record_verdict(&mut self, v: &Verdict) {
        let produced = self.committed();
        let r = &mut self.report;
        r.produced = produced;
        r.delivered = v.delivered;
        r.missing = v.missing.iter().take(20).copied().collect();
        r.missing_count = v.missing.len();
        r.duplicated = v.duplicates;
        r.max_duplicates = v.max_duplicates;
        r.evicted = v.evicted;
        println!(
            "{}: produced {}, delivered {}, missing {}, duplicates {} (bound {}), unexpected {}, reused {}",
            r.scenario,
            r.produced,
            v.delivered,
            v.missing.len(),
            v.duplicates,
            v.max_duplicates,
            v.unexpected.len(),
            v.reused.len()
        );
    }
}
