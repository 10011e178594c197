//! The outage state machine: what happens to the journal when an attempt fails, when a heartbeat
//! is delivered, and when the agent starts (or wakes). Pure functions of (state, event, now); the
//! loop in `mod.rs` performs the effects (saving, printing, sending).
//!
//! The rules (docs/agent.md, "How start, end and agent_offline are decided"):
//! - **Start**: the first failed attempt, persisted at once ([`on_first_failure`]), before the quick
//!   retries and the diagnosis. A quick retry that gets through drops it ([`on_delivered`]).
//! - **End**: the start of the first attempt that gets through ([`on_delivered`]).
//! - **Unwatched time is never blamed on the network.** When the agent starts (or finds it slept)
//!   with an outage open, that outage ends at its last failed attempt, the last moment the agent saw
//!   it, and the time from there to now is `agent_offline` ([`on_startup`], [`on_gap`]). The one
//!   exception is `--once` run by a scheduler: it watches once per interval by design, so an outage
//!   continues from run to run while the runs come on time.
//! - **A report is sent only in a version the disk cannot contradict** ([`sendable`]).

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::config::Mode;
use super::journal::{JournalState, OpenOutage};
use crate::heartbeat::MAX_OUTAGES_PER_HEARTBEAT;
use crate::outage::{Cause, OutageReport};

/// A gap this much longer than expected between two signs of life means the agent was not running.
pub const OFFLINE_SLACK: Duration = Duration::from_secs(30);

/// What the state machine needs to know of the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub mode: Mode,
    pub interval: Duration,
    pub timeout: Duration,
}

impl Policy {
    /// Longest silence after a delivered heartbeat that is not `agent_offline`: two intervals
    /// (one missed beat is not worth an outage) plus slack.
    pub fn offline_allowance(&self) -> chrono::Duration {
        chrono::Duration::from_std(2 * self.interval + OFFLINE_SLACK).unwrap_or_default()
    }

    /// `--once`: the longest wait between two runs for an open outage to continue: one interval
    /// (the scheduler's period) plus one attempt plus slack.
    pub fn once_resume_allowance(&self) -> chrono::Duration {
        chrono::Duration::from_std(self.interval + self.timeout + OFFLINE_SLACK).unwrap_or_default()
    }
}

/// What an observed failure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// A new outage was confirmed, starting at `start`.
    Started { start: DateTime<Utc> },
    /// The open outage continues; it started at `start`.
    Continued { start: DateTime<Utc> },
}

/// The first failed attempt of a heartbeat that was going well: the suspected start of an outage,
/// written before anything else can go wrong. Does nothing while an outage is already open.
pub fn on_first_failure(state: &mut JournalState, at: DateTime<Utc>, id: String, what: &str) {
    if state.open.is_none() {
        state.open = Some(OpenOutage::suspected(id, at, what.to_owned()));
    }
}

/// A failure, diagnosed: confirms a suspected outage, opens one, or adds to the open one.
pub fn on_failure(
    state: &mut JournalState,
    at: DateTime<Utc>,
    cause: Cause,
    detail: String,
    id: String,
) -> Failure {
    match &mut state.open {
        Some(open) if open.confirmed => {
            open.observe(at, cause, detail);
            Failure::Continued { start: open.start }
        }
        Some(open) => {
            open.confirmed = true;
            open.observe(at, cause, detail);
            Failure::Started { start: open.start }
        }
        None => {
            let open = OpenOutage::new(id, at, cause, detail);
            let start = open.start;
            state.open = Some(open);
            Failure::Started { start }
        }
    }
}

/// A heartbeat attempted at `at` was delivered carrying the reports `acknowledged`: they leave
/// the journal, and an open outage ends at `at` and becomes a pending report, returned. (A
/// suspected outage that was never confirmed was a blip: it is dropped.)
pub fn on_delivered(
    state: &mut JournalState,
    at: DateTime<Utc>,
    acknowledged: &[String],
) -> Option<OutageReport> {
    state.pending.retain(|p| !acknowledged.contains(&p.id));
    state.last_success = Some(at);
    let open = state.open.take()?;
    if !open.confirmed {
        return None;
    }
    let finished = open.finish(at);
    state.pending.push(finished.clone());
    Some(finished)
}

/// The handler refused these reports (400): they leave the journal (set aside elsewhere).
pub fn on_refused(state: &mut JournalState, refused: &[String]) {
    state.pending.retain(|p| !refused.contains(&p.id));
    if state.open.as_ref().is_some_and(|o| refused.contains(&o.id)) {
        state.open = None;
    }
}

