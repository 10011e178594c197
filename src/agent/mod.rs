//! The heartbeat agent: sends a heartbeat every interval; when heartbeats fail, records the
//! outage in the [`journal`], diagnoses its cause with [`probe`], tries again on the [`schedule`]
//! to catch the moment the endpoint is back, and reports the finished outage in a later heartbeat.
//!
//! The jobs are split: [`transport`] makes one HTTP attempt, [`schedule`] decides when the next
//! happens, [`state`] decides what each event does to the journal (pure functions), [`journal`]
//! keeps it on disk, [`output`] prints every line. This module only drives them; the endpoint
//! ([`transport::Sender`]) and the network ([`probe::Network`]) are arguments of [`run_with`], so
//! the loop itself is tested with fakes under `tokio::time::pause()`.
//!
//! How start, end and `agent_offline` are decided, and how precise each is: docs/agent.md.

pub mod config;
pub mod history;
pub mod journal;
pub mod output;
pub mod probe;
pub mod quality;
pub mod schedule;
pub mod state;
pub mod state_file;
pub mod transport;

use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;

use crate::heartbeat::{Heartbeat, Quality};
use crate::outage::OutageReport;
use config::{AgentConfig, Mode};
use history::History;
use journal::{Journal, JournalState};
use output::{Event, emit};
use probe::{Network, RealNetwork};
use schedule::Schedule;
use state::{Failure, Policy};
use transport::{AttemptFailure, Delivered, Sender, Transport};

/// The agent's version, sent with every heartbeat.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
/// Waits before the quick retries that confirm a failure before an outage is declared.
const QUICK_RETRIES: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

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
    let transport = Transport::new(&config)?;
    run_with(config, transport, RealNetwork, shutdown).await
}

