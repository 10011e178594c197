//! The heartbeat agent: sends a heartbeat every interval; when heartbeats fail, records the
//! outage in the [`journal`], diagnoses its cause with [`probe`], retries every few seconds to
//! catch the moment the endpoint is back, and reports the finished outage inside the heartbeat
//! that gets through.
//!
//! Precision: an outage starts at the first failed attempt (up to one interval after the real
//! start) and ends at the first attempt that gets through (within one probe interval of the real
//! end). Time when the agent itself was not running is reported separately, as `agent_offline`.

pub mod config;
pub mod journal;
pub mod probe;

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use crate::heartbeat::{Heartbeat, MAX_OUTAGES_PER_HEARTBEAT};
use crate::outage::{Cause, OutageReport};
use config::{AgentConfig, Mode};
use journal::{Journal, JournalState, OpenOutage};
use probe::AttemptFailure;

/// The agent's version, sent with every heartbeat.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Waits before the quick retries that confirm a failure before an outage is declared.
const QUICK_RETRIES: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];
/// A gap this much longer than expected between two signs of life means the agent was not running.
const OFFLINE_SLACK: Duration = Duration::from_secs(30);

/// How a run ended, as the process exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0: sent (or, as a daemon, stopped by a signal).
    Success = 0,
    /// 1: the heartbeat could not be delivered (`--once`).
    HeartbeatFailed = 1,
    /// 2: bad usage or configuration.
    BadConfiguration = 2,
}

