//! The heartbeat both sides share: what a device sends, the limits the handler enforces, and the
//! reasons a heartbeat is refused.
//!
//! The handler parses every request body through [`Heartbeat::parse`], whichever host mode delivered
//! it, so the rules below hold in one place. The agent builds the same type and serializes it.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::outage::{OutageReport, OutageReportError};

/// Largest body the handler reads. A heartbeat with a full outage backlog is a few KiB; anything near
/// this is not a heartbeat.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest device name, in characters.
pub const MAX_DEVICE_CHARS: usize = 100;
/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 500;
/// Longest agent version string, in characters.
pub const MAX_AGENT_VERSION_CHARS: usize = 40;
/// Most outage reports one heartbeat may carry; the agent sends its backlog in chunks of this size.
pub const MAX_OUTAGES_PER_HEARTBEAT: usize = 50;
/// The device recorded when neither the body nor the `X-Device` header names one.
pub const UNKNOWN_DEVICE: &str = "unknown";
/// Most connect attempts one heartbeat's quality may report (interface A).
pub const MAX_QUALITY_PROBES: u64 = 100;
/// Longest time a quality figure may report, in milliseconds: a minute, longer than any probe
/// timeout the agent accepts.
pub const MAX_QUALITY_MS: f64 = 60_000.0;

/// A validated heartbeat.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Heartbeat {
    pub device: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// The agent's version; absent for agents that do not send one (the original Python agent, curl).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent_version: Option<String>,
    /// The agent's heartbeat counter since it started; lets a query see lost heartbeats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
    /// Round-trip time of the agent's previous heartbeat, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rtt_ms: Option<u64>,
    /// Finished outages the agent recorded while it could not reach us.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub outages: Vec<OutageReport>,
    /// Connection quality the agent measured during the previous interval; absent from agents
    /// that do not measure it (older ones, curl, `--quality off`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<Quality>,
}

/// Connection quality over one heartbeat interval, as the agent measured it (interface A): TCP
/// connect attempts to its probe targets, and the resolution time of the endpoint's host name.
/// Only [`Heartbeat::parse`] (or the agent's measurement) makes one, so the rules below hold:
/// `1 <= probes <= 100`, `lost <= probes`, the round-trip figures are null exactly when every
/// attempt was lost, `rtt_p50_ms <= rtt_p95_ms`, every time from 0 to 60,000 ms.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Quality {
    /// Connect attempts made.
    pub probes: u32,
    /// Attempts that did not connect (refused, timed out, unreachable).
    pub lost: u32,
    /// Median connect time of the attempts that connected, in milliseconds.
    pub rtt_p50_ms: Option<f64>,
    /// 95th percentile (nearest rank) of the same.
    pub rtt_p95_ms: Option<f64>,
    /// How long the endpoint's host name took to resolve; null when it did not resolve (or the
    /// endpoint is addressed by IP, so there is nothing to resolve).
    pub dns_ms: Option<f64>,
}

impl Quality {
    /// The share of attempts lost, in percent (0 to 100), to two decimals.
    pub fn loss_pct(&self) -> f64 {
        if self.probes == 0 {
            return 0.0;
        }
        (f64::from(self.lost) * 10_000.0 / f64::from(self.probes)).round() / 100.0
    }

    /// Validates the `quality` object of a heartbeat body.
    fn from_json(value: &Value) -> Result<Quality, QualityError> {
        let Value::Object(fields) = value else {
            return Err(QualityError::NotAnObject {
                found: json_type(value),
            });
        };
        let probes = required_count(fields, "probes", 1, MAX_QUALITY_PROBES)?;
        let lost = required_count(fields, "lost", 0, MAX_QUALITY_PROBES)?;
        if lost > probes {
            return Err(QualityError::LostExceedsProbes { lost, probes });
        }
        let every_attempt_lost = lost == probes;
        let mut rtt = [None, None];
        for (slot, field) in rtt.iter_mut().zip(["rtt_p50_ms", "rtt_p95_ms"]) {
            *slot = optional_ms(fields, field)?;
            match (*slot, every_attempt_lost) {
                (Some(_), true) => return Err(QualityError::RttWithoutAnswers { field }),
                (None, false) => return Err(QualityError::RttMissing { field }),
                _ => {}
            }
        }
        let [rtt_p50_ms, rtt_p95_ms] = rtt;
        if let (Some(p50), Some(p95)) = (rtt_p50_ms, rtt_p95_ms)
            && p50 > p95
        {
            return Err(QualityError::MedianAboveP95 { p50, p95 });
        }
        Ok(Quality {
            probes: probes as u32,
            lost: lost as u32,
            rtt_p50_ms,
            rtt_p95_ms,
            dns_ms: optional_ms(fields, "dns_ms")?,
        })
    }
}

