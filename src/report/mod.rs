//! The outage report: one model and one computation for both witnesses, the agent's local history
//! (`heartbeat-agent report`) and the cloud's rows (`scripts/report.sh`), so that their numbers
//! come from one implementation.
//!
//! Both sides first gather a [`ReportInput`] (JSON, documented in docs/queries.md, "Report input"):
//! the period, the outages the agent reported, the heartbeat gaps the cloud saw, IP changes and daily
//! quality rows. [`Report::compute`] turns it into per-device numbers and rows; [`render`] prints
//! them as a table, JSON (schema `isp-monitor-report` version [`SCHEMA_VERSION`]), CSV (RFC 4180) or
//! one self-contained HTML page.
//!
//! The rules:
//! - Only `isp` and `dns` outages are the ISP's downtime; `lan`, `agent_offline`, `cloud`/`config`
//!   and `unknown` are shown apart, "not the ISP's doing".
//! - **Time nobody observed is never blamed on the ISP**: `agent_offline` time is left out of the
//!   observed time, and uptime is `(observed − ISP downtime) / observed`. A device is observed from
//!   the later of the period start and its first sign of life (history start, first heartbeat) to the
//!   earlier of the period end and the time the report is made.
//! - A cloud gap (no heartbeat for longer than the silence threshold) and an agent report of the
//!   same device are the same outage when they overlap: one row, witness `both`, the agent's times
//!   and cause. A gap no report covers is a row of its own, witness `cloud`, cause `unknown`.
//! - Times count in whole seconds (fractions dropped), as the cloud's telemetry records an outage's
//!   start and end, so that both witnesses of the same outages give the same numbers.

pub mod cli;
pub mod render;

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::outage::Cause;

/// The version of [`ReportInput`]'s JSON. A reader refuses other versions with a clear message.
pub const INPUT_VERSION: u32 = 1;
/// The version of the report's JSON schema (`--format json`). Fields are only ever added within a
/// version; renaming or removing one makes a new version.
pub const SCHEMA_VERSION: u32 = 1;
/// The name of the report's JSON schema, its `schema` field.
pub const SCHEMA_NAME: &str = "isp-monitor-report";
/// Longest period a report covers: a little over a year, like the agent's history.
pub const MAX_PERIOD: Duration = Duration::days(400);
/// Most rows of each kind a report input may hold: bounded, so a hostile file cannot exhaust memory.
pub const MAX_INPUT_ROWS: usize = 100_000;

/// What a witness gathered for a period: the report's only input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReportInput {
    /// [`INPUT_VERSION`].
    pub version: u32,
    /// Who gathered the rows: `agent` (the local history), `azure` or `aws`.
    pub source: String,
    /// The period, start included, end excluded.
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// When the rows were gathered: nothing after it was observed.
    pub generated_at: DateTime<Utc>,
    /// The cloud's silence threshold (a gap longer than this is an outage); none for the agent.
    #[serde(default)]
    pub silence_minutes: Option<u32>,
    /// Each device's first sign of life the witness knows of (and its last).
    #[serde(default)]
    pub devices: Vec<DeviceSeen>,
    /// The outages the agent reported (from its history, or the cloud's `Outage` events).
    #[serde(default)]
    pub agent_outages: Vec<AgentOutage>,
    /// Heartbeat gaps longer than the silence threshold the cloud saw; `end` empty while ongoing.
    #[serde(default)]
    pub gaps: Vec<Gap>,
    #[serde(default)]
    pub ip_changes: Vec<IpChange>,
    #[serde(default)]
    pub quality_days: Vec<QualityDay>,
    /// Lines for the reader (e.g. the history was trimmed, the agent cannot see its public IP).
    #[serde(default)]
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceSeen {
    pub device: String,
    #[serde(default)]
    pub first_seen: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_seen: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentOutage {
    pub device: String,
    #[serde(default)]
    pub id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub cause: Cause,
    #[serde(default)]
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Gap {
    pub device: String,
    /// The last heartbeat before the silence.
    pub start: DateTime<Utc>,
    /// The first heartbeat after it; `None` while the device is still silent.
    #[serde(default)]
    pub end: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpChange {
    pub device: String,
    pub at: DateTime<Utc>,
    pub from: String,
    pub to: String,
}

/// One device's connection quality over one UTC day (from the heartbeats' `quality`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QualityDay {
    pub device: String,
    pub date: NaiveDate,
    /// Heartbeats that carried quality.
    pub samples: u64,
    /// Connect attempts made, and lost.
    pub probes: u64,
    pub lost: u64,
    /// Mean of the heartbeats' median round trips.
    #[serde(default)]
    pub rtt_p50_ms: Option<f64>,
    /// Mean of the heartbeats' 95th percentiles, and the worst one.
    #[serde(default)]
    pub rtt_p95_ms: Option<f64>,
    #[serde(default)]
    pub rtt_p95_max_ms: Option<f64>,
    /// Mean DNS resolution time.
    #[serde(default)]
    pub dns_ms: Option<f64>,
}

/// Which witness saw an outage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Witness {
    /// Only the agent's report.
    Agent,
    /// Only a heartbeat gap in the cloud.
    Cloud,
    /// Both, matched by overlap.
    Both,
}

impl Witness {
    pub fn as_str(self) -> &'static str {
        match self {
            Witness::Agent => "agent",
            Witness::Cloud => "cloud",
            Witness::Both => "both",
        }
    }
}

