//! The agent's local history: every finished outage and a daily summary of connection quality,
//! kept in `history.json` in the state directory, for `heartbeat-agent report` (which needs no
//! cloud at all) and as a second copy of what the cloud may have missed.
//!
//! - **Evidence is never lost.** An outage enters the history when it finishes (when it becomes a
//!   pending report in the journal), whether or not the cloud ever acknowledges it; the agent sends
//!   a report only once the history file holds it (see [`History::may_send`] for the two
//!   exceptions: a history that cannot be written at all, and reports older than it keeps), so the
//!   journal can never drop a report the history does not have. Recording the same outage again
//!   (the same id) changes nothing.
//! - **Written atomically**, like the journal (a temporary file, flushed, renamed over). An outage
//!   is written at once; quality at most every [`QUALITY_WRITE_EVERY`], at a change of day, and when
//!   the agent stops, so the file is not rewritten every minute.
//! - **Bounded**: at most [`MAX_OUTAGES`] outages and [`MAX_QUALITY_DAYS`] daily summaries (the
//!   oldest go first), and nothing that ended more than [`MAX_AGE_DAYS`] days ago: about 1.5 MB at
//!   worst. What was trimmed is said in the report (`trimmed_before`).
//! - **Survives restarts**: read at start-up. A file that cannot be parsed is kept aside (never
//!   deleted) and a new history started, as for the journal.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::journal::write_atomically;
use super::state_file::{self, Naming, Versioned};
use crate::heartbeat::Quality;
use crate::outage::OutageReport;
use crate::report::{self, AgentOutage, DeviceSeen, QualityDay, ReportInput};

pub const HISTORY_FILE: &str = "history.json";
/// Most outages kept: one an hour for more than half a year.
pub const MAX_OUTAGES: usize = 5000;
/// Most daily quality summaries kept.
pub const MAX_QUALITY_DAYS: usize = 400;
/// Records older than this (by their end) are dropped.
pub const MAX_AGE_DAYS: i64 = 400;
/// Quality is written at most this often (and at a change of day, and when the agent stops).
pub const QUALITY_WRITE_EVERY: Duration = Duration::minutes(10);
const FORMAT_VERSION: u32 = 1;

/// Everything the history file holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryState {
    pub version: u32,
    /// When this history started: the agent watched from then on.
    pub since: DateTime<Utc>,
    /// The device name the agent last ran with.
    pub device: String,
    /// Finished outages, oldest first.
    pub outages: Vec<OutageReport>,
    /// Daily quality summaries (UTC days), oldest first.
    #[serde(default)]
    pub quality_days: Vec<DayQuality>,
    /// Records that ended before this were trimmed to keep the file bounded.
    #[serde(default)]
    pub trimmed_before: Option<DateTime<Utc>>,
}

/// One UTC day of quality, summed so that a new sample is one addition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayQuality {
    pub date: NaiveDate,
    pub samples: u64,
    pub probes: u64,
    pub lost: u64,
    /// Sums and counts of the samples that had a value (a null is "every attempt lost").
    pub rtt_p50_sum: f64,
    pub rtt_p95_sum: f64,
    pub rtt_samples: u64,
    pub rtt_p95_max: Option<f64>,
    pub dns_sum: f64,
    pub dns_samples: u64,
}

/// The history of one state directory, held by the running agent.
#[derive(Debug)]
pub struct History {
    path: PathBuf,
    state: HistoryState,
    /// The outage ids the file is known to hold.
    saved_ids: std::collections::HashSet<String>,
    dirty: bool,
    failing: bool,
    last_write: Option<DateTime<Utc>>,
}

impl History {
    /// Opens (or starts) the history in `dir`. Never fails: a history that cannot be read is set
    /// aside and a new one started; one that cannot be written lives in memory. Returns lines for
    /// the user.
    pub fn open(dir: &Path, device: &str, now: DateTime<Utc>) -> (History, Vec<String>) {
        let path = dir.join(HISTORY_FILE);
        let mut notices = Vec::new();
        let state = match read(&path) {
            Ok(Some(state)) => state,
            Ok(None) => fresh(device, now),
            Err(reason) => {
                notices.push(state_file::set_aside(&path, &NAMING, &reason));
                fresh(device, now)
            }
        };
        let saved_ids = state.outages.iter().map(|o| o.id.clone()).collect();
        let mut history = History {
            path,
            dirty: state.device != device || !fs::exists(dir.join(HISTORY_FILE)).unwrap_or(false),
            state,
            saved_ids,
            failing: false,
            last_write: None,
        };
        history.state.device = device.to_owned();
        notices.extend(history.flush());
        (history, notices)
    }

