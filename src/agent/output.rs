//! Every line the agent prints, from one event type.
//!
//! The stdout lines are a contract: `scripts/common.sh` (`AGENT_LINE_RE`) and `start_heartbeat.sh`
//! read the second word of each line (`ok` or `fail`), and people read the rest. Each line starts
//! with the UTC time in RFC 3339. Problems go to stderr as `heartbeat-agent: …`.

use std::fmt;
use std::path::Path;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::outage::{Cause, OutageReport};

/// Something the agent tells its user.
#[derive(Debug)]
pub enum Event<'a> {
    /// The daemon started.
    Started {
        version: &'a str,
        device: &'a str,
        url: &'a str,
        interval_s: u64,
        journal: &'a Path,
    },
    /// A heartbeat was delivered (`reported`: outage reports it carried).
    Ok {
        status: u16,
        rtt_ms: u128,
        seq: u64,
        device: &'a str,
        reported: usize,
    },
    /// A heartbeat failed and an outage was opened.
    OutageStarted {
        seq: u64,
        device: &'a str,
        cause: &'a str,
        detail: &'a str,
    },
    /// A heartbeat (or a probe of the internet targets) failed while an outage is open.
    StillDown {
        seq: u64,
        device: &'a str,
        down_for_s: i64,
        cause: &'a str,
        detail: &'a str,
    },
    /// The outage that just ended was delivered to the handler.
    Back { report: &'a OutageReport },
    /// An outage recorded when the agent started (or woke up): nobody saw its end, so it ends at
    /// the last moment the agent saw it, and the time not watched is `agent_offline`.
    Recorded { report: &'a OutageReport },
    /// An outage from an earlier run, still waiting to be delivered.
    Pending { report: &'a OutageReport },
    /// The daemon stopped on a signal.
    Stopped,
    /// Something the user should know or fix; stderr.
    Warning(String),
    /// `--verbose` detail; stderr.
    Verbose(String),
}

impl Event<'_> {
    /// Whether the line goes to stderr.
    fn is_problem(&self) -> bool {
        matches!(self, Event::Warning(_) | Event::Verbose(_))
    }

    /// The whole line as printed at `now`.
    pub fn line(&self, now: DateTime<Utc>) -> String {
        match self {
            Event::Warning(message) => format!("heartbeat-agent: {message}"),
            other => format!("{} {other}", time(now)),
        }
    }
}

impl fmt::Display for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Started {
                version,
                device,
                url,
                interval_s,
                journal,
            } => write!(
                f,
                "started heartbeat-agent {version}: device={device} url={url} interval={interval_s}s journal={}",
                journal.display()
            ),
            Event::Ok {
                status,
                rtt_ms,
                seq,
                device,
                reported,
            } => {
                write!(
                    f,
                    "ok status={status} rtt={rtt_ms}ms seq={seq} device={device}"
                )?;
                if *reported > 0 {
                    write!(f, " reported={reported}")?;
                }
                Ok(())
            }
            Event::OutageStarted {
                seq,
                device,
                cause,
                detail,
            } => write!(
                f,
                "fail seq={seq} device={device} outage started cause={cause}: {detail}"
            ),
            Event::StillDown {
                seq,
                device,
                down_for_s,
                cause,
                detail,
            } => write!(
                f,
                "fail seq={seq} device={device} down for {} cause={cause}: {detail}",
                human_duration(*down_for_s)
            ),
            Event::Back { report } => write!(
                f,
                "back after {} cause={} outage reported (start={} end={})",
                human_duration(report.duration_seconds()),
                report.cause,
                time(report.start),
                time(report.end)
            ),
            Event::Recorded { report } if report.cause == Cause::AgentOffline => write!(
                f,
                "agent was not running for {}; recorded (start={} end={})",
                human_duration(report.duration_seconds()),
                time(report.start),
                time(report.end)
            ),
            Event::Recorded { report } => {
                write!(f, "outage recorded ")?;
                describe(f, report)
            }
            Event::Pending { report } => {
                write!(f, "outage pending ")?;
                describe(f, report)
            }
            Event::Stopped => write!(f, "stopped"),
            Event::Warning(message) | Event::Verbose(message) => f.write_str(message),
        }
    }
}

fn describe(f: &mut fmt::Formatter<'_>, report: &OutageReport) -> fmt::Result {
    write!(
        f,
        "cause={} start={} end={} ({})",
        report.cause,
        time(report.start),
        time(report.end),
        human_duration(report.duration_seconds())
    )?;
    if !report.detail.is_empty() {
        write!(f, ": {}", report.detail)?;
    }
    Ok(())
}

/// Prints `event` at `now`: stdout for results, stderr for problems and `--verbose` detail.
pub fn emit(now: DateTime<Utc>, event: &Event<'_>) {
    let line = event.line(now);
    if event.is_problem() {
        eprintln!("{line}");
    } else {
        println!("{line}");
    }
}

pub fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
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

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    #[test]
    fn human_durations() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(450), "7m30s");
        assert_eq!(human_duration(7500), "2h05m");
    }

    /// The lines scripts/common.sh parses (`TIME ok|fail …`), pinned word for word.
    #[test]
    fn contract_lines() {
        let now = at("2026-11-25T22:40:00Z");
        let ok = Event::Ok {
            status: 200,
            rtt_ms: 38,
            seq: 12,
            device: "den",
            reported: 0,
        };
        assert_eq!(
            ok.line(now),
            "2026-11-25T22:40:00Z ok status=200 rtt=38ms seq=12 device=den"
        );
        let started = Event::OutageStarted {
            seq: 13,
            device: "den",
            cause: "isp",
            detail: "endpoint unreachable: x; 0/3 internet targets reached",
        };
        assert_eq!(
            started.line(now),
            "2026-11-25T22:40:00Z fail seq=13 device=den outage started cause=isp: endpoint unreachable: x; 0/3 internet targets reached"
        );
        let down = Event::StillDown {
            seq: 14,
            device: "den",
            down_for_s: 450,
            cause: "isp",
            detail: "d",
        };
        assert_eq!(
            down.line(now),
            "2026-11-25T22:40:00Z fail seq=14 device=den down for 7m30s cause=isp: d"
        );
        let report = OutageReport {
            id: "x".into(),
            start: at("2026-11-25T22:41:00Z"),
            end: at("2026-11-25T22:48:28Z"),
            cause: Cause::Isp,
            detail: "seen".into(),
        };
        assert_eq!(
            Event::Back { report: &report }.line(now),
            "2026-11-25T22:40:00Z back after 7m28s cause=isp outage reported (start=2026-11-25T22:41:00Z end=2026-11-25T22:48:28Z)"
        );
        assert_eq!(
            Event::Recorded { report: &report }.line(now),
            "2026-11-25T22:40:00Z outage recorded cause=isp start=2026-11-25T22:41:00Z end=2026-11-25T22:48:28Z (7m28s): seen"
        );
        let offline = OutageReport {
            cause: Cause::AgentOffline,
            ..report.clone()
        };
        assert_eq!(
            Event::Recorded { report: &offline }.line(now),
            "2026-11-25T22:40:00Z agent was not running for 7m28s; recorded (start=2026-11-25T22:41:00Z end=2026-11-25T22:48:28Z)"
        );
        assert_eq!(Event::Warning("x".into()).line(now), "heartbeat-agent: x");
        assert_eq!(Event::Stopped.line(now), "2026-11-25T22:40:00Z stopped");
    }
}
