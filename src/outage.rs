//! An outage report: what the agent records while it cannot reach the handler, and what the handler
//! accepts once it can.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::heartbeat::json_type;

/// Longest outage id, in characters. Agents use a short hex id; anything longer is not ours.
pub const MAX_ID_CHARS: usize = 64;
/// Longest `detail` (what the probes saw), in characters.
pub const MAX_DETAIL_CHARS: usize = 300;
/// How far past the handler's clock an outage may end: the agent's clock may run a little fast.
pub const MAX_CLOCK_SKEW: Duration = Duration::minutes(5);
/// Oldest outage start the handler accepts. A machine can be off for a long holiday, but not for
/// more than a year and still hold a meaningful journal.
pub const MAX_AGE: Duration = Duration::days(400);

/// The agent's best guess at why the device could not reach the handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The local network: the configured gateway did not answer either.
    Lan,
    /// Internet targets answered by IP address, but the endpoint's name did not resolve.
    Dns,
    /// No internet target answered: the connection to the provider is down.
    Isp,
    /// The internet worked, but the endpoint failed (5xx, or unreachable while everything else was).
    Cloud,
    /// The endpoint refused the key (401/403): a configuration error, not an outage of the network.
    Config,
    /// The agent itself was not running (machine off, power cut), measured from its last heartbeat.
    AgentOffline,
    /// The probes gave no consistent answer.
    Unknown,
}

impl Cause {
    pub const ALL: [Cause; 7] = [
        Cause::Lan,
        Cause::Dns,
        Cause::Isp,
        Cause::Cloud,
        Cause::Config,
        Cause::AgentOffline,
        Cause::Unknown,
    ];

    /// The name used on the wire, in telemetry and in queries.
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Lan => "lan",
            Cause::Dns => "dns",
            Cause::Isp => "isp",
            Cause::Cloud => "cloud",
            Cause::Config => "config",
            Cause::AgentOffline => "agent_offline",
            Cause::Unknown => "unknown",
        }
    }

    /// The cause in words a person understands: every email, report and notification uses these
    /// (the table is fixed in the project's interfaces, "B. Outage causes in words").
    pub fn in_words(self) -> &'static str {
        match self {
            Cause::Isp => "your internet provider (DNS and internet targets unreachable)",
            Cause::Dns => {
                "name resolution (internet targets answered, the endpoint's name did not resolve)"
            }
            Cause::Lan => "your local network (the router did not answer)",
            Cause::Cloud => "the monitoring endpoint (the internet worked, the endpoint did not)",
            Cause::Config => "the agent's configuration (the endpoint refused its key)",
            Cause::AgentOffline => {
                "the agent was not running (nobody observed: not counted against the ISP)"
            }
            Cause::Unknown => "undetermined (the probes gave no consistent answer)",
        }
    }

    /// Whether this cause counts as the internet provider's downtime in reports (`isp`, `dns`);
    /// every other cause is shown apart, "not the ISP's doing".
    pub fn is_isps(self) -> bool {
        matches!(self, Cause::Isp | Cause::Dns)
    }
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Cause {
    type Err = ();
    fn from_str(s: &str) -> Result<Cause, ()> {
        Cause::ALL
            .into_iter()
            .find(|cause| cause.as_str() == s)
            .ok_or(())
    }
}

/// One finished outage, as the agent reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutageReport {
    /// Chosen by the agent when the outage starts; the same id is resent until acknowledged, so
    /// queries deduplicate on it.
    pub id: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub cause: Cause,
    /// What the probes saw, for a human reading the report.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Why an outage report was refused.
#[derive(Debug, Clone, PartialEq)]
pub enum OutageReportError {
    NotAnObject {
        found: &'static str,
    },
    Missing {
        field: &'static str,
    },
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    BadId,
    BadTime {
        field: &'static str,
    },
    UnknownCause(String),
    EndsBeforeStart,
    InFuture,
    TooOld,
    DetailTooLong {
        chars: usize,
    },
}

impl fmt::Display for OutageReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAnObject { found } => write!(f, "must be an object, found {found}"),
            Self::Missing { field } => write!(f, "`{field}` is missing"),
            Self::WrongType {
                field,
                expected,
                found,
            } => {
                write!(f, "`{field}` must be {expected}, found {found}")
            }
            Self::BadId => write!(
                f,
                "`id` must be 1 to {MAX_ID_CHARS} letters, digits, '-' or '_'"
            ),
            Self::BadTime { field } => {
                write!(
                    f,
                    "`{field}` must be an RFC 3339 time such as 2026-11-25T10:00:00Z"
                )
            }
            Self::UnknownCause(cause) => {
                let known: Vec<_> = Cause::ALL.iter().map(|c| c.as_str()).collect();
                let shown: String = cause.chars().take(40).collect();
                write!(f, "`cause` {shown:?} is not one of {}", known.join(", "))
            }
            Self::EndsBeforeStart => write!(f, "`end` is before `start`"),
            Self::InFuture => write!(f, "`end` is more than 5 minutes in the future"),
            Self::TooOld => write!(f, "`start` is more than 400 days ago"),
            Self::DetailTooLong { chars } => write!(
                f,
                "`detail` is {chars} characters; the limit is {MAX_DETAIL_CHARS}"
            ),
        }
    }
}