    pub fn state(&self) -> &HistoryState {
        &self.state
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this outage may be sent (and so leave the journal once acknowledged): the history
    /// file holds it, or it is older than what the bounded history keeps (trimmed), or the history
    /// cannot be written at all (a full disk: it lives in memory, like the journal, and reports must
    /// not wait for a disk that may never come back).
    pub fn may_send(&self, report: &OutageReport) -> bool {
        self.failing
            || self.saved_ids.contains(&report.id)
            || self.state.trimmed_before.is_some_and(|t| report.end <= t)
    }

    /// Whether the history (in memory) has recorded this outage id.
    pub fn has(&self, id: &str) -> bool {
        self.state.outages.iter().any(|o| o.id == id)
    }

    /// Records finished outages (those it does not hold yet) and writes the file at once.
    pub fn record_outages<'a>(
        &mut self,
        reports: impl IntoIterator<Item = &'a OutageReport>,
        now: DateTime<Utc>,
    ) -> Option<String> {
        for report in reports {
            if let Some(kept) = self.state.outages.iter_mut().find(|o| o.id == report.id) {
                if kept != report {
                    *kept = report.clone();
                    self.dirty = true;
                }
                continue;
            }
            let at = self
                .state
                .outages
                .partition_point(|o| (o.start, &o.id) <= (report.start, &report.id));
            self.state.outages.insert(at, report.clone());
            self.dirty = true;
        }
        if self.dirty {
            self.trim(now);
        }
        self.flush()
    }

    /// Adds one heartbeat's quality to the summary of its UTC day. Writes the file at most every
    /// [`QUALITY_WRITE_EVERY`] or when the day changes; [`History::flush`] writes the rest (the
    /// agent calls it on every tick and when it stops). Returns a line for the user as
    /// [`History::flush`] does.
    pub fn record_quality(&mut self, at: DateTime<Utc>, sample: Quality) -> Option<String> {
        let date = at.date_naive();
        let new_day = self
            .state
            .quality_days
            .last()
            .is_none_or(|d| d.date != date);
        if new_day {
            self.state.quality_days.push(DayQuality {
                date,
                samples: 0,
                probes: 0,
                lost: 0,
                rtt_p50_sum: 0.0,
                rtt_p95_sum: 0.0,
                rtt_samples: 0,
                rtt_p95_max: None,
                dns_sum: 0.0,
                dns_samples: 0,
            });
            self.trim(at);
        }
        let day = self.state.quality_days.last_mut()?;
        let finite = |v: Option<f64>| v.filter(|v| v.is_finite() && *v >= 0.0);
        day.samples += 1;
        day.probes += u64::from(sample.probes);
        day.lost += u64::from(sample.lost.min(sample.probes));
        if let (Some(p50), Some(p95)) = (finite(sample.rtt_p50_ms), finite(sample.rtt_p95_ms)) {
            day.rtt_p50_sum += p50;
            day.rtt_p95_sum += p95;
            day.rtt_samples += 1;
            day.rtt_p95_max = Some(day.rtt_p95_max.map_or(p95, |m| m.max(p95)));
        }
        if let Some(dns) = finite(sample.dns_ms) {
            day.dns_sum += dns;
            day.dns_samples += 1;
        }
        self.dirty = true;
        let due = new_day
            || self
                .last_write
                .is_none_or(|w| at - w >= QUALITY_WRITE_EVERY);
        if due { self.flush() } else { None }
    }