/// Runs the agent until done (`--once`) or until `shutdown` completes (daemon).
pub async fn run(
    config: AgentConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Outcome, String> {
    let client = reqwest::Client::builder()
        .timeout(config.timeout)
        .connect_timeout(config.timeout)
        .user_agent(format!("isp-monitor-agent/{VERSION}"))
        .build()
        .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
    let mut agent = Agent {
        config,
        client,
        seq: 0,
        last_rtt: None,
    };
    match agent.config.mode {
        Mode::Once => Ok(agent.once().await),
        Mode::Daemon => {
            let journal = Journal::open(&agent.config.state_dir).map_err(|err| err.to_string())?;
            agent.daemon(journal, shutdown).await;
            Ok(Outcome::Success)
        }
    }
}

struct Agent {
    config: AgentConfig,
    client: reqwest::Client,
    seq: u64,
    last_rtt: Option<Duration>,
}

/// A heartbeat that got through.
struct Delivered {
    status: u16,
    rtt: Duration,
}

impl Agent {
    async fn once(&mut self) -> Outcome {
        match self.send(&[]).await {
            Ok(delivered) => {
                self.log_ok(&delivered, 0);
                Outcome::Success
            }
            Err(failure) => {
                println!(
                    "{} fail seq={} device={} {failure}",
                    now_text(),
                    self.seq,
                    self.config.device
                );
                eprintln!(
                    "heartbeat-agent: heartbeat to {} failed: {failure}{}",
                    self.config.display_url(),
                    hint(&failure)
                );
                Outcome::HeartbeatFailed
            }
        }
    }

    async fn daemon(
        &mut self,
        mut journal: Journal,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) {
        self.note_agent_downtime(&mut journal, Utc::now());
        println!(
            "{} started heartbeat-agent {VERSION}: device={} url={} interval={}s journal={}",
            now_text(),
            self.config.device,
            self.config.display_url(),
            self.config.interval.as_secs(),
            journal.path().display()
        );
        // The signal future is turned into a flag that can be awaited again and again, so every
        // wait below (and any attempt in flight) ends promptly on SIGINT/SIGTERM.
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        });
        let stopped = || {
            let mut stop_rx = stop_rx.clone();
            async move {
                let _ = stop_rx.wait_for(|stop| *stop).await;
            }
        };
        let mut next = Instant::now();
        loop {
            tokio::select! {
                () = stopped() => break,
                () = tokio::time::sleep_until(next.into()) => {}
            }
            let tick = Instant::now();
            // Journal changes happen between awaits, so abandoning a step here never leaves the
            // journal half-updated.
            let got_through = tokio::select! {
                () = stopped() => break,
                got_through = self.step(&mut journal) => got_through,
            };
            next = tick
                + if got_through {
                    self.jittered_interval()
                } else {
                    self.config.probe_interval
                };
        }
        println!("{} stopped", now_text());
    }

    /// One heartbeat: a recovery attempt while an outage is open, a scheduled beat otherwise.
    async fn step(&mut self, journal: &mut Journal) -> bool {
        if journal.state().open.is_some() {
            self.attempt_recovery(journal).await
        } else {
            self.beat(journal).await
        }
    }

    /// One scheduled heartbeat while all is well, confirmed by quick retries before an outage is
    /// declared. Returns whether it got through.
    async fn beat(&mut self, journal: &mut Journal) -> bool {
        let first_attempt = Utc::now();
        let reports = sendable(journal.state());
        let mut result = self.send_reports(journal, &reports).await;
        for (retry, wait) in QUICK_RETRIES.iter().enumerate() {
            let Err(failure) = &result else { break };
            // Status answers are definitive: retrying a 401 or a 500 at once only adds load.
            if matches!(failure, AttemptFailure::Status(_)) {
                break;
            }
            self.verbose(format_args!(
                "attempt {} failed ({failure}); retrying in {}s",
                retry + 1,
                wait.as_secs()
            ));
            tokio::time::sleep(*wait).await;
            result = self.send_reports(journal, &reports).await;
        }
        match result {
            Ok(delivered) => {
                self.acknowledge(journal, &reports, None);
                self.log_ok(&delivered, reports.len());
                true
            }
            Err(failure) => {
                let (cause, detail) = probe::diagnose(&self.config, &failure).await;
                let open = OpenOutage::new(
                    new_outage_id(first_attempt),
                    first_attempt,
                    cause,
                    detail.clone(),
                );
                save(journal, |state| state.open = Some(open));
                println!(
                    "{} fail seq={} device={} outage started cause={cause}: {detail}",
                    now_text(),
                    self.seq,
                    self.config.device
                );
                false
            }
        }
    }

    /// One attempt while an outage is open. The heartbeat carries the outage as if it ended now:
    /// if it gets through, now is when connectivity came back. Returns whether it got through.
    async fn attempt_recovery(&mut self, journal: &mut Journal) -> bool {
        let Some(open) = journal.state().open.clone() else {
            return true;
        };
        let attempt_at = Utc::now();
        let finished = open.finish(attempt_at);
        let mut reports = vec![finished.clone()];
        reports.extend(
            sendable(journal.state())
                .into_iter()
                .take(MAX_OUTAGES_PER_HEARTBEAT - 1),
        );
        match self.send_reports(journal, &reports).await {
            Ok(delivered) => {
                self.acknowledge(journal, &reports, Some(&open.id));
                println!(
                    "{} back after {} cause={} outage reported (start={} end={})",
                    now_text(),
                    human_duration(finished.duration_seconds()),
                    finished.cause,
                    finished
                        .start
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    finished
                        .end
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                );
                self.log_ok(&delivered, reports.len());
                true
            }
            Err(failure) => {
                let (cause, detail) = probe::diagnose(&self.config, &failure).await;
                save(journal, |state| {
                    if let Some(open) = &mut state.open {
                        open.observe(attempt_at, cause, detail.clone());
                    }
                });
                println!(
                    "{} fail seq={} device={} down for {} cause={cause}: {detail}",
                    now_text(),
                    self.seq,
                    self.config.device,
                    human_duration((attempt_at - open.start).num_seconds())
                );
                false
            }
        }
    }

    /// Sends a heartbeat carrying `reports`. If the handler refuses the reports themselves (a 400
    /// while carrying some), they are set aside for a human and the heartbeat is sent without them,
    /// so one bad report can never block every later heartbeat.
    async fn send_reports(
        &mut self,
        journal: &mut Journal,
        reports: &[OutageReport],
    ) -> Result<Delivered, AttemptFailure> {
        match self.send(reports).await {
            Err(AttemptFailure::Status(400)) if !reports.is_empty() => {
                let delivered = self.send(&[]).await?;
                let ids: Vec<&str> = reports.iter().map(|r| r.id.as_str()).collect();
                match journal.set_rejected_aside(reports, "refused by the handler with 400") {
                    Ok(path) => eprintln!(
                        "heartbeat-agent: the handler refused outage reports {ids:?}; kept in {}",
                        path.display()
                    ),
                    Err(err) => eprintln!(
                        "heartbeat-agent: the handler refused outage reports {ids:?} and they could not be kept: {err}"
                    ),
                }
                save(journal, |state| {
                    state.pending.retain(|p| !ids.contains(&p.id.as_str()));
                    if state
                        .open
                        .as_ref()
                        .is_some_and(|open| ids.contains(&open.id.as_str()))
                    {
                        state.open = None;
                    }
                });
                Ok(delivered)
            }
            other => other,
        }
    }

    /// One HTTP attempt.
    async fn send(&mut self, reports: &[OutageReport]) -> Result<Delivered, AttemptFailure> {
        self.seq += 1;
        let mut heartbeat = Heartbeat::new(self.config.device.clone());
        heartbeat.note = self.config.note.clone();
        heartbeat.agent_version = Some(VERSION.to_owned());
        heartbeat.seq = Some(self.seq);
        heartbeat.rtt_ms = self.last_rtt.map(|rtt| rtt.as_millis() as u64);
        heartbeat.outages = reports.to_vec();

        let mut request = self.client.post(self.config.url.clone()).json(&heartbeat);
        if let Some(key) = &self.config.key {
            request = request.header("x-functions-key", key);
        }
        let started = Instant::now();
        // `without_url`: the URL may carry the key in `?code=`, and error messages get logged.
        let answer = request
            .send()
            .await
            .map_err(|err| AttemptFailure::Unreachable(describe(&err.without_url())))?;
        let rtt = started.elapsed();
        let status = answer.status().as_u16();
        if !answer.status().is_success() {
            let reason = answer.text().await.unwrap_or_default();
            self.verbose(format_args!(
                "endpoint answered {status}: {}",
                reason.chars().take(200).collect::<String>()
            ));
            return Err(AttemptFailure::Status(status));
        }
        self.last_rtt = Some(rtt);
        Ok(Delivered { status, rtt })
    }

    /// The handler has the reports: forget them, close the open outage if it was among them.
    fn acknowledge(&self, journal: &mut Journal, reports: &[OutageReport], closed: Option<&str>) {
        let now = Utc::now();
        save(journal, |state| {
            state
                .pending
                .retain(|pending| !reports.iter().any(|sent| sent.id == pending.id));
            if closed.is_some() && state.open.as_ref().map(|o| o.id.as_str()) == closed {
                state.open = None;
            }
            state.last_success = Some(now);
        });
    }

    /// At start-up: if the agent was not running for a while, record that gap, and close an
    /// outage that was open when it stopped at the last moment it was seen.
    fn note_agent_downtime(&self, journal: &mut Journal, now: DateTime<Utc>) {
        let state = journal.state().clone();
        let resume_allowance = chrono::Duration::from_std(
            3 * self.config.probe_interval + self.config.timeout + OFFLINE_SLACK,
        )
        .unwrap_or_default();
        let offline_allowance =
            chrono::Duration::from_std(2 * self.config.interval + OFFLINE_SLACK)
                .unwrap_or_default();
        let (last_alive, allowance) = match &state.open {
            Some(open) => (open.last_failure, resume_allowance),
            None => match state.last_success {
                Some(last) => (last, offline_allowance),
                None => return,
            },
        };
        if now - last_alive <= allowance {
            return; // a quick restart: carry on, resuming any open outage
        }
        let offline = OutageReport {
            id: new_outage_id(last_alive),
            start: last_alive,
            end: now,
            cause: Cause::AgentOffline,
            detail: "the agent was not running (machine off, asleep, or agent stopped)".to_owned(),
        };
        println!(
            "{} agent was not running for {}; recorded",
            now_text(),
            human_duration(offline.duration_seconds())
        );
        save(journal, |state| {
            if let Some(open) = state.open.take() {
                state.pending.push(open.finish(open.last_failure));
            }
            state.pending.push(offline);
        });
    }

    fn log_ok(&self, delivered: &Delivered, reported: usize) {
        let reported = if reported > 0 {
            format!(" reported={reported}")
        } else {
            String::new()
        };
        println!(
            "{} ok status={} rtt={}ms seq={} device={}{reported}",
            now_text(),
            delivered.status,
            delivered.rtt.as_millis(),
            self.seq,
            self.config.device
        );
    }

    fn verbose(&self, message: std::fmt::Arguments<'_>) {
        if self.config.verbose {
            eprintln!("{} {message}", now_text());
        }
    }

    /// The interval plus up to a tenth of it (at most 3 s), so that devices started together do
    /// not all call at the same second.
    fn jittered_interval(&self) -> Duration {
        let spread = (self.config.interval / 10).min(Duration::from_secs(3));
        let random = RandomState::new().hash_one(Instant::now());
        let jitter = if spread.is_zero() {
            Duration::ZERO
        } else {
            Duration::from_nanos(random % spread.as_nanos() as u64)
        };
        self.config.interval + jitter
    }
}