/// Why a heartbeat's `quality` object was refused. Each message is one line naming the field.
#[derive(Debug, Clone, PartialEq)]
pub enum QualityError {
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
    OutOfRange {
        field: &'static str,
        value: String,
        range: &'static str,
    },
    LostExceedsProbes {
        lost: u64,
        probes: u64,
    },
    /// A round-trip figure although no attempt connected.
    RttWithoutAnswers {
        field: &'static str,
    },
    /// No round-trip figure although some attempts connected.
    RttMissing {
        field: &'static str,
    },
    MedianAboveP95 {
        p50: f64,
        p95: f64,
    },
}

impl fmt::Display for QualityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QualityError::NotAnObject { found } => {
                write!(f, "`quality` must be an object, found {found}")
            }
            QualityError::Missing { field } => write!(f, "`quality.{field}` is missing"),
            QualityError::WrongType {
                field,
                expected,
                found,
            } => write!(f, "`quality.{field}` must be {expected}, found {found}"),
            QualityError::OutOfRange {
                field,
                value,
                range,
            } => write!(f, "`quality.{field}` is {value}; it must be {range}"),
            QualityError::LostExceedsProbes { lost, probes } => write!(
                f,
                "`quality.lost` is {lost}; it cannot exceed `quality.probes` ({probes})"
            ),
            QualityError::RttWithoutAnswers { field } => write!(
                f,
                "`quality.{field}` must be null when every attempt was lost (`lost` equals `probes`)"
            ),
            QualityError::RttMissing { field } => write!(
                f,
                "`quality.{field}` must be a number when some attempts connected (`lost` is below `probes`)"
            ),
            QualityError::MedianAboveP95 { p50, p95 } => write!(
                f,
                "`quality.rtt_p50_ms` ({p50}) is above `quality.rtt_p95_ms` ({p95}); the median cannot exceed the 95th percentile"
            ),
        }
    }
}

/// A whole number from `min` to `max` that must be present.
fn required_count(
    fields: &Map<String, Value>,
    field: &'static str,
    min: u64,
    max: u64,
) -> Result<u64, QualityError> {
    let range = if min == 0 {
        "an integer from 0 to 100"
    } else {
        "an integer from 1 to 100"
    };
    let value = match fields.get(field) {
        None | Some(Value::Null) => return Err(QualityError::Missing { field }),
        Some(value) => value,
    };
    match value.as_u64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        Some(n) => Err(QualityError::OutOfRange {
            field,
            value: n.to_string(),
            range: if min == 0 {
                "from 0 to 100"
            } else {
                "from 1 to 100"
            },
        }),
        None => Err(QualityError::WrongType {
            field,
            expected: range,
            found: json_type(value),
        }),
    }
}

/// A time in milliseconds from 0 to [`MAX_QUALITY_MS`], or null (absent counts as null).
fn optional_ms(
    fields: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<f64>, QualityError> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_f64() {
            Some(ms) if (0.0..=MAX_QUALITY_MS).contains(&ms) => Ok(Some(ms)),
            _ => Err(QualityError::OutOfRange {
                field,
                value: n.to_string(),
                range: "from 0 to 60000 milliseconds",
            }),
        },
        Some(other) => Err(QualityError::WrongType {
            field,
            expected: "a number of milliseconds or null",
            found: json_type(other),
        }),
    }
}