    /// Writes the file if a write is owed. Returns a line for the user when writing fails for the
    /// first time, or works again after failing.
    pub fn flush(&mut self) -> Option<String> {
        if !self.dirty {
            return None;
        }
        let written = serde_json::to_vec_pretty(&self.state)
            .map_err(io::Error::other)
            .and_then(|bytes| write_atomically(&self.path, &bytes));
        match written {
            Ok(()) => {
                self.dirty = false;
                self.last_write = Some(Utc::now());
                self.saved_ids = self.state.outages.iter().map(|o| o.id.clone()).collect();
                std::mem::replace(&mut self.failing, false).then(|| {
                    format!("the history {} is written again", self.path.display())
                })
            }
            Err(err) => (!std::mem::replace(&mut self.failing, true)).then(|| {
                format!(
                    "cannot write the history {} ({err}); outages are sent only once it is written, and it is tried again on every change",
                    self.path.display()
                )
            }),
        }
    }

    fn trim(&mut self, now: DateTime<Utc>) {
        let oldest = now - Duration::days(MAX_AGE_DAYS);
        let mut trimmed = self.state.trimmed_before;
        let mut note = |end: DateTime<Utc>| trimmed = Some(trimmed.map_or(end, |t| t.max(end)));
        while let Some(first) = self.state.outages.first() {
            if self.state.outages.len() <= MAX_OUTAGES && first.end >= oldest {
                break;
            }
            note(first.end);
            self.state.outages.remove(0);
        }
        while let Some(first) = self.state.quality_days.first() {
            let end = day_end(first.date);
            if self.state.quality_days.len() <= MAX_QUALITY_DAYS && end >= oldest {
                break;
            }
            note(end);
            self.state.quality_days.remove(0);
        }
        self.state.trimmed_before = trimmed;
    }
}

fn day_end(date: NaiveDate) -> DateTime<Utc> {
    (date + Duration::days(1))
        .and_hms_opt(0, 0, 0)
        .unwrap_or_default()
        .and_utc()
}

fn fresh(device: &str, now: DateTime<Utc>) -> HistoryState {
    HistoryState {
        version: FORMAT_VERSION,
        since: now,
        device: device.to_owned(),
        outages: Vec::new(),
        quality_days: Vec::new(),
        trimmed_before: None,
    }
}

/// The history file's contents: `None` when there is none yet, `Err` with the reason when it
/// cannot be used (read bounded, as `state_file` reads both state files).
pub fn read(path: &Path) -> Result<Option<HistoryState>, String> {
    state_file::read(path, FORMAT_VERSION)
}

impl Versioned for HistoryState {
    fn version(&self) -> u32 {
        self.version
    }
}

const NAMING: Naming<'static> = Naming {
    file_name: HISTORY_FILE,
    what: "history",
    short: "history",
    unusable: "unusable",
};