/// The computed report: what every format shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`SCHEMA_NAME`] and [`SCHEMA_VERSION`].
    pub schema: String,
    pub version: u32,
    pub source: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub generated_at: DateTime<Utc>,
    pub silence_minutes: Option<u32>,
    pub devices: Vec<DeviceReport>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceReport {
    pub device: String,
    /// The part of the period this device was watched from and to (see the module rules).
    pub observed_from: DateTime<Utc>,
    pub observed_to: DateTime<Utc>,
    pub period_s: i64,
    /// `period_s` less the time the agent was not running.
    pub observed_s: i64,
    /// `(observed − ISP downtime) / observed` in percent, two decimals; `None` when nothing was observed.
    pub uptime_pct: Option<f64>,
    /// Downtime of the ISP's doing (`isp`, `dns`): total, count, longest.
    pub isp_downtime_s: i64,
    pub isp_outages: usize,
    pub longest_isp_outage_s: i64,
    /// Every outage listed, whatever its cause: count, total time, longest.
    pub outages_total: usize,
    pub downtime_s: i64,
    pub longest_outage_s: i64,
    /// The time that was not the ISP's doing.
    pub not_isp: NotIsp,
    pub outages: Vec<OutageRow>,
    pub ip_changes: Vec<IpChangeRow>,
    pub days: Vec<DayRow>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotIsp {
    pub lan_s: i64,
    pub agent_offline_s: i64,
    /// `cloud` and `config`: the monitoring side.
    pub cloud_side_s: i64,
    /// `unknown`, and cloud gaps no agent report explains.
    pub undetermined_s: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutageRow {
    /// Clipped to the observed part of the period (`clipped` says so).
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// A cloud gap still going on when the report was made.
    pub ongoing: bool,
    pub clipped: bool,
    pub duration_s: i64,
    pub cause: Cause,
    pub cause_in_words: String,
    /// Counted as the ISP's downtime.
    pub isps: bool,
    pub witness: Witness,
    pub id: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IpChangeRow {
    pub at: DateTime<Utc>,
    pub from: String,
    pub to: String,
}

/// One UTC day of one device: uptime as above, and quality when the heartbeats carried it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayRow {
    pub date: NaiveDate,
    pub observed_s: i64,
    pub uptime_pct: Option<f64>,
    pub isp_downtime_s: i64,
    pub quality: Option<DayQuality>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayQuality {
    pub samples: u64,
    pub probes: u64,
    pub lost: u64,
    pub loss_pct: f64,
    pub rtt_p50_ms: Option<f64>,
    pub rtt_p95_ms: Option<f64>,
    pub rtt_p95_max_ms: Option<f64>,
    pub dns_ms: Option<f64>,
}

impl ReportInput {
    /// Parses and checks a report input: version, period, row counts, each row's times.
    pub fn from_json(bytes: &[u8]) -> Result<ReportInput, String> {
        let value: serde_json::Value =
            serde_json::from_slice(bytes).map_err(|err| format!("not JSON: {err}"))?;
        match value.get("version").and_then(serde_json::Value::as_u64) {
            Some(v) if v == u64::from(INPUT_VERSION) => {}
            Some(v) => {
                return Err(format!(
                    "input version {v} is not {INPUT_VERSION}: use the report.sh and heartbeat-agent of one release"
                ));
            }
            None => return Err("`version` is missing: not a report input".to_owned()),
        }
        let input: ReportInput =
            serde_json::from_value(value).map_err(|err| format!("not a report input: {err}"))?;
        input.check()?;
        Ok(input)
    }

    pub fn check(&self) -> Result<(), String> {
        if self.to <= self.from {
            return Err("the period ends before it starts: `to` must be after `from`".to_owned());
        }
        if self.to - self.from > MAX_PERIOD {
            return Err("the period is longer than 400 days: report a shorter one".to_owned());
        }
        let rows = [
            ("devices", self.devices.len()),
            ("agent_outages", self.agent_outages.len()),
            ("gaps", self.gaps.len()),
            ("ip_changes", self.ip_changes.len()),
            ("quality_days", self.quality_days.len()),
        ];
        for (name, count) in rows {
            if count > MAX_INPUT_ROWS {
                return Err(format!(
                    "`{name}` holds {count} rows; the limit is {MAX_INPUT_ROWS}"
                ));
            }
        }
        if let Some(bad) = self.agent_outages.iter().find(|o| o.end < o.start) {
            return Err(format!("outage {:?} ends before it starts", bad.id));
        }
        if let Some(bad) = self
            .gaps
            .iter()
            .find(|g| g.end.is_some_and(|e| e < g.start))
        {
            return Err(format!(
                "a gap of device {:?} ends before it starts",
                bad.device
            ));
        }
        Ok(())
    }
}

/// A half-open stretch of time.
type Span = (DateTime<Utc>, DateTime<Utc>);

/// Milliseconds covered by the union of `spans` within `[lo, hi)`.
fn covered_ms(spans: &[Span], lo: DateTime<Utc>, hi: DateTime<Utc>) -> i64 {
    let mut clipped: Vec<Span> = spans
        .iter()
        .map(|&(s, e)| (s.max(lo), e.min(hi)))
        .filter(|(s, e)| s < e)
        .collect();
    clipped.sort();
    let mut total = 0;
    let mut current: Option<Span> = None;
    for (s, e) in clipped {
        current = match current {
            Some((cs, ce)) if s <= ce => Some((cs, ce.max(e))),
            Some((cs, ce)) => {
                total += (ce - cs).num_milliseconds();
                Some((s, e))
            }
            None => Some((s, e)),
        };
    }
    if let Some((cs, ce)) = current {
        total += (ce - cs).num_milliseconds();
    }
    total
}

fn seconds(ms: i64) -> i64 {
    (ms + 500).div_euclid(1000)
}

fn percent(part_ms: i64, whole_ms: i64) -> Option<f64> {
    (whole_ms > 0).then(|| (10_000.0 * part_ms as f64 / whole_ms as f64).round() / 100.0)
}

fn day_start(date: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&date.and_hms_opt(0, 0, 0).unwrap_or_default())
}

impl Report {
    /// The report of one input. Pure: the same input gives the same report.
    pub fn compute(input: &ReportInput) -> Report {
        let input = &whole_seconds(input);
        let mut names: BTreeSet<&str> = BTreeSet::new();
        names.extend(input.devices.iter().map(|d| d.device.as_str()));
        names.extend(input.agent_outages.iter().map(|o| o.device.as_str()));
        names.extend(input.gaps.iter().map(|g| g.device.as_str()));
        let devices = names
            .into_iter()
            .map(|name| device_report(input, name))
            .collect();
        Report {
            schema: SCHEMA_NAME.to_owned(),
            version: SCHEMA_VERSION,
            source: input.source.clone(),
            from: input.from,
            to: input.to,
            generated_at: input.generated_at,
            silence_minutes: input.silence_minutes,
            devices,
            notes: input.notes.clone(),
        }
    }
}

/// The input with every time truncated to the whole second.
fn whole_seconds(input: &ReportInput) -> ReportInput {
    use chrono::SubsecRound;
    let s = |t: DateTime<Utc>| t.trunc_subsecs(0);
    let mut input = input.clone();
    input.from = s(input.from);
    input.to = s(input.to);
    input.generated_at = s(input.generated_at);
    for d in &mut input.devices {
        d.first_seen = d.first_seen.map(s);
        d.last_seen = d.last_seen.map(s);
    }
    for o in &mut input.agent_outages {
        (o.start, o.end) = (s(o.start), s(o.end));
    }
    for g in &mut input.gaps {
        (g.start, g.end) = (s(g.start), g.end.map(s));
    }
    for c in &mut input.ip_changes {
        c.at = s(c.at);
    }
    input
}

fn device_report(input: &ReportInput, name: &str) -> DeviceReport {
    let first_seen = input
        .devices
        .iter()
        .filter(|d| d.device == name)
        .filter_map(|d| d.first_seen)
        .min();
    let observed_from = first_seen.map_or(input.from, |f| f.max(input.from));
    let observed_to = input.to.min(input.generated_at).max(observed_from);
    let (lo, hi) = (observed_from, observed_to);

    let agent: Vec<&AgentOutage> = input
        .agent_outages
        .iter()
        .filter(|o| o.device == name)
        .collect();
    let gaps: Vec<(Span, bool)> = input
        .gaps
        .iter()
        .filter(|g| g.device == name)
        .map(|g| {
            (
                (g.start, g.end.unwrap_or(input.generated_at)),
                g.end.is_none(),
            )
        })
        .collect();
    let overlaps =
        |(s, e): Span, (gs, ge): Span| gs < e.max(s + Duration::milliseconds(1)) && s < ge;

    let mut rows: Vec<OutageRow> = Vec::new();
    let mut push =
        |span: Span, ongoing: bool, cause: Cause, witness: Witness, id: &str, detail: &str| {
            let (start, end) = (span.0.max(lo), span.1.min(hi));
            if start > end || (start == end && span.0 != span.1) || span.1 < lo || span.0 >= hi {
                return;
            }
            rows.push(OutageRow {
                start,
                end,
                ongoing,
                clipped: (start, end) != span,
                duration_s: seconds((end - start).num_milliseconds()),
                cause,
                cause_in_words: cause.in_words().to_owned(),
                isps: cause.is_isps(),
                witness,
                id: id.to_owned(),
                detail: detail.to_owned(),
            });
        };
    for outage in &agent {
        let span = (outage.start, outage.end);
        let seen_by_cloud = gaps.iter().any(|(gap, _)| overlaps(span, *gap));
        let witness = if seen_by_cloud {
            Witness::Both
        } else {
            Witness::Agent
        };
        push(
            span,
            false,
            outage.cause,
            witness,
            &outage.id,
            &outage.detail,
        );
    }
    for (gap, ongoing) in &gaps {
        if !agent.iter().any(|o| overlaps((o.start, o.end), *gap)) {
            let detail = "no heartbeat reached the cloud, and no agent report explains it";
            push(*gap, *ongoing, Cause::Unknown, Witness::Cloud, "", detail);
        }
    }
    rows.sort_by_key(|r| (r.start, r.end));

    let spans_of = |pick: &dyn Fn(Cause) -> bool| -> Vec<Span> {
        rows.iter()
            .filter(|r| pick(r.cause))
            .map(|r| (r.start, r.end))
            .collect()
    };
    let offline = spans_of(&|c| c == Cause::AgentOffline);
    let isp = spans_of(&|c: Cause| c.is_isps());
    // Time in both an ISP outage and an agent-offline one is not observed, so not the ISP's.
    let isp_ms = |lo, hi| {
        let both: Vec<Span> = isp.iter().chain(offline.iter()).copied().collect();
        covered_ms(&both, lo, hi) - covered_ms(&offline, lo, hi)
    };
    let period_ms = (hi - lo).num_milliseconds();
    let offline_ms = covered_ms(&offline, lo, hi);
    let observed_ms = period_ms - offline_ms;
    let isp_down_ms = isp_ms(lo, hi);
    let not_isp = NotIsp {
        lan_s: seconds(covered_ms(&spans_of(&|c| c == Cause::Lan), lo, hi)),
        agent_offline_s: seconds(offline_ms),
        cloud_side_s: seconds(covered_ms(
            &spans_of(&|c| matches!(c, Cause::Cloud | Cause::Config)),
            lo,
            hi,
        )),
        undetermined_s: seconds(covered_ms(&spans_of(&|c| c == Cause::Unknown), lo, hi)),
    };
    let all: Vec<Span> = rows.iter().map(|r| (r.start, r.end)).collect();

    let mut days = Vec::new();
    let mut date = lo.date_naive();
    while day_start(date) < hi {
        let (day_lo, day_hi) = (
            day_start(date).max(lo),
            day_start(date + Duration::days(1)).min(hi),
        );
        let day_observed =
            (day_hi - day_lo).num_milliseconds() - covered_ms(&offline, day_lo, day_hi);
        let day_isp = isp_ms(day_lo, day_hi);
        let quality = input
            .quality_days
            .iter()
            .find(|q| q.device == name && q.date == date)
            .map(|q| DayQuality {
                samples: q.samples,
                probes: q.probes,
                lost: q.lost,
                loss_pct: if q.probes > 0 {
                    (10_000.0 * q.lost as f64 / q.probes as f64).round() / 100.0
                } else {
                    0.0
                },
                rtt_p50_ms: q.rtt_p50_ms.map(round1),
                rtt_p95_ms: q.rtt_p95_ms.map(round1),
                rtt_p95_max_ms: q.rtt_p95_max_ms.map(round1),
                dns_ms: q.dns_ms.map(round1),
            });
        days.push(DayRow {
            date,
            observed_s: seconds(day_observed),
            uptime_pct: percent(day_observed - day_isp, day_observed),
            isp_downtime_s: seconds(day_isp),
            quality,
        });
        date += Duration::days(1);
        if days.len() > 400 {
            break;
        }
    }

    let ip_changes = input
        .ip_changes
        .iter()
        .filter(|c| c.device == name && c.at >= lo && c.at < hi)
        .map(|c| IpChangeRow {
            at: c.at,
            from: c.from.clone(),
            to: c.to.clone(),
        })
        .collect();

    let isp_rows: Vec<&OutageRow> = rows.iter().filter(|r| r.isps).collect();
    DeviceReport {
        device: name.to_owned(),
        observed_from: lo,
        observed_to: hi,
        period_s: seconds(period_ms),
        observed_s: seconds(observed_ms),
        uptime_pct: percent(observed_ms - isp_down_ms, observed_ms),
        isp_downtime_s: seconds(isp_down_ms),
        isp_outages: isp_rows.len(),
        longest_isp_outage_s: isp_rows.iter().map(|r| r.duration_s).max().unwrap_or(0),
        outages_total: rows.len(),
        downtime_s: seconds(covered_ms(&all, lo, hi)),
        longest_outage_s: rows.iter().map(|r| r.duration_s).max().unwrap_or(0),
        not_isp,
        outages: rows,
        ip_changes,
        days,
    }
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn outage(start: &str, end: &str, cause: Cause) -> AgentOutage {
        AgentOutage {
            device: "den".into(),
            id: format!("id-{start}"),
            start: t(start),
            end: t(end),
            cause,
            detail: String::new(),
        }
    }

    /// November 2026 (30 days), one ISP outage of 2 h, one LAN outage of 30 min, the agent off 1 day.
    pub(super) fn month() -> ReportInput {
        ReportInput {
            version: INPUT_VERSION,
            source: "agent".into(),
            from: t("2026-11-01T00:00:00Z"),
            to: t("2026-12-01T00:00:00Z"),
            generated_at: t("2026-12-01T08:00:00Z"),
            silence_minutes: None,
            devices: vec![DeviceSeen {
                device: "den".into(),
                first_seen: Some(t("2026-10-01T00:00:00Z")),
                last_seen: None,
            }],
            agent_outages: vec![
                outage("2026-11-03T10:00:00Z", "2026-11-03T12:00:00Z", Cause::Isp),
                outage("2026-11-10T08:00:00Z", "2026-11-10T08:30:00Z", Cause::Lan),
                outage(
                    "2026-11-20T00:00:00Z",
                    "2026-11-21T00:00:00Z",
                    Cause::AgentOffline,
                ),
            ],
            gaps: vec![],
            ip_changes: vec![],
            quality_days: vec![],
            notes: vec![],
        }
    }

    /// Uptime leaves the unwatched day out: (29 days − 2 h) / 29 days; LAN and offline time apart.
    #[test]
    fn the_isp_is_blamed_only_for_its_own_outages() {
        let report = Report::compute(&month());
        let den = &report.devices[0];
        assert_eq!(den.period_s, 30 * 86400);
        assert_eq!(den.observed_s, 29 * 86400);
        assert_eq!(den.isp_downtime_s, 7200);
        assert_eq!((den.isp_outages, den.longest_isp_outage_s), (1, 7200));
        assert_eq!(den.uptime_pct, Some(99.71)); // 1 - 7200 / 2505600
        assert_eq!(
            den.not_isp,
            NotIsp {
                lan_s: 1800,
                agent_offline_s: 86400,
                cloud_side_s: 0,
                undetermined_s: 0
            }
        );
        assert_eq!((den.outages_total, den.longest_outage_s), (3, 86400));
        assert_eq!(den.downtime_s, 7200 + 1800 + 86400);
        assert_eq!(den.days.len(), 30);
        let nov3 = &den.days[2];
        assert_eq!((nov3.isp_downtime_s, nov3.uptime_pct), (7200, Some(91.67)));
        let nov20 = &den.days[19];
        assert_eq!((nov20.observed_s, nov20.uptime_pct), (0, None));
        assert!(den.outages.iter().all(|o| o.witness == Witness::Agent));
    }

    /// A gap that overlaps a report is the same outage (witness both, the agent's times); a gap
    /// nobody reported is its own row, unknown, not the ISP's; an ongoing gap ends at the report time.
    #[test]
    fn witnesses_are_matched_by_overlap() {
        let mut input = month();
        input.source = "azure".into();
        input.to = t("2026-12-01T06:00:00Z");
        input.gaps = vec![
            Gap {
                device: "den".into(),
                start: t("2026-11-03T09:59:10Z"),
                end: Some(t("2026-11-03T12:00:40Z")),
            },
            Gap {
                device: "den".into(),
                start: t("2026-11-15T01:00:00Z"),
                end: Some(t("2026-11-15T01:10:00Z")),
            },
            Gap {
                device: "den".into(),
                start: t("2026-12-01T05:00:00Z"),
                end: None,
            },
        ];
        let report = Report::compute(&input);
        let den = &report.devices[0];
        let rows: Vec<_> = den
            .outages
            .iter()
            .map(|o| (o.cause, o.witness, o.duration_s, o.ongoing))
            .collect();
        assert_eq!(
            rows,
            [
                (Cause::Isp, Witness::Both, 7200, false),
                (Cause::Lan, Witness::Agent, 1800, false),
                (Cause::Unknown, Witness::Cloud, 600, false),
                (Cause::AgentOffline, Witness::Agent, 86400, false),
                (Cause::Unknown, Witness::Cloud, 3600, true),
            ]
        );
        assert_eq!(den.isp_downtime_s, 7200);
        assert_eq!(den.not_isp.undetermined_s, 4200);
    }

    /// The period clips outages and the observed time; a device first seen mid-period is observed
    /// from then; nothing after the report was made counts.
    #[test]
    fn the_period_and_the_first_sign_of_life_clip_everything() {
        let mut input = month();
        input.from = t("2026-11-03T11:00:00Z");
        input.devices[0].first_seen = Some(t("2026-11-03T11:30:00Z"));
        input.generated_at = t("2026-11-10T08:10:00Z");
        let den = &Report::compute(&input).devices[0];
        assert_eq!(den.observed_from, t("2026-11-03T11:30:00Z"));
        assert_eq!(den.observed_to, t("2026-11-10T08:10:00Z"));
        let rows: Vec<_> = den
            .outages
            .iter()
            .map(|o| (o.cause, o.duration_s, o.clipped))
            .collect();
        assert_eq!(rows, [(Cause::Isp, 1800, true), (Cause::Lan, 600, true)]);
    }

    #[test]
    fn bad_inputs_are_refused_with_reasons() {
        let good = serde_json::to_value(month()).unwrap();
        let with = |key: &str, value: serde_json::Value| {
            let mut v = good.clone();
            v[key] = value;
            ReportInput::from_json(v.to_string().as_bytes()).unwrap_err()
        };
        assert!(with("version", 2.into()).starts_with("input version 2 is not 1"));
        assert_eq!(
            with("to", "2026-10-01T00:00:00Z".into()),
            "the period ends before it starts: `to` must be after `from`"
        );
        assert!(with("from", "yesterday".into()).starts_with("not a report input"));
        assert!(
            ReportInput::from_json(b"[1")
                .unwrap_err()
                .starts_with("not JSON")
        );
        assert!(ReportInput::from_json(good.to_string().as_bytes()).is_ok());
    }
}
