//! The heartbeat core: host-neutral. A front end (Azure's forwarding or JSON invocation mode here,
//! an AWS Lambda front end later) turns what its platform delivers into a [`HeartbeatRequest`];
//! [`Core::answer`] validates it, writes its one log line and its one telemetry row, and returns
//! the [`Answer`] the front end wraps its platform's way. Every heartbeat answer, accepted or
//! refused, leaves through `answer`, so the rules, the log line and the row cannot differ between
//! front ends. Nothing here knows axum, hyper or Azure.
//!
//! Where the answer is recorded is the host's business: a [`Recorder`]. Azure's is the Application
//! Insights pipeline ([`Telemetry`]), beside the core's own JSON log line; AWS's writes CloudWatch
//! lines (`handler::aws::CloudWatchLines`) that replace the core's line, since on Lambda stdout *is*
//! the telemetry (docs/telemetry.md, "Telemetry on AWS").

use std::net::IpAddr;
use std::sync::Arc;
use std::time::SystemTime;

use chrono::Utc;
use serde::Serialize;

use super::log::LogWriter;
use crate::heartbeat::{Heartbeat, HeartbeatError, MAX_DEVICE_CHARS, UNKNOWN_DEVICE};
use crate::telemetry::{Refused, RequestRecord, Telemetry};

/// The site recorded in `requests.url` when the platform names none (`WEBSITE_HOSTNAME`).
pub const LOCAL_SITE: &str = "http://localhost";
/// Longest path, user agent and request id we record, in characters: these come from the client.
const MAX_RECORDED_CHARS: usize = 200;

/// Request headers as the core sees them: lower-cased names, repeated values joined with ", "
/// (a repeated `X-Forwarded-For` is one list). Values are text as the client sent it; the core
/// validates or sanitizes whatever it uses.
#[derive(Debug, Default, Clone)]
pub struct Headers(Vec<(String, String)>);

impl Headers {
    pub fn new() -> Headers {
        Headers::default()
    }

    /// Adds a value; a name seen before gets the value appended to its list.
    pub fn append(&mut self, name: &str, value: &str) {
        let name = name.to_ascii_lowercase();
        match self.0.iter_mut().find(|(known, _)| *known == name) {
            Some((_, values)) => {
                values.push_str(", ");
                values.push_str(value);
            }
            None => self.0.push((name, value.to_owned())),
        }
    }

    /// The value of `name` (lower case).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(known, _)| known == name)
            .map(|(_, value)| value.as_str())
    }
}

/// A heartbeat request as the core sees it, whatever delivered it.
pub struct HeartbeatRequest<'a> {
    /// When the front end received it: the telemetry row's start.
    pub start: SystemTime,
    /// Which front end delivered it (`customDimensions.host_mode`, docs/telemetry.md).
    pub front_end: &'static str,
    pub method: &'a str,
    /// The path, without the query string (which can carry the function key).
    pub path: &'a str,
    pub headers: &'a Headers,
    /// The body, or why the front end could not get it (too large, too slow, a bad envelope).
    pub body: Result<Vec<u8>, HeartbeatError>,
    /// The client's address as the front end's platform vouches for it; never a client's claim.
    pub client_ip: Option<IpAddr>,
    /// The platform's id for this request (the Functions invocation id), or empty.
    pub request_id: &'a str,
}

/// The answer to a heartbeat request, before a front end wraps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub status: u16,
    /// `ok`, or the one-line reason for a refusal.
    pub body: String,
    /// The `Allow` header of a 405.
    pub allow: Option<&'static str>,
}

/// Where a host records every heartbeat answer. Called once per answer, on the request's task:
/// it must not block (queue, do not write).
pub trait Recorder: Send + Sync {
    /// One answered heartbeat request: accepted (`record.heartbeat` is `Ok`, with its outages) or
    /// refused (`Err`, with the one-line reason).
    fn record(&self, record: &RequestRecord<'_>);

    /// True when this recorder's lines are the host's log, so the core writes no log line of
    /// its own (AWS: one line per answer, not two).
    fn replaces_log_lines(&self) -> bool {
        false
    }

    /// A request to a path that is not a heartbeat path, with the reason it was given.
    fn not_found(&self, _reason: &str) {}
}

/// Azure: the Application Insights pipeline records each answer as a `requests` row.
impl Recorder for Telemetry {
    fn record(&self, record: &RequestRecord<'_>) {
        Telemetry::record(self, record);
    }
}

/// What answers heartbeats: the log, the recorder, and the site name rows are filed under.
pub struct Core {
    recorder: Arc<dyn Recorder>,
    log: LogWriter,
    /// `https://{WEBSITE_HOSTNAME}`, or [`LOCAL_SITE`]: the recorded URL is this and the path, never
    /// the client's `Host` or `X-Forwarded-Proto`.
    site: String,
}

impl Core {
    /// A core recording through `recorder` (an `Arc<Telemetry>` on Azure) and logging to `log`.
    pub fn new<R: Recorder + 'static>(recorder: Arc<R>, log: LogWriter, site: String) -> Core {
        Core {
            recorder,
            log,
            site,
        }
    }