/// At start-up at `now`: closes what nobody watched and records the time the agent was not
/// running. Returns the outages recorded, to be printed. `id` makes a fresh outage id from a start.
pub fn on_startup(
    state: &mut JournalState,
    now: DateTime<Utc>,
    policy: &Policy,
    id: impl FnMut(DateTime<Utc>) -> String,
) -> Vec<OutageReport> {
    if let Some(open) = &state.open
        && policy.mode == Mode::Once
        && open.confirmed
        && now - open.last_failure <= policy.once_resume_allowance()
        && now >= open.last_failure
    {
        return Vec::new(); // the scheduler's next run, on time: the outage goes on
    }
    match (&state.open, state.last_success) {
        (Some(open), _) => {
            let seen_until = open.last_failure;
            on_gap(state, seen_until, now, id)
        }
        (None, Some(last)) if now - last > policy.offline_allowance() => {
            on_gap(state, last, now, id)
        }
        _ => Vec::new(),
    }
}

/// Nobody watched from `seen_until` to `now` (the agent was not running, or the machine slept):
/// an open outage ends at its last failed attempt, and the unwatched time is `agent_offline`.
pub fn on_gap(
    state: &mut JournalState,
    seen_until: DateTime<Utc>,
    now: DateTime<Utc>,
    mut id: impl FnMut(DateTime<Utc>) -> String,
) -> Vec<OutageReport> {
    let mut recorded = Vec::new();
    let mut offline_from = seen_until;
    if let Some(open) = state.open.take() {
        let mut report = open.finish(open.last_failure);
        if !open.confirmed {
            report.detail = truncate(&format!(
                "the agent stopped before confirming this failure: {}",
                open.detail
            ));
        }
        offline_from = report.end;
        recorded.push(report);
    }
    if now > offline_from {
        recorded.push(OutageReport {
            id: id(offline_from),
            start: offline_from,
            end: now,
            cause: Cause::AgentOffline,
            detail:
                "the agent was not running or the machine was asleep: nobody watched the network"
                    .to_owned(),
        });
    }
    state.pending.extend(recorded.iter().cloned());
    recorded
}

/// The pending reports that may be sent now, at most what one heartbeat may carry: those the disk
/// cannot contradict. A report whose id the saved journal holds as an open outage, or as a pending
/// report with other contents, waits until the journal is written: otherwise a crash would let the
/// next run send the same id again with a different end.
pub fn sendable(state: &JournalState, saved: &JournalState) -> Vec<OutageReport> {
    state
        .pending
        .iter()
        .filter(|report| {
            let open_on_disk = saved.open.as_ref().is_some_and(|o| o.id == report.id);
            let differs_on_disk = saved
                .pending
                .iter()
                .any(|p| p.id == report.id && p != *report);
            !open_on_disk && !differs_on_disk
        })
        .take(MAX_OUTAGES_PER_HEARTBEAT)
        .cloned()
        .collect()
}

