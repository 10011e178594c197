//! `heartbeat-agent report`: the report of the agent's local history, or of a report input that
//! `scripts/report.sh` gathered from the cloud (`--input`), in one of the four formats.

use std::io::Read;
use std::path::PathBuf;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use clap::Parser;

use super::render::{Format, render};
use super::{Report, ReportInput};
use crate::agent::{config::default_state_dir, history};

/// Prints the outage report of a period: uptime as far as the ISP is concerned, every outage with
/// its cause and witness, the time that was not the ISP's doing, and daily quality.
///
/// With no period, the current month (UTC) so far.
#[derive(Debug, Parser)]
#[command(name = "heartbeat-agent report", version)]
pub struct ReportOptions {
    /// A calendar month, UTC: 2026-11.
    #[arg(long, value_name = "YYYY-MM", conflicts_with_all = ["from", "to"])]
    pub month: Option<String>,
    /// Start of the period, UTC: 2026-11-01 or 2026-11-01T08:00:00Z (included).
    #[arg(long, value_name = "DATE|TIME", requires = "to")]
    pub from: Option<String>,
    /// End of the period, UTC (excluded): a date means its midnight.
    #[arg(long, value_name = "DATE|TIME", requires = "from")]
    pub to: Option<String>,
    /// table, json, csv or html.
    #[arg(long, default_value = "table")]
    pub format: String,
    /// The agent's state directory, where its history is (default as for the agent).
    #[arg(long, env = "HEARTBEAT_STATE_DIR")]
    pub state_dir: Option<PathBuf>,
    /// Render this report input (JSON, `-` for stdin) instead of the local history: what
    /// scripts/report.sh hands over. It carries its own period.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["month", "from", "to"])]
    pub input: Option<PathBuf>,
}

/// Most bytes read from `--input`.
const MAX_INPUT_BYTES: u64 = 64 << 20;

/// A period's bound: a date (its midnight) or an RFC 3339 time.
fn bound(flag: &str, text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc());
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.to_utc())
        .map_err(|_| {
            format!(
                "{flag} {:?} is neither a date like 2026-11-01 nor a time like 2026-11-01T08:00:00Z",
                text.chars().take(40).collect::<String>()
            )
        })
}

/// `[first of the month, first of the next)`.
pub fn month(text: &str) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
    let bad = || {
        format!(
            "--month {:?} is not a month like 2026-11",
            text.chars().take(40).collect::<String>()
        )
    };
    let (year, month) = text.split_once('-').ok_or_else(bad)?;
    if year.len() != 4 || month.len() != 2 {
        return Err(bad());
    }
    let year: i32 = year.parse().map_err(|_| bad())?;
    let month: u32 = month.parse().map_err(|_| bad())?;
    let first = NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(bad)?;
    let next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)
    }
    .ok_or_else(bad)?;
    let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
    Ok((midnight(first), midnight(next)))
}

impl ReportOptions {
    /// The period asked for, checked.
    pub fn period(&self, now: DateTime<Utc>) -> Result<(DateTime<Utc>, DateTime<Utc>), String> {
        let (from, to) = match (&self.month, &self.from, &self.to) {
            (Some(m), _, _) => month(m)?,
            (None, Some(from), Some(to)) => (bound("--from", from)?, bound("--to", to)?),
            _ => month(&format!("{:04}-{:02}", now.year(), now.month()))?,
        };
        if to <= from {
            return Err("--to must be after --from".to_owned());
        }
        if to - from > super::MAX_PERIOD {
            return Err("the period is longer than 400 days: report a shorter one".to_owned());
        }
        Ok((from, to))
    }

    /// The report, rendered. Errors are one line saying what to fix.
    pub fn run(&self, now: DateTime<Utc>) -> Result<String, String> {
        let format: Format = self.format.parse()?;
        let input = match &self.input {
            Some(path) => read_input(path)?,
            None => {
                let (from, to) = self.period(now)?;
                let dir = match &self.state_dir {
                    Some(dir) if !dir.as_os_str().is_empty() => dir.clone(),
                    _ => default_state_dir()?,
                };
                let path = dir.join(history::HISTORY_FILE);
                let state = history::read(&path)
                    .map_err(|reason| format!("the history {} is unusable: {reason}", path.display()))?
                    .ok_or_else(|| {
                        format!(
                            "no history in {}: the agent writes it once it has run there (or give --state-dir)",
                            dir.display()
                        )
                    })?;
                state.to_input(from, to, now)
            }
        };
        Ok(render(&Report::compute(&input), format))
    }
}

fn read_input(path: &std::path::Path) -> Result<ReportInput, String> {
    let mut bytes = Vec::new();
    let read = if path.as_os_str() == "-" {
        std::io::stdin()
            .take(MAX_INPUT_BYTES + 1)
            .read_to_end(&mut bytes)
    } else {
        std::fs::File::open(path).and_then(|f| f.take(MAX_INPUT_BYTES + 1).read_to_end(&mut bytes))
    };
    read.map_err(|err| format!("cannot read the report input {}: {err}", path.display()))?;
    if bytes.len() as u64 > MAX_INPUT_BYTES {
        return Err(format!(
            "the report input {} is larger than 64 MiB",
            path.display()
        ));
    }
    ReportInput::from_json(&bytes)
        .map_err(|err| format!("the report input {}: {err}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(args: &[&str]) -> ReportOptions {
        ReportOptions::try_parse_from(std::iter::once("report").chain(args.iter().copied()))
            .unwrap()
    }

    #[test]
    fn periods() {
        let now = bound("--to", "2026-12-15T10:00:00Z").unwrap();
        let p = |args: &[&str]| options(args).period(now);
        assert_eq!(
            p(&["--month", "2026-12"]).unwrap(),
            (
                bound("", "2026-12-01").unwrap(),
                bound("", "2027-01-01").unwrap()
            )
        );
        assert_eq!(p(&[]).unwrap(), p(&["--month", "2026-12"]).unwrap());
        assert_eq!(
            p(&["--month", "2026-13"]).unwrap_err(),
            "--month \"2026-13\" is not a month like 2026-11"
        );
        assert_eq!(
            p(&["--from", "2026-11-02T10:00:00Z", "--to", "2026-11-02"]).unwrap_err(),
            "--to must be after --from"
        );
        assert!(
            p(&["--from", "soon", "--to", "2026-11-02"])
                .unwrap_err()
                .starts_with("--from \"soon\" is neither a date")
        );
        assert!(
            ReportOptions::try_parse_from([
                "report",
                "--month",
                "2026-11",
                "--from",
                "2026-11-01",
                "--to",
                "2026-11-02"
            ])
            .is_err()
        );
    }
}