/// Why a heartbeat was refused. Each variant's message is the one-line reason the client sees.
/// The first group is about getting the body at all (each front end reports its own failures
/// with these, so every refusal leaves through the same exit); the rest are about its content.
#[derive(Debug, Clone, PartialEq)]
pub enum HeartbeatError {
    /// The method is not one the heartbeat accepts; `allow` is the `Allow` header's value.
    MethodNotAllowed {
        method: String,
        allow: &'static str,
    },
    /// The body did not arrive within the front end's body timeout.
    BodyTimeout {
        seconds: u64,
    },
    /// The connection failed while the body was being read.
    BodyUnreadable(String),
    /// The host's invocation envelope (which wraps the heartbeat) is over its own limit.
    EnvelopeTooLarge {
        bytes: usize,
        limit: usize,
    },
    /// The request to the invocation path is not a host envelope.
    EnvelopeMalformed(String),
    /// A binary body the host passed as base64 does not decode.
    InvalidBase64,
    BodyTooLarge {
        bytes: usize,
    },
    InvalidJson(String),
    NotAnObject {
        found: &'static str,
    },
    WrongType {
        field: &'static str,
        expected: &'static str,
        found: &'static str,
    },
    TooLong {
        field: &'static str,
        chars: usize,
        limit: usize,
    },
    ControlCharacter {
        field: &'static str,
    },
    TooManyOutages {
        count: usize,
    },
    Outage {
        index: usize,
        error: OutageReportError,
    },
    Quality(QualityError),
}

impl HeartbeatError {
    /// The HTTP status that carries this refusal.
    pub fn status_code(&self) -> u16 {
        match self {
            HeartbeatError::MethodNotAllowed { .. } => 405,
            HeartbeatError::BodyTimeout { .. } => 408,
            HeartbeatError::BodyTooLarge { .. } | HeartbeatError::EnvelopeTooLarge { .. } => 413,
            _ => 400,
        }
    }

    /// The `Allow` header a 405 carries.
    pub fn allow(&self) -> Option<&'static str> {
        match self {
            HeartbeatError::MethodNotAllowed { allow, .. } => Some(allow),
            _ => None,
        }
    }
}

impl fmt::Display for HeartbeatError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeartbeatError::MethodNotAllowed { method, allow } => {
                let allow = allow.replace(", ", " or ");
                write!(f, "method {method} is not allowed; use {allow}")
            }
            HeartbeatError::BodyTimeout { seconds } => {
                write!(f, "the body did not arrive within {seconds} s")
            }
            HeartbeatError::BodyUnreadable(reason) => {
                write!(f, "the body could not be read: {reason}")
            }
            HeartbeatError::EnvelopeTooLarge { bytes, limit } => write!(
                f,
                "invocation envelope is {bytes} bytes; the limit is {limit} bytes"
            ),
            HeartbeatError::EnvelopeMalformed(reason) => f.write_str(reason),
            HeartbeatError::InvalidBase64 => f.write_str("the binary body is not valid base64"),
            HeartbeatError::BodyTooLarge { bytes } => write!(
                f,
                "body is {bytes} bytes; the limit is {MAX_BODY_BYTES} bytes"
            ),
            HeartbeatError::InvalidJson(reason) => write!(f, "body is not valid JSON: {reason}"),
            HeartbeatError::NotAnObject { found } => {
                write!(f, "body must be a JSON object, found {found}")
            }
            HeartbeatError::WrongType {
                field,
                expected,
                found,
            } => {
                write!(f, "`{field}` must be {expected}, found {found}")
            }
            HeartbeatError::TooLong {
                field,
                chars,
                limit,
            } => {
                write!(f, "`{field}` is {chars} characters; the limit is {limit}")
            }
            HeartbeatError::ControlCharacter { field } => {
                write!(f, "`{field}` contains a control character")
            }
            HeartbeatError::TooManyOutages { count } => write!(
                f,
                "`outages` has {count} entries; the limit is {MAX_OUTAGES_PER_HEARTBEAT}"
            ),
            HeartbeatError::Outage { index, error } => write!(f, "`outages[{index}]`: {error}"),
            HeartbeatError::Quality(error) => error.fmt(f),
        }
    }
}

impl std::error::Error for HeartbeatError {}

impl Heartbeat {
    /// A heartbeat from `device` with nothing else in it.
    pub fn new(device: impl Into<String>) -> Heartbeat {
        Heartbeat {
            device: device.into(),
            note: String::new(),
            agent_version: None,
            seq: None,
            rtt_ms: None,
            outages: Vec::new(),
            quality: None,
        }
    }