/// [`run`] with the endpoint and the network given: what tests drive with fakes.
pub async fn run_with(
    config: AgentConfig,
    transport: impl Sender,
    network: impl Network,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<Outcome, String> {
    let (journal, notices) = Journal::open(&config.state_dir).map_err(|err| err.to_string())?;
    // Opened under the journal's lock: one agent, one writer of the history.
    let (history, history_notices) = History::open(&config.state_dir, &config.device, Utc::now());
    for notice in notices.into_iter().chain(history_notices) {
        emit(Utc::now(), &Event::Warning(notice));
    }
    let mut agent = Agent {
        schedule: Schedule::new(config.interval, config.probe_interval),
        policy: Policy {
            mode: config.mode,
            interval: config.interval,
            timeout: config.timeout,
        },
        config,
        transport,
        network,
        journal,
        history,
        seq: 0,
        last_rtt: None,
        measuring: None,
        quality_for_next: None,
    };
    agent.startup(Utc::now());
    match agent.config.mode {
        Mode::Once => Ok(agent.once().await),
        Mode::Daemon => {
            agent.daemon(shutdown).await;
            Ok(Outcome::Success)
        }
    }
}

struct Agent<N: Network, S: Sender> {
    config: AgentConfig,
    policy: Policy,
    transport: S,
    network: N,
    journal: Journal,
    /// Every finished outage (and daily quality), kept for `heartbeat-agent report`.
    history: History,
    schedule: Schedule,
    seq: u64,
    last_rtt: Option<Duration>,
    /// The quality measurement started after the last delivered heartbeat (quality.rs).
    measuring: Option<tokio::task::JoinHandle<Quality>>,
    /// What the next heartbeat carries as `quality`; cleared once delivered.
    quality_for_next: Option<Quality>,
}

impl<N: Network, S: Sender> Agent<N, S> {
    /// Closes what nobody watched and prints every outage recorded or still waiting.
    fn startup(&mut self, now: DateTime<Utc>) {
        let before: Vec<String> = self
            .journal
            .state()
            .pending
            .iter()
            .map(|p| p.id.clone())
            .collect();
        let policy = self.policy;
        let recorded = self.change(|state| state::on_startup(state, now, &policy, new_outage_id));
        for report in &self.journal.state().pending {
            if before.contains(&report.id) {
                emit(now, &Event::Pending { report });
            }
        }
        for report in &recorded {
            emit(now, &Event::Recorded { report });
        }
    }

    async fn once(&mut self) -> Outcome {
        let attempt_at = Utc::now();
        let reports = self.sendable();
        match self.send_reports(&reports).await {
            Ok(delivered) => {
                let finished = self.delivered(attempt_at, &reports, &delivered);
                if let Some(finished) = finished {
                    self.report_finished(&finished).await;
                }
                Outcome::Success
            }
            Err(failure) => {
                let what = failure.to_string();
                self.change(|state| {
                    state::on_first_failure(state, attempt_at, new_outage_id(attempt_at), &what)
                });
                self.record_failure(attempt_at, &failure).await;
                emit(
                    Utc::now(),
                    &Event::Warning(format!(
                        "heartbeat to {} failed: {failure}{}",
                        self.config.display_url(),
                        hint(&failure)
                    )),
                );
                Outcome::HeartbeatFailed
            }
        }
    }

    async fn daemon(&mut self, shutdown: impl Future<Output = ()> + Send + 'static) {
        emit(
            Utc::now(),
            &Event::Started {
                version: VERSION,
                device: &self.config.device,
                url: &self.config.display_url(),
                interval_s: self.config.interval.as_secs(),
                journal: &self.journal.path(),
            },
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
        let mut mark = (Utc::now(), Instant::now());
        loop {
            tokio::select! {
                () = stopped() => break,
                () = tokio::time::sleep_until(next) => {}
            }
            let (wall, mono) = (Utc::now(), Instant::now());
            if schedule::slept(mark, (wall, mono)) {
                // The machine slept: nothing was watched since the last tick.
                let recorded =
                    self.change(|state| state::on_gap(state, mark.0, wall, new_outage_id));
                for report in &recorded {
                    emit(wall, &Event::Recorded { report });
                }
            }
            if let Some(notice) = self.journal.flush() {
                emit(wall, &Event::Warning(notice));
            }
            if let Some(notice) = self.history.flush() {
                emit(wall, &Event::Warning(notice));
            }
            // Journal changes happen between awaits, so abandoning a step here never leaves the
            // journal half-updated.
            let wait = tokio::select! {
                () = stopped() => break,
                wait = self.step() => wait,
            };
            mark = (Utc::now(), Instant::now());
            next = Instant::now() + wait;
        }
        if let Some(notice) = self.history.flush() {
            emit(Utc::now(), &Event::Warning(notice));
        }
        emit(Utc::now(), &Event::Stopped);
    }

    /// One tick. Returns the wait before the next.
    async fn step(&mut self) -> Duration {
        let open = self.journal.state().open.clone();
        match open {
            Some(open) if open.confirmed => {
                if self.schedule.endpoint_allowed(Instant::now()) {
                    self.attempt_recovery(open.start).await
                } else {
                    self.probe_while_backing_off(open.start).await
                }
            }
            _ => self.beat().await,
        }
    }

    /// One scheduled heartbeat while all is well. The first failure is written to the journal at
    /// once as the suspected start; quick retries confirm it before an outage is declared.
    async fn beat(&mut self) -> Duration {
        self.quality_for_next = self.finished_measurement().await;
        if let Some(quality) = self.quality_for_next {
            self.measured(Utc::now(), &quality);
        }
        let first_attempt = Utc::now();
        let reports = self.sendable();
        let mut attempt_at = first_attempt;
        let mut result = self.send_reports(&reports).await;
        if let Err(failure) = &result {
            let what = failure.to_string();
            self.change(|state| {
                state::on_first_failure(state, first_attempt, new_outage_id(first_attempt), &what)
            });
        }
        for (retry, wait) in QUICK_RETRIES.iter().enumerate() {
            let Err(failure) = &result else { break };
            // Answers are definitive: retrying a 401 or a 500 at once only adds load.
            if failure.answered() {
                break;
            }
            self.verbose(format!(
                "attempt {} failed ({failure}); retrying in {}s",
                retry + 1,
                wait.as_secs()
            ));
            tokio::time::sleep(*wait).await;
            attempt_at = Utc::now();
            result = self.send_reports(&reports).await;
        }
        // Quality is sent at most once, and never by the attempts of an outage.
        self.quality_for_next = None;
        match result {
            Ok(delivered) => {
                if let Some(finished) = self.delivered(attempt_at, &reports, &delivered) {
                    self.report_finished(&finished).await;
                }
                self.start_measuring();
                self.schedule.delivered()
            }
            Err(failure) => {
                self.record_failure(attempt_at, &failure).await;
                self.schedule
                    .failed(Instant::now(), failure.answered(), failure.retry_after())
            }
        }
    }

    /// One attempt while an outage is open. It carries no report of the open outage: only once it
    /// is delivered is the end known (this attempt's start), written, and then reported.
    async fn attempt_recovery(&mut self, start: DateTime<Utc>) -> Duration {
        let attempt_at = Utc::now();
        let reports = self.sendable();
        match self.send_reports(&reports).await {
            Ok(delivered) => {
                if let Some(finished) = self.delivered(attempt_at, &reports, &delivered) {
                    self.report_finished(&finished).await;
                }
                // Up again: measure for the next scheduled heartbeat.
                self.start_measuring();
                self.schedule.delivered()
            }
            Err(failure) => {
                let (cause, detail) = probe::diagnose(&self.network, &self.config, &failure).await;
                self.change(|state| {
                    state::on_failure(state, attempt_at, cause, detail.clone(), String::new())
                });
                emit(
                    Utc::now(),
                    &Event::StillDown {
                        seq: self.seq,
                        device: &self.config.device,
                        down_for_s: (attempt_at - start).num_seconds(),
                        cause: cause.as_str(),
                        detail: &detail,
                    },
                );
                self.schedule
                    .failed(Instant::now(), failure.answered(), failure.retry_after())
            }
        }
    }

    /// While the endpoint is left alone (it answered with errors), the internet targets are still
    /// probed every probe interval: a network outage is seen, and recorded, as it happens.
    async fn probe_while_backing_off(&mut self, start: DateTime<Utc>) -> Duration {
        let at = Utc::now();
        let findings = probe::probe(&self.network, &self.config).await;
        if findings.targets_reached == 0 {
            let cause = probe::classify(&findings);
            let detail = format!("while backing off: {}", findings.summary());
            self.change(|state| state::on_failure(state, at, cause, detail.clone(), String::new()));
            emit(
                Utc::now(),
                &Event::StillDown {
                    seq: self.seq,
                    device: &self.config.device,
                    down_for_s: (at - start).num_seconds(),
                    cause: cause.as_str(),
                    detail: &detail,
                },
            );
            self.schedule.network_down();
            return self.schedule.until_next_tick(Instant::now());
        }
        self.schedule.network_up();
        self.verbose(format!(
            "leaving the endpoint alone (it asked for a pause); {}",
            findings.summary()
        ));
        self.schedule.until_next_tick(Instant::now())
    }

    /// A failed attempt, diagnosed and recorded; prints the line.
    async fn record_failure(&mut self, attempt_at: DateTime<Utc>, failure: &AttemptFailure) {
        let (cause, detail) = probe::diagnose(&self.network, &self.config, failure).await;
        let id = new_outage_id(attempt_at);
        let change =
            self.change(|state| state::on_failure(state, attempt_at, cause, detail.clone(), id));
        let event = match change {
            Failure::Started { .. } => Event::OutageStarted {
                seq: self.seq,
                device: &self.config.device,
                cause: cause.as_str(),
                detail: &detail,
            },
            Failure::Continued { start } => Event::StillDown {
                seq: self.seq,
                device: &self.config.device,
                down_for_s: (attempt_at - start).num_seconds(),
                cause: cause.as_str(),
                detail: &detail,
            },
        };
        emit(Utc::now(), &event);
    }

    /// A heartbeat attempted at `attempt_at` got through carrying `reports`. Returns the outage it
    /// ended, if one was open.
    fn delivered(
        &mut self,
        attempt_at: DateTime<Utc>,
        reports: &[OutageReport],
        delivered: &Delivered,
    ) -> Option<OutageReport> {
        let ids: Vec<String> = reports.iter().map(|r| r.id.clone()).collect();
        let finished = self.change(|state| state::on_delivered(state, attempt_at, &ids));
        emit(
            Utc::now(),
            &Event::Ok {
                status: delivered.status,
                rtt_ms: delivered.rtt.as_millis(),
                seq: self.seq,
                device: &self.config.device,
                reported: reports.len(),
            },
        );
        finished
    }

    /// Reports the outage that just ended, at once, if the journal holds it safely.
    async fn report_finished(&mut self, finished: &OutageReport) {
        let reports = self.sendable();
        if !reports.iter().any(|r| r.id == finished.id) {
            self.verbose(format!(
                "outage {} ended; it is reported once the journal is written",
                finished.id
            ));
            return;
        }
        let attempt_at = Utc::now();
        if let Ok(delivered) = self.send_reports(&reports).await {
            emit(Utc::now(), &Event::Back { report: finished });
            self.delivered(attempt_at, &reports, &delivered);
        }
    }

    /// Sends a heartbeat carrying `reports`. If the handler refuses the reports themselves (a 400
    /// while carrying some), they are set aside for a human and the heartbeat is sent without them,
    /// so one bad report can never block every later heartbeat.
    async fn send_reports(
        &mut self,
        reports: &[OutageReport],
    ) -> Result<Delivered, AttemptFailure> {
        match self.send(reports).await {
            Err(AttemptFailure::Status { status: 400, .. }) if !reports.is_empty() => {
                let delivered = self.send(&[]).await?;
                let ids: Vec<String> = reports.iter().map(|r| r.id.clone()).collect();
                let message = match self
                    .journal
                    .set_rejected_aside(reports, "refused by the handler with 400")
                {
                    Ok(path) => format!(
                        "the handler refused outage reports {ids:?}; kept in {}",
                        path.display()
                    ),
                    Err(err) => format!(
                        "the handler refused outage reports {ids:?} and they could not be kept: {err}"
                    ),
                };
                emit(Utc::now(), &Event::Warning(message));
                self.change(|state| state::on_refused(state, &ids));
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
        heartbeat.quality = self.quality_for_next;
        let verbose = self.config.verbose;
        let delivered = self
            .transport
            .send(&heartbeat, |line| {
                if verbose {
                    emit(Utc::now(), &Event::Verbose(line));
                }
            })
            .await?;
        self.last_rtt = Some(delivered.rtt);
        self.quality_for_next = None;
        Ok(delivered)
    }

    /// Starts measuring connection quality for the next heartbeat (only while up: called after a
    /// delivered heartbeat), unless it is switched off. The measurement ends within three quarters
    /// of the interval (quality.rs), so it is done when the next heartbeat goes.
    fn start_measuring(&mut self) {
        if let Some(running) = self.measuring.take() {
            running.abort();
        }
        if self.config.mode == Mode::Daemon
            && let Some(plan) = quality::Plan::from_config(&self.config)
        {
            self.measuring = Some(tokio::spawn(quality::measure(self.network.clone(), plan)));
        }
    }

    /// The measurement started after the last delivered heartbeat, if it has finished; one still
    /// running (the machine was busy or asleep) is dropped rather than waited for.
    async fn finished_measurement(&mut self) -> Option<Quality> {
        let running = self.measuring.take()?;
        if !running.is_finished() {
            running.abort();
            self.verbose("quality measurement still running at the heartbeat; dropped".into());
            return None;
        }
        // Finished, so this does not wait; a measurement that panicked gives nothing.
        running.await.ok()
    }

    /// Every interval's quality passes here once, before the heartbeat that carries it: printed
    /// with `--verbose`, and added to the local history's daily summary (`heartbeat-agent report`).
    fn measured(&mut self, at: DateTime<Utc>, quality: &Quality) {
        self.verbose(quality::summary(quality));
        if let Some(notice) = self.history.record_quality(at, *quality) {
            emit(Utc::now(), &Event::Warning(notice));
        }
    }

    /// The reports that may be sent now: those the journal's disk cannot contradict and the
    /// history file already holds (see `History::may_send`), so an acknowledged report is never
    /// gone from both.
    fn sendable(&self) -> Vec<OutageReport> {
        let mut reports = state::sendable(self.journal.state(), self.journal.saved());
        reports.retain(|report| self.history.may_send(report));
        reports
    }

    /// Adds every finished outage the journal holds to the history (it enters the history when
    /// it finishes, acknowledged or not).
    fn record_history(&mut self) {
        let pending = &self.journal.state().pending;
        if pending
            .iter()
            .all(|report| self.history.has(&report.id) || self.history.may_send(report))
        {
            return;
        }
        if let Some(notice) = self.history.record_outages(pending, Utc::now()) {
            emit(Utc::now(), &Event::Warning(notice));
        }
    }

    /// Applies a journal change and writes it, printing a line when writing starts failing or
    /// works again.
    fn change<T>(&mut self, change: impl FnOnce(&mut JournalState) -> T) -> T {
        let (result, notice) = self.journal.update(change);
        if let Some(notice) = notice {
            emit(Utc::now(), &Event::Warning(notice));
        }
        self.record_history();
        result
    }

    fn verbose(&self, message: String) {
        if self.config.verbose {
            emit(Utc::now(), &Event::Verbose(message));
        }
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
        AttemptFailure::Status {
            status: 401 | 403, ..
        } => " (check HEARTBEAT_KEY / --key)",
        AttemptFailure::Status { status: 404, .. } => {
            " (check HEARTBEAT_URL / --url: it should end in /api/ping)"
        }
        AttemptFailure::Status { status: 429, .. } => {
            " (the cloud side is throttling this agent; it waits as asked)"
        }
        AttemptFailure::Status {
            status: 500..=599, ..
        } => " (the function app is failing; see docs/troubleshooting.md)",
        _ => "",
    }
}

pub use output::human_duration;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::sync::{Arc, Mutex};

    /// An endpoint that always gives the same failure, and notes when it was asked.
    struct Scripted {
        failure: AttemptFailure,
        asked: Arc<Mutex<Vec<Instant>>>,
    }

    impl Sender for Scripted {
        async fn send(
            &self,
            _heartbeat: &Heartbeat,
            _log: impl FnOnce(String) + Send,
        ) -> Result<Delivered, AttemptFailure> {
            self.asked.lock().unwrap().push(Instant::now());
            Err(self.failure.clone())
        }
    }

    /// Every probe target answers: the internet works, only the endpoint fails.
    #[derive(Clone)]
    struct InternetUp;

    impl Network for InternetUp {
        async fn resolves(&self, _host: String, _port: u16) -> bool {
            true
        }
        async fn connects(&self, _target: config::ProbeTarget) -> bool {
            true
        }
    }

    /// The daemon loop in virtual time: seconds (from the first attempt) at which the endpoint is
    /// asked in 100 s while it gives `failure` (interval 60 s, probe interval 5 s).
    async fn attempts_in_100_s(failure: AttemptFailure) -> Vec<u64> {
        let dir = std::env::temp_dir().join(format!(
            "isp-agent-loop-{}-{}",
            std::process::id(),
            RandomState::new().hash_one(1u8)
        ));
        let config = config::Options::try_parse_from([
            "heartbeat-agent",
            "--daemon",
            "--url",
            "http://127.0.0.1:9/api/ping",
            "--state-dir",
            dir.to_str().unwrap(),
            "--probe-targets",
            "127.0.0.1:9",
        ])
        .unwrap()
        .validate()
        .unwrap();
        let asked: Arc<Mutex<Vec<Instant>>> = Default::default();
        let endpoint = Scripted {
            failure,
            asked: Arc::clone(&asked),
        };
        let outcome = run_with(
            config,
            endpoint,
            InternetUp,
            tokio::time::sleep(Duration::from_secs(100)),
        )
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(outcome, Ok(Outcome::Success));
        let asked = asked.lock().unwrap().clone();
        asked.iter().map(|at| (*at - asked[0]).as_secs()).collect()
    }

    /// The loop honours the schedule: errors back off 5, 10, 20, 40 s; a Retry-After of 30 s
    /// spaces every attempt by 30 s; the probes in between never reach the endpoint.
    #[tokio::test(start_paused = true)]
    async fn the_loop_backs_off_in_virtual_time() {
        let failing = AttemptFailure::Status {
            status: 503,
            retry_after: None,
        };
        assert_eq!(attempts_in_100_s(failing).await, [0, 5, 15, 35, 75]);
        let throttled = AttemptFailure::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(30)),
        };
        assert_eq!(attempts_in_100_s(throttled).await, [0, 30, 60, 90]);
    }

    /// An endpoint that is up or down as a flag says, and keeps every heartbeat it is sent.
    struct Switchable {
        down: Arc<Mutex<bool>>,
        beats: Arc<Mutex<Vec<Heartbeat>>>,
    }

    impl Sender for Switchable {
        async fn send(
            &self,
            heartbeat: &Heartbeat,
            _log: impl FnOnce(String) + Send,
        ) -> Result<Delivered, AttemptFailure> {
            self.beats.lock().unwrap().push(heartbeat.clone());
            if *self.down.lock().unwrap() {
                return Err(AttemptFailure::Unreachable("connection refused".into()));
            }
            Ok(Delivered {
                status: 200,
                rtt: Duration::from_millis(5),
            })
        }
    }

    /// Every target connects at once; connections are counted.
    #[derive(Clone, Default)]
    struct CountingNetwork(Arc<std::sync::atomic::AtomicUsize>);

    impl Network for CountingNetwork {
        async fn resolves(&self, _host: String, _port: u16) -> bool {
            true
        }
        async fn connects(&self, _target: config::ProbeTarget) -> bool {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            true
        }
    }

    /// The daemon for `seconds` of virtual time (interval 10 s, two targets) with the endpoint
    /// down from the start or not: the heartbeats sent and the connections the probes made.
    async fn run_for(seconds: u64, down: bool, quality: &str) -> (Vec<Heartbeat>, usize) {
        let dir = std::env::temp_dir().join(format!(
            "isp-agent-quality-{}-{}",
            std::process::id(),
            RandomState::new().hash_one(2u8)
        ));
        let config = config::Options::try_parse_from([
            "heartbeat-agent",
            "--daemon",
            "--url",
            "http://127.0.0.1:9/api/ping",
            "--interval",
            "10",
            "--state-dir",
            dir.to_str().unwrap(),
            "--probe-targets",
            "127.0.0.1:9,127.0.0.1:10",
            "--quality",
            quality,
        ])
        .unwrap()
        .validate()
        .unwrap();
        let beats: Arc<Mutex<Vec<Heartbeat>>> = Default::default();
        let endpoint = Switchable {
            down: Arc::new(Mutex::new(down)),
            beats: Arc::clone(&beats),
        };
        let network = CountingNetwork::default();
        let outcome = run_with(
            config,
            endpoint,
            network.clone(),
            tokio::time::sleep(Duration::from_secs(seconds)),
        )
        .await;
        let _ = std::fs::remove_dir_all(&dir);
        assert_eq!(outcome, Ok(Outcome::Success));
        let beats = beats.lock().unwrap().clone();
        (beats, network.0.load(std::sync::atomic::Ordering::SeqCst))
    }

    /// While up, every heartbeat after the first carries the quality measured since the one
    /// before (3 attempts to each of 2 targets), and those are the only connections made; with
    /// quality off no heartbeat carries any and no connection is made.
    #[tokio::test(start_paused = true)]
    async fn quality_rides_on_the_next_heartbeat_while_up() {
        let (beats, connects) = run_for(35, false, "on").await;
        assert_eq!(beats.len(), 4, "at 0, ~10, ~20, ~30 s");
        assert_eq!(beats[0].quality, None, "nothing measured before the first");
        for beat in &beats[1..] {
            let quality = beat.quality.expect("measured since the last heartbeat");
            assert_eq!((quality.probes, quality.lost), (6, 0));
            assert_eq!(
                quality.rtt_p95_ms,
                Some(0.0),
                "virtual time: instant connects"
            );
        }
        assert_eq!(
            connects,
            6 * 4,
            "one measurement after each delivered heartbeat"
        );

        let (beats, connects) = run_for(35, false, "off").await;
        assert_eq!(beats.len(), 4);
        assert!(beats.iter().all(|b| b.quality.is_none()));
        assert_eq!(connects, 0);
    }

    /// During an outage nothing is measured: no attempt carries quality, and the probes make the
    /// same connections with quality on as with it off (the outage diagnosis only).
    #[tokio::test(start_paused = true)]
    async fn no_quality_is_measured_during_an_outage() {
        let (beats, with_quality) = run_for(60, true, "on").await;
        assert!(beats.len() > 5, "{} attempts", beats.len());
        assert!(beats.iter().all(|b| b.quality.is_none()));
        let (_, without) = run_for(60, true, "off").await;
        assert!(without > 0);
        assert_eq!(with_quality, without);
    }
}