impl HistoryState {
    /// The report input of the period `[from, to)`, as seen from `now`.
    pub fn to_input(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> ReportInput {
        let device = self.device.clone();
        let mut notes = vec![
            "the agent does not see its public IP address; IP changes are in the cloud's report"
                .to_owned(),
        ];
        if let Some(trimmed) = self.trimmed_before.filter(|t| *t > from) {
            notes.push(format!(
                "the history was trimmed to stay bounded: records that ended before {} are gone",
                trimmed.format("%Y-%m-%d %H:%M UTC")
            ));
        }
        ReportInput {
            version: report::INPUT_VERSION,
            source: "agent".to_owned(),
            from,
            to,
            generated_at: now,
            silence_minutes: None,
            devices: vec![DeviceSeen {
                device: device.clone(),
                first_seen: Some(self.since),
                last_seen: None,
            }],
            agent_outages: self
                .outages
                .iter()
                .filter(|o| o.end > from && o.start < to)
                .map(|o| AgentOutage {
                    device: device.clone(),
                    id: o.id.clone(),
                    start: o.start,
                    end: o.end,
                    cause: o.cause,
                    detail: o.detail.clone(),
                })
                .collect(),
            gaps: Vec::new(),
            ip_changes: Vec::new(),
            quality_days: self
                .quality_days
                .iter()
                .filter(|d| {
                    day_end(d.date) > from
                        && d.date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() < to
                })
                .map(|d| QualityDay {
                    device: device.clone(),
                    date: d.date,
                    samples: d.samples,
                    probes: d.probes,
                    lost: d.lost,
                    rtt_p50_ms: (d.rtt_samples > 0).then(|| d.rtt_p50_sum / d.rtt_samples as f64),
                    rtt_p95_ms: (d.rtt_samples > 0).then(|| d.rtt_p95_sum / d.rtt_samples as f64),
                    rtt_p95_max_ms: d.rtt_p95_max,
                    dns_ms: (d.dns_samples > 0).then(|| d.dns_sum / d.dns_samples as f64),
                })
                .collect(),
            notes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outage::Cause;

    fn temp_dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("isp-history-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn outage(id: &str, start: DateTime<Utc>, minutes: i64) -> OutageReport {
        OutageReport {
            id: id.to_owned(),
            start,
            end: start + Duration::minutes(minutes),
            cause: Cause::Isp,
            detail: String::new(),
        }
    }

    /// Outages and quality survive a restart; the same outage twice is kept once; the file holds
    /// an outage as soon as it is recorded.
    #[test]
    fn survives_a_restart_and_keeps_each_outage_once() {
        let dir = temp_dir("restart");
        let now = Utc::now();
        let (mut history, notices) = History::open(&dir, "den", now);
        assert!(notices.is_empty(), "{notices:?}");
        let first = outage("a1", now - Duration::hours(2), 5);
        assert_eq!(history.record_outages([&first, &first], now), None);
        assert!(history.may_send(&first) && history.has("a1"));
        let sample = Quality {
            probes: 4,
            lost: 1,
            rtt_p50_ms: Some(10.0),
            rtt_p95_ms: Some(30.0),
            dns_ms: None,
        };
        history.record_quality(now, sample);
        history.record_quality(
            now,
            Quality {
                rtt_p50_ms: None,
                rtt_p95_ms: None,
                ..sample
            },
        );
        history.flush();
        drop(history);
        let (history, _) = History::open(&dir, "den", now);
        let state = history.state();
        assert_eq!(state.outages, [first]);
        let day = &state.quality_days[0];
        assert_eq!(
            (day.samples, day.probes, day.lost, day.rtt_samples),
            (2, 8, 2, 1)
        );
        let input = state.to_input(now - Duration::days(1), now + Duration::hours(1), now);
        assert_eq!(input.quality_days[0].rtt_p95_ms, Some(30.0));
        assert_eq!(input.agent_outages.len(), 1);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// The bound: the oldest outages go first, and the report says records were trimmed.
    #[test]
    fn is_bounded() {
        let dir = temp_dir("bound");
        let now = Utc::now();
        let (mut history, _) = History::open(&dir, "den", now);
        let start = now - Duration::days(300);
        let many: Vec<_> = (0..MAX_OUTAGES + 10)
            .map(|i| {
                outage(
                    &format!("o{i}"),
                    start + Duration::minutes(10 * i as i64),
                    1,
                )
            })
            .collect();
        history.record_outages(&many, now);
        let old = outage("ancient", now - Duration::days(MAX_AGE_DAYS + 1), 1);
        history.record_outages([&old], now);
        let state = history.state();
        assert_eq!(state.outages.len(), MAX_OUTAGES);
        assert_eq!(state.outages[0].id, "o10");
        assert_eq!(state.trimmed_before, Some(many[9].end));
        let input = state.to_input(start - Duration::days(1), now, now);
        assert!(
            input
                .notes
                .iter()
                .any(|n| n.starts_with("the history was trimmed"))
        );
        assert!(fs::metadata(history.path()).unwrap().len() < 2_000_000);
        fs::remove_dir_all(&dir).unwrap();
    }

    /// A corrupt history is kept aside, not deleted, and a new one started.
    #[test]
    fn a_corrupt_history_is_set_aside() {
        let dir = temp_dir("corrupt");
        fs::write(dir.join(HISTORY_FILE), b"{half").unwrap();
        let (history, notices) = History::open(&dir, "den", Utc::now());
        assert!(notices[0].contains("is unusable"), "{notices:?}");
        assert!(history.state().outages.is_empty());
        let kept = fs::read_dir(&dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .contains(".corrupt-")
            })
            .count();
        assert_eq!(kept, 1);
        fs::remove_dir_all(&dir).unwrap();
    }
}