    /// Parses and validates a request body. An empty body is a valid heartbeat (a bare `curl`).
    /// `device_header` is the `X-Device` header, used when the body names no device. `now` bounds
    /// how far in the future a reported outage may end.
    pub fn parse(
        body: &[u8],
        device_header: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Heartbeat, HeartbeatError> {
        if body.len() > MAX_BODY_BYTES {
            return Err(HeartbeatError::BodyTooLarge { bytes: body.len() });
        }
        let fields = if body.iter().all(u8::is_ascii_whitespace) {
            Map::new()
        } else {
            match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(fields)) => fields,
                Ok(other) => {
                    return Err(HeartbeatError::NotAnObject {
                        found: json_type(&other),
                    });
                }
                Err(err) => return Err(HeartbeatError::InvalidJson(err.to_string())),
            }
        };

        let body_device = optional_text(&fields, "device", MAX_DEVICE_CHARS)?;
        let header_device = match device_header {
            Some(value) => Some(checked_text("X-Device", value, MAX_DEVICE_CHARS)?),
            None => None,
        };
        // An empty name is no name: fall through to the next source rather than record "".
        let device = [body_device, header_device]
            .into_iter()
            .flatten()
            .map(|name| name.trim().to_owned())
            .find(|name| !name.is_empty())
            .unwrap_or_else(|| UNKNOWN_DEVICE.to_owned());

        let outages = match fields.get("outages") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => {
                if items.len() > MAX_OUTAGES_PER_HEARTBEAT {
                    return Err(HeartbeatError::TooManyOutages { count: items.len() });
                }
                items
                    .iter()
                    .enumerate()
                    .map(|(index, item)| {
                        OutageReport::from_json(item, now)
                            .map_err(|error| HeartbeatError::Outage { index, error })
                    })
                    .collect::<Result<_, _>>()?
            }
            Some(other) => return Err(wrong_type("outages", "an array", other)),
        };
        let quality = match fields.get("quality") {
            None | Some(Value::Null) => None,
            Some(value) => Some(Quality::from_json(value).map_err(HeartbeatError::Quality)?),
        };

        Ok(Heartbeat {
            device,
            note: optional_text(&fields, "note", MAX_NOTE_CHARS)?.unwrap_or_default(),
            agent_version: optional_text(&fields, "agent_version", MAX_AGENT_VERSION_CHARS)?,
            seq: optional_count(&fields, "seq")?,
            rtt_ms: optional_count(&fields, "rtt_ms")?,
            outages,
            quality,
        })
    }
}

/// A string field that may be absent or null.
fn optional_text(
    fields: &Map<String, Value>,
    field: &'static str,
    limit: usize,
) -> Result<Option<String>, HeartbeatError> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(text)) => checked_text(field, text, limit).map(Some),
        Some(other) => Err(wrong_type(field, "a string", other)),
    }
}

/// Enforces the length and character rules on a text value.
pub(crate) fn checked_text(
    field: &'static str,
    text: &str,
    limit: usize,
) -> Result<String, HeartbeatError> {
    let chars = text.chars().count();
    if chars > limit {
        return Err(HeartbeatError::TooLong {
            field,
            chars,
            limit,
        });
    }
    // Control characters would let a client forge extra lines in logs and break table output.
    if text.chars().any(char::is_control) {
        return Err(HeartbeatError::ControlCharacter { field });
    }
    Ok(text.to_owned())
}

/// A non-negative integer field that may be absent or null.
fn optional_count(
    fields: &Map<String, Value>,
    field: &'static str,
) -> Result<Option<u64>, HeartbeatError> {
    match fields.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| wrong_type(field, "a non-negative integer", value)),
    }
}

fn wrong_type(field: &'static str, expected: &'static str, found: &Value) -> HeartbeatError {
    HeartbeatError::WrongType {
        field,
        expected,
        found: json_type(found),
    }
}