fn truncate(text: &str) -> String {
    text.chars().take(crate::outage::MAX_DETAIL_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(seconds: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
            .unwrap()
            .to_utc()
            + chrono::Duration::seconds(seconds)
    }

    fn policy(mode: Mode) -> Policy {
        Policy {
            mode,
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(10),
        }
    }

    fn ids() -> impl FnMut(DateTime<Utc>) -> String {
        let mut n = 0;
        move |_| {
            n += 1;
            format!("gen-{n}")
        }
    }

    fn open_state(start: i64, last: i64) -> JournalState {
        let mut state = JournalState::default();
        on_failure(&mut state, t(start), Cause::Isp, "0/3".into(), "o1".into());
        on_failure(
            &mut state,
            t(last),
            Cause::Isp,
            "0/3".into(),
            "unused".into(),
        );
        state
    }

    fn summary(reports: &[OutageReport]) -> Vec<(String, i64, i64, Cause)> {
        reports
            .iter()
            .map(|r| {
                (
                    r.id.clone(),
                    (r.start - t(0)).num_seconds(),
                    (r.end - t(0)).num_seconds(),
                    r.cause,
                )
            })
            .collect()
    }

    /// Start-up, as a table: (journal, now, mode) → outages recorded.
    #[test]
    fn startup_table() {
        type Row = (
            &'static str,
            JournalState,
            i64,
            Mode,
            Vec<(&'static str, i64, i64, Cause)>,
        );
        let healthy = JournalState {
            last_success: Some(t(0)),
            ..Default::default()
        };
        let mut suspected = JournalState::default();
        on_first_failure(
            &mut suspected,
            t(0),
            "s1".into(),
            "endpoint unreachable: refused",
        );
        let rows: Vec<Row> = vec![
            (
                "fresh journal",
                JournalState::default(),
                1000,
                Mode::Daemon,
                vec![],
            ),
            (
                "quick restart after a beat",
                healthy.clone(),
                150,
                Mode::Daemon,
                vec![],
            ),
            (
                "long stop after a beat",
                healthy.clone(),
                600,
                Mode::Daemon,
                vec![("gen-1", 0, 600, Cause::AgentOffline)],
            ),
            (
                // The case: killed 4 s into an outage, back 41 s later. Nothing after
                // the last failure is blamed on the ISP, however quick the restart.
                "restart during an outage",
                open_state(0, 4),
                45,
                Mode::Daemon,
                vec![
                    ("o1", 0, 4, Cause::Isp),
                    ("gen-1", 4, 45, Cause::AgentOffline),
                ],
            ),
            (
                "died during the quick retries",
                suspected,
                20,
                Mode::Daemon,
                vec![
                    ("s1", 0, 0, Cause::Unknown),
                    ("gen-1", 0, 20, Cause::AgentOffline),
                ],
            ),
            (
                "--once, next run on time",
                open_state(0, 0),
                60,
                Mode::Once,
                vec![],
            ),
            (
                "--once, a run missed",
                open_state(0, 0),
                200,
                Mode::Once,
                vec![
                    ("o1", 0, 0, Cause::Isp),
                    ("gen-1", 0, 200, Cause::AgentOffline),
                ],
            ),
        ];
        for (name, mut state, now, mode, expected) in rows {
            let recorded = on_startup(&mut state, t(now), &policy(mode), ids());
            let expected: Vec<_> = expected
                .into_iter()
                .map(|(id, s, e, c)| (id.to_owned(), s, e, c))
                .collect();
            assert_eq!(summary(&recorded), expected, "{name}");
            assert_eq!(summary(&state.pending), expected, "{name}: all pending");
            if !expected.is_empty() {
                assert_eq!(state.open, None, "{name}");
            }
        }
    }

    /// An outage's life: suspected at the first failure, confirmed, observed, ended by the first
    /// delivered heartbeat at that attempt's time; a blip never becomes an outage.
    #[test]
    fn outage_life() {
        let mut state = JournalState::default();
        on_first_failure(&mut state, t(0), "a".into(), "refused");
        assert!(
            !state.open.as_ref().unwrap().confirmed,
            "persisted unconfirmed"
        );
        assert_eq!(on_delivered(&mut state, t(3), &[]), None, "a blip");
        assert_eq!(state.open, None);

        on_first_failure(&mut state, t(10), "b".into(), "refused");
        let started = on_failure(
            &mut state,
            t(13),
            Cause::Isp,
            "0/3".into(),
            "ignored".into(),
        );
        assert_eq!(started, Failure::Started { start: t(10) });
        let more = on_failure(&mut state, t(18), Cause::Dns, "x".into(), "ignored".into());
        assert_eq!(more, Failure::Continued { start: t(10) });
        on_failure(
            &mut state,
            t(23),
            Cause::Isp,
            "0/3".into(),
            "ignored".into(),
        );
        let finished = on_delivered(&mut state, t(28), &[]).unwrap();
        assert_eq!(summary(&[finished]), [("b".to_owned(), 10, 28, Cause::Isp)]);
        assert_eq!(state.pending.len(), 1);
        on_delivered(&mut state, t(29), &["b".to_owned()]);
        assert!(state.pending.is_empty());
        assert_eq!(state.last_success, Some(t(29)));
    }

    /// Only reports the disk cannot contradict are sent.
    #[test]
    fn sendable_only_what_disk_agrees_with() {
        let mut saved = open_state(0, 4);
        let mut state = saved.clone();
        on_delivered(&mut state, t(9), &[]);
        assert_eq!(
            sendable(&state, &saved),
            vec![],
            "the disk still says open: a crash would resend o1 ending at 4"
        );
        saved = state.clone();
        assert_eq!(sendable(&state, &saved).len(), 1, "written: safe");
        assert_eq!(
            sendable(&state, &JournalState::default()).len(),
            1,
            "unknown to the disk: nothing can contradict it"
        );
        let mut changed = saved.clone();
        changed.pending[0].end = t(5);
        assert_eq!(sendable(&state, &changed), vec![]);
    }
}