    /// The site from `WEBSITE_HOSTNAME` (the app's own default host name on App Service and
    /// Functions, docs/platform.md §1), else [`LOCAL_SITE`].
    pub fn site_from_env(env: impl Fn(&str) -> Option<String>) -> String {
        env("WEBSITE_HOSTNAME")
            .map(|host| host.trim().to_owned())
            .filter(|host| {
                !host.is_empty()
                    && host
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':'))
            })
            .map_or_else(|| LOCAL_SITE.to_owned(), |host| format!("https://{host}"))
    }

    /// Validates, logs and records one heartbeat request: the single exit for every answer.
    pub fn answer(&self, request: HeartbeatRequest<'_>) -> Answer {
        self.answer_with_heartbeat(request).0
    }

    /// [`Core::answer`], also handing back the accepted heartbeat (already logged and recorded)
    /// so a front end can act on it after answering, e.g. notify its outage reports.
    pub fn answer_with_heartbeat(
        &self,
        request: HeartbeatRequest<'_>,
    ) -> (Answer, Option<Heartbeat>) {
        let own_lines = !self.recorder.replaces_log_lines();
        let seen = Seen::new(&self.site, &request);
        let parsed = request.body.and_then(|body| {
            if request.method != "GET" && request.method != "POST" {
                return Err(HeartbeatError::MethodNotAllowed {
                    method: clean(request.method, 20),
                    allow: "GET, POST",
                });
            }
            Heartbeat::parse(&body, request.headers.get("x-device"), Utc::now())
        });
        match parsed {
            Ok(heartbeat) => {
                if own_lines {
                    self.log
                        .line(LogLine::accepted(&seen, &heartbeat).to_json());
                }
                self.recorder.record(&seen.record(200, Ok(&heartbeat)));
                let answer = Answer {
                    status: 200,
                    body: "ok".to_owned(),
                    allow: None,
                };
                (answer, Some(heartbeat))
            }
            Err(error) => {
                let status = error.status_code();
                let reason = error.to_string();
                if own_lines {
                    self.log
                        .line(LogLine::refused(&seen, status, &reason).to_json());
                }
                let refused = Refused {
                    device: &seen.device_hint,
                    reason: &reason,
                };
                self.recorder.record(&seen.record(status, Err(refused)));
                let answer = Answer {
                    status,
                    body: reason,
                    allow: error.allow(),
                };
                (answer, None)
            }
        }
    }

    /// A path that is not a heartbeat path: logged (no telemetry row: it is not a heartbeat).
    pub fn not_found(&self, path: &str) -> Answer {
        let reason = format!(
            "no such path: {}; heartbeats go to /api/ping",
            clean(path, 100)
        );
        if !self.recorder.replaces_log_lines() {
            let line = serde_json::json!({
                "time": log_time(), "event": "not_found", "status": 404, "reason": reason,
            });
            self.log.line(line.to_string().into_bytes());
        }
        self.recorder.not_found(&reason);
        Answer {
            status: 404,
            body: reason,
            allow: None,
        }
    }
}

/// What is known of a request whatever its outcome, made safe to record: built once, then used by
/// both the log line and the telemetry row.
struct Seen {
    start: SystemTime,
    front_end: &'static str,
    url: String,
    client_ip: Option<IpAddr>,
    ip_text: String,
    request_id: String,
    user_agent: String,
    /// The `X-Device` header, sanitized: the device recorded for a refused request.
    device_hint: String,
}