impl std::error::Error for OutageReportError {}

impl OutageReport {
    /// Validates one entry of a heartbeat's `outages` array against the handler's clock.
    pub fn from_json(value: &Value, now: DateTime<Utc>) -> Result<OutageReport, OutageReportError> {
        let Value::Object(fields) = value else {
            return Err(OutageReportError::NotAnObject {
                found: json_type(value),
            });
        };
        let text = |field: &'static str| match fields.get(field) {
            None | Some(Value::Null) => Err(OutageReportError::Missing { field }),
            Some(Value::String(text)) => Ok(text.as_str()),
            Some(other) => Err(OutageReportError::WrongType {
                field,
                expected: "a string",
                found: json_type(other),
            }),
        };
        let time = |field: &'static str| {
            DateTime::parse_from_rfc3339(text(field)?)
                .map(|time| time.with_timezone(&Utc))
                .map_err(|_| OutageReportError::BadTime { field })
        };

        let id = text("id")?;
        let id_ok = !id.is_empty()
            && id.len() <= MAX_ID_CHARS
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !id_ok {
            return Err(OutageReportError::BadId);
        }
        let start = time("start")?;
        let end = time("end")?;
        let cause_text = text("cause")?;
        let cause = cause_text
            .parse()
            .map_err(|()| OutageReportError::UnknownCause(cause_text.to_owned()))?;
        let detail = match fields.get("detail") {
            None | Some(Value::Null) => String::new(),
            Some(Value::String(detail)) => {
                let chars = detail.chars().count();
                if chars > MAX_DETAIL_CHARS {
                    return Err(OutageReportError::DetailTooLong { chars });
                }
                // Control characters are replaced rather than refused: the detail is free text
                // from probes, and losing a whole outage over a stray tab would be worse.
                detail
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect()
            }
            Some(other) => {
                return Err(OutageReportError::WrongType {
                    field: "detail",
                    expected: "a string",
                    found: json_type(other),
                });
            }
        };

        if end < start {
            return Err(OutageReportError::EndsBeforeStart);
        }
        if end > now + MAX_CLOCK_SKEW {
            return Err(OutageReportError::InFuture);
        }
        if start < now - MAX_AGE {
            return Err(OutageReportError::TooOld);
        }
        Ok(OutageReport {
            id: id.to_owned(),
            start,
            end,
            cause,
            detail,
        })
    }

    /// Whole seconds between start and end.
    pub fn duration_seconds(&self) -> i64 {
        (self.end - self.start).num_seconds()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report(value: Value) -> Result<OutageReport, OutageReportError> {
        let now = DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")
            .unwrap()
            .to_utc();
        OutageReport::from_json(&value, now)
    }

    /// A report the agent writes round-trips through the handler's validation.
    #[test]
    fn agent_report_round_trips() {
        let parsed = report(json!({"id": "a1-b2", "start": "2026-11-25T10:00:00Z",
            "end": "2026-11-25T10:07:30Z", "cause": "isp", "detail": "0/2 targets"}))
        .unwrap();
        assert_eq!(parsed.duration_seconds(), 450);
        assert_eq!(
            report(serde_json::to_value(&parsed).unwrap()).unwrap(),
            parsed
        );
    }

    /// The words are the interface's table, word for word, and only isp and dns are the ISP's.
    #[test]
    fn causes_in_words() {
        assert_eq!(
            Cause::Isp.in_words(),
            "your internet provider (DNS and internet targets unreachable)"
        );
        assert_eq!(
            Cause::AgentOffline.in_words(),
            "the agent was not running (nobody observed: not counted against the ISP)"
        );
        let isps: Vec<_> = Cause::ALL.into_iter().filter(|c| c.is_isps()).collect();
        assert_eq!(isps, [Cause::Dns, Cause::Isp]);
        let words: std::collections::HashSet<_> = Cause::ALL.map(Cause::in_words).into();
        assert_eq!(words.len(), Cause::ALL.len());
    }

    /// Ordering, the future, age, ids and causes are all checked, each with its own reason.
    #[test]
    fn bad_reports_are_refused_with_reasons() {
        let base = json!({"id": "x", "start": "2026-11-25T10:00:00Z",
            "end": "2026-11-25T10:01:00Z", "cause": "dns"});
        let with = |key: &str, value: Value| {
            let mut v = base.clone();
            v[key] = value;
            report(v).unwrap_err().to_string()
        };
        assert_eq!(
            with("end", json!("2026-11-25T09:00:00Z")),
            "`end` is before `start`"
        );
        assert_eq!(
            with("end", json!("2026-11-25T13:00:00Z")),
            "`end` is more than 5 minutes in the future"
        );
        assert_eq!(
            with("start", json!("2024-01-01T00:00:00Z")),
            "`start` is more than 400 days ago"
        );
        assert_eq!(
            with("id", json!("a b")),
            "`id` must be 1 to 64 letters, digits, '-' or '_'"
        );
        assert_eq!(
            with("start", json!("yesterday")),
            "`start` must be an RFC 3339 time such as 2026-11-25T10:00:00Z"
        );
        assert!(
            with("cause", json!("aliens")).starts_with("`cause` \"aliens\" is not one of lan, dns")
        );
        assert_eq!(
            with("id", json!(7)),
            "`id` must be a string, found a number"
        );
    }
}