/// How a JSON value is named in error messages.
pub(crate) fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_u64() => "a number",
        Value::Number(_) => "a negative or fractional number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<Heartbeat, HeartbeatError> {
        Heartbeat::parse(body.as_bytes(), None, Utc::now())
    }

    /// The original Python agent's body is accepted as it is.
    #[test]
    fn python_agent_body_is_accepted() {
        let beat = parse(r#"{"device": "dl-home", "note": "daemon ping #1700000000"}"#).unwrap();
        assert_eq!(beat.device, "dl-home");
        assert_eq!(beat.note, "daemon ping #1700000000");
    }

    /// Device falls back from body to header to `unknown`, and unknown fields are ignored.
    #[test]
    fn device_sources_in_order() {
        let now = Utc::now();
        let from_header = Heartbeat::parse(br#"{"future": 1}"#, Some("attic"), now).unwrap();
        assert_eq!(from_header.device, "attic");
        let empty_body_device = Heartbeat::parse(br#"{"device": ""}"#, Some("attic"), now).unwrap();
        assert_eq!(empty_body_device.device, "attic");
        assert_eq!(
            Heartbeat::parse(b"", None, now).unwrap().device,
            UNKNOWN_DEVICE
        );
    }

    /// Limits count characters, not bytes, so a multi-byte name at the limit is fine.
    #[test]
    fn limits_count_characters() {
        let at_limit = "é".repeat(MAX_DEVICE_CHARS);
        assert!(parse(&format!(r#"{{"device": "{at_limit}"}}"#)).is_ok());
        let over = "é".repeat(MAX_DEVICE_CHARS + 1);
        let err = parse(&format!(r#"{{"device": "{over}"}}"#)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`device` is 101 characters; the limit is 100"
        );
    }

    /// Every refusal names what is wrong in one line.
    #[test]
    fn refusals_are_one_line_reasons() {
        for (body, reason) in [
            ("[1]", "body must be a JSON object, found an array"),
            (
                r#"{"device": 5}"#,
                "`device` must be a string, found a number",
            ),
            (
                r#"{"note": "a\u0007b"}"#,
                "`note` contains a control character",
            ),
            (
                r#"{"seq": -1}"#,
                "`seq` must be a non-negative integer, found a negative or fractional number",
            ),
            (
                r#"{"outages": {}}"#,
                "`outages` must be an array, found an object",
            ),
        ] {
            let err = parse(body).unwrap_err();
            assert_eq!(err.to_string(), reason, "body {body}");
            assert_eq!(err.status_code(), 400);
        }
        let err = parse("{nope").unwrap_err();
        assert!(
            err.to_string().starts_with("body is not valid JSON: "),
            "{err}"
        );
        assert!(!err.to_string().contains('\n'));
    }

    fn quality(json: &str) -> Result<Option<Quality>, String> {
        parse(&format!(r#"{{"device": "d", "quality": {json}}}"#))
            .map(|beat| beat.quality)
            .map_err(|err| {
                assert_eq!(err.status_code(), 400, "{err}");
                err.to_string()
            })
    }

    /// A full quality object is kept as sent; nulls are allowed where every attempt was lost or
    /// the name did not resolve; `quality: null` and no quality at all are a heartbeat without it.
    #[test]
    fn quality_is_parsed_with_its_nulls() {
        let full = quality(
            r#"{"probes": 9, "lost": 1, "rtt_p50_ms": 12.5, "rtt_p95_ms": 40, "dns_ms": 3.25}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            full,
            Quality {
                probes: 9,
                lost: 1,
                rtt_p50_ms: Some(12.5),
                rtt_p95_ms: Some(40.0),
                dns_ms: Some(3.25)
            }
        );
        assert_eq!(full.loss_pct(), 11.11);
        let all_lost = quality(
            r#"{"probes": 3, "lost": 3, "rtt_p50_ms": null, "rtt_p95_ms": null, "dns_ms": null}"#,
        )
        .unwrap()
        .unwrap();
        assert_eq!((all_lost.rtt_p95_ms, all_lost.dns_ms), (None, None));
        assert_eq!(all_lost.loss_pct(), 100.0);
        // Absent figures are null figures.
        assert_eq!(
            quality(r#"{"probes": 1, "lost": 1}"#)
                .unwrap()
                .unwrap()
                .loss_pct(),
            100.0
        );
        assert_eq!(quality("null").unwrap(), None);
        assert_eq!(parse(r#"{"device": "d"}"#).unwrap().quality, None);
        // The bounds themselves are accepted.
        assert!(
            quality(r#"{"probes": 100, "lost": 0, "rtt_p50_ms": 0, "rtt_p95_ms": 60000, "dns_ms": 60000}"#)
                .is_ok()
        );
    }

    /// Every bad quality object is refused with a one-line reason naming the field, word for word.
    #[test]
    fn quality_refusals_name_the_field() {
        for (json, reason) in [
            ("[]", "`quality` must be an object, found an array"),
            (r#"{"lost": 0}"#, "`quality.probes` is missing"),
            (
                r#"{"probes": null, "lost": 0}"#,
                "`quality.probes` is missing",
            ),
            (r#"{"probes": 3}"#, "`quality.lost` is missing"),
            (
                r#"{"probes": "3", "lost": 0}"#,
                "`quality.probes` must be an integer from 1 to 100, found a string",
            ),
            (
                r#"{"probes": 2.5, "lost": 0}"#,
                "`quality.probes` must be an integer from 1 to 100, found a negative or fractional number",
            ),
            (
                r#"{"probes": 0, "lost": 0}"#,
                "`quality.probes` is 0; it must be from 1 to 100",
            ),
            (
                r#"{"probes": 101, "lost": 0}"#,
                "`quality.probes` is 101; it must be from 1 to 100",
            ),
            (
                r#"{"probes": 3, "lost": -1}"#,
                "`quality.lost` must be an integer from 0 to 100, found a negative or fractional number",
            ),
            (
                r#"{"probes": 3, "lost": 4}"#,
                "`quality.lost` is 4; it cannot exceed `quality.probes` (3)",
            ),
            (
                r#"{"probes": 3, "lost": 3, "rtt_p50_ms": 5}"#,
                "`quality.rtt_p50_ms` must be null when every attempt was lost (`lost` equals `probes`)",
            ),
            (
                r#"{"probes": 3, "lost": 1, "rtt_p50_ms": 5}"#,
                "`quality.rtt_p95_ms` must be a number when some attempts connected (`lost` is below `probes`)",
            ),
            (
                r#"{"probes": 3, "lost": 0, "rtt_p50_ms": "5", "rtt_p95_ms": 6}"#,
                "`quality.rtt_p50_ms` must be a number of milliseconds or null, found a string",
            ),
            (
                r#"{"probes": 3, "lost": 0, "rtt_p50_ms": -0.5, "rtt_p95_ms": 6}"#,
                "`quality.rtt_p50_ms` is -0.5; it must be from 0 to 60000 milliseconds",
            ),
            (
                r#"{"probes": 3, "lost": 0, "rtt_p50_ms": 5, "rtt_p95_ms": 60000.5}"#,
                "`quality.rtt_p95_ms` is 60000.5; it must be from 0 to 60000 milliseconds",
            ),
            (
                r#"{"probes": 3, "lost": 0, "rtt_p50_ms": 40, "rtt_p95_ms": 30}"#,
                "`quality.rtt_p50_ms` (40) is above `quality.rtt_p95_ms` (30); the median cannot exceed the 95th percentile",
            ),
            (
                r#"{"probes": 3, "lost": 0, "rtt_p50_ms": 4, "rtt_p95_ms": 5, "dns_ms": true}"#,
                "`quality.dns_ms` must be a number of milliseconds or null, found a boolean",
            ),
            (
                r#"{"probes": 3, "lost": 0, "rtt_p50_ms": 4, "rtt_p95_ms": 5, "dns_ms": 1e9}"#,
                "`quality.dns_ms` is 1000000000.0; it must be from 0 to 60000 milliseconds",
            ),
        ] {
            let err = quality(json).unwrap_err();
            assert_eq!(err, reason, "quality {json}");
            assert!(!err.contains('\n'));
        }
    }

    /// What the agent serializes is what the handler parses back: nulls travel as nulls.
    #[test]
    fn quality_round_trips() {
        let mut beat = Heartbeat::new("d");
        beat.quality = Some(Quality {
            probes: 6,
            lost: 6,
            rtt_p50_ms: None,
            rtt_p95_ms: None,
            dns_ms: Some(1.5),
        });
        let body = serde_json::to_string(&beat).unwrap();
        assert!(body.contains(r#""rtt_p50_ms":null"#), "{body}");
        assert_eq!(
            Heartbeat::parse(body.as_bytes(), None, Utc::now()).unwrap(),
            beat
        );
        assert!(
            !serde_json::to_string(&Heartbeat::new("d"))
                .unwrap()
                .contains("quality")
        );
    }
}