/// Pending reports, at most what one heartbeat may carry.
fn sendable(state: &JournalState) -> Vec<OutageReport> {
    state
        .pending
        .iter()
        .take(MAX_OUTAGES_PER_HEARTBEAT)
        .cloned()
        .collect()
}

/// Writes a journal change; a failed write is logged and the agent goes on with the change in
/// memory (losing it on a crash is better than stopping the heartbeats).
fn save(journal: &mut Journal, change: impl FnOnce(&mut JournalState)) {
    if let Err(err) = journal.update(change) {
        eprintln!(
            "heartbeat-agent: cannot write the outage journal {}: {err}",
            journal.path().display()
        );
    }
}

/// An id unique enough across devices and restarts: start time and a random part.
fn new_outage_id(start: DateTime<Utc>) -> String {
    let random = RandomState::new().hash_one((start, std::process::id()));
    format!("{:x}-{:08x}", start.timestamp_millis(), random as u32)
}

/// What to do about a failure, for a human.
fn hint(failure: &AttemptFailure) -> &'static str {
    match failure {
        AttemptFailure::Status(401 | 403) => " (check HEARTBEAT_KEY / --key)",
        AttemptFailure::Status(404) => " (check HEARTBEAT_URL / --url: it should end in /api/ping)",
        AttemptFailure::Status(500..=599) => {
            " (the function app is failing; see docs/troubleshooting.md)"
        }
        _ => "",
    }
}

/// A reqwest error with its causes, in one short line.
fn describe(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        return "timed out".to_owned();
    }
    let mut text = String::new();
    let mut source: Option<&dyn std::error::Error> = Some(err);
    while let Some(current) = source {
        let part = current.to_string();
        if !text.contains(&part) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&part);
        }
        source = current.source();
    }
    text.chars()
        .take(200)
        .collect::<String>()
        .replace(['\n', '\r'], " ")
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `7m30s`, `2h05m`, `45s`.
pub fn human_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    match seconds {
        0..60 => format!("{seconds}s"),
        60..3600 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(450), "7m30s");
        assert_eq!(human_duration(7500), "2h05m");
    }
}