impl Seen {
    fn new(site: &str, request: &HeartbeatRequest<'_>) -> Seen {
        let header = |name| request.headers.get(name).unwrap_or("");
        let device_hint = clean(header("x-device").trim(), MAX_DEVICE_CHARS);
        Seen {
            start: request.start,
            front_end: request.front_end,
            url: format!("{site}{}", clean(request.path, MAX_RECORDED_CHARS)),
            client_ip: request.client_ip,
            ip_text: request
                .client_ip
                .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string()),
            request_id: clean(request.request_id, MAX_RECORDED_CHARS),
            user_agent: clean(header("user-agent"), MAX_RECORDED_CHARS),
            device_hint: if device_hint.is_empty() {
                UNKNOWN_DEVICE.to_owned()
            } else {
                device_hint
            },
        }
    }

    fn record<'r>(
        &'r self,
        status: u16,
        heartbeat: Result<&'r Heartbeat, Refused<'r>>,
    ) -> RequestRecord<'r> {
        RequestRecord {
            start: self.start,
            end: SystemTime::now(),
            status,
            url: &self.url,
            client_ip: self.client_ip,
            request_id: &self.request_id,
            user_agent: &self.user_agent,
            front_end: self.front_end,
            heartbeat,
        }
    }
}

/// The JSON line logged for every heartbeat request, accepted (`event: heartbeat`) or refused
/// (`event: refused`). Serialized straight from borrowed fields: this runs on every request.
#[derive(Serialize)]
struct LogLine<'a> {
    time: String,
    event: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<&'a str>,
    ip: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    note: Option<&'a str>,
    invocation_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rtt_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outages: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    host_mode: &'static str,
}

impl<'a> LogLine<'a> {
    fn accepted(seen: &'a Seen, heartbeat: &'a Heartbeat) -> LogLine<'a> {
        LogLine {
            event: "heartbeat",
            device: Some(&heartbeat.device),
            note: Some(&heartbeat.note),
            agent_version: heartbeat.agent_version.as_deref(),
            seq: heartbeat.seq,
            rtt_ms: heartbeat.rtt_ms,
            outages: Some(heartbeat.outages.len()),
            ..LogLine::common(seen)
        }
    }

    fn refused(seen: &'a Seen, status: u16, reason: &'a str) -> LogLine<'a> {
        LogLine {
            event: "refused",
            status: Some(status),
            reason: Some(reason),
            ..LogLine::common(seen)
        }
    }

    fn common(seen: &'a Seen) -> LogLine<'a> {
        LogLine {
            time: log_time(),
            event: "",
            device: None,
            ip: &seen.ip_text,
            note: None,
            invocation_id: &seen.request_id,
            agent_version: None,
            seq: None,
            rtt_ms: None,
            outages: None,
            status: None,
            reason: None,
            host_mode: seen.front_end,
        }
    }

    fn to_json(&self) -> Vec<u8> {
        let mut buffer = Vec::with_capacity(256);
        // Serializing borrowed strings and numbers cannot fail.
        let _ = serde_json::to_writer(&mut buffer, self);
        buffer
    }
}

fn log_time() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Client-chosen text made safe to record: at most `max` characters, every control character and
/// bidirectional-override character replaced by U+FFFD, so it cannot forge log lines, move a
/// terminal's cursor or reorder a table.
pub(crate) fn clean(text: &str, max: usize) -> String {
    text.chars()
        .take(max)
        .map(|c| {
            if c.is_control() || matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}') {
                '\u{FFFD}'
            } else {
                c
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Newlines, NUL, escape sequences and bidi overrides are replaced; length is bounded.
    #[test]
    fn client_text_is_cleaned() {
        assert_eq!(
            clean("a\nb\0c\u{1b}[31md", 100),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}[31md"
        );
        assert_eq!(clean("evil\u{202E}txt", 100), "evil\u{FFFD}txt");
        assert_eq!(clean(&"é".repeat(300), 100).chars().count(), 100);
    }

    /// The recorded site is the platform's host name, or the fixed local name; never anything odd.
    #[test]
    fn site_comes_from_website_hostname() {
        let env = |value: Option<&'static str>| move |_: &str| value.map(str::to_owned);
        assert_eq!(
            Core::site_from_env(env(Some("ispmon.azurewebsites.net"))),
            "https://ispmon.azurewebsites.net"
        );
        assert_eq!(Core::site_from_env(env(None)), LOCAL_SITE);
        assert_eq!(Core::site_from_env(env(Some("a/b?c"))), LOCAL_SITE);
    }

    /// Repeated headers are one list; names are case-insensitive.
    #[test]
    fn headers_join_repeats() {
        let mut headers = Headers::new();
        headers.append("X-Forwarded-For", "1.2.3.4");
        headers.append("x-forwarded-for", "5.6.7.8:9");
        assert_eq!(headers.get("x-forwarded-for"), Some("1.2.3.4, 5.6.7.8:9"));
        assert_eq!(headers.get("x-device"), None);
    }
}
