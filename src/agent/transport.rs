//! One heartbeat over HTTP, and what its answer means.
//!
//! The endpoint is treated as a possibly hostile peer:
//! - **No redirect is followed.** The key travels in `x-functions-key` (and perhaps in `?code=`);
//!   following a redirect would hand it to whatever host the answer names, and a 301 from an
//!   HTTPS-only app would count a heartbeat as delivered that the handler never saw. A 3xx is a
//!   configuration problem: the message names the new location.
//! - **At most [`MAX_ANSWER_BYTES`] of an answer are read**, only for `--verbose`; the rest is
//!   dropped with the connection, so a huge error body cannot grow the agent.
//! - **`Retry-After`** on any answer is returned to the scheduler, capped at [`MAX_RETRY_AFTER`].
//!
//! reqwest's defaults (follow 10 redirects, set `Referer`) and `Retry-After`'s two forms:
//! docs/platform.md §9.

use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::header::{LOCATION, RETRY_AFTER};
use tokio::time::Instant;

use super::config::AgentConfig;
use crate::heartbeat::Heartbeat;

/// How much of an answer's body is read: enough for the handler's one-line refusal reasons.
pub const MAX_ANSWER_BYTES: usize = 2048;
/// The longest wait a `Retry-After` can impose: an hour keeps a confused or hostile endpoint from
/// silencing the agent for days, while honouring any sane throttling.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// A heartbeat that got through.
#[derive(Debug, Clone, Copy)]
pub struct Delivered {
    pub status: u16,
    pub rtt: Duration,
}

/// Why one heartbeat attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptFailure {
    /// The endpoint answered with this 4xx or 5xx status.
    Status {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// The endpoint answered with a redirect, never followed. `location` is safe to print (no
    /// user name, password, query or fragment).
    Redirect {
        status: u16,
        location: Option<String>,
    },
    /// No answer: connection refused or reset, name not resolved, timeout.
    Unreachable(String),
}

impl AttemptFailure {
    /// Whether the endpoint itself answered (so retrying at once only adds to its load).
    pub fn answered(&self) -> bool {
        !matches!(self, AttemptFailure::Unreachable(_))
    }

    /// The wait the endpoint asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            AttemptFailure::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

impl std::fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptFailure::Status {
                status,
                retry_after,
            } => {
                write!(f, "endpoint answered {status}")?;
                if let Some(wait) = retry_after {
                    write!(f, " (Retry-After {} s)", wait.as_secs())?;
                }
                Ok(())
            }
            AttemptFailure::Redirect {
                status,
                location: Some(location),
            } => write!(
                f,
                "endpoint answered {status}, a redirect to {location} (not followed): use {location} as HEARTBEAT_URL"
            ),
            AttemptFailure::Redirect {
                status,
                location: None,
            } => write!(
                f,
                "endpoint answered {status}, a redirect without a usable Location (not followed): check HEARTBEAT_URL"
            ),
            AttemptFailure::Unreachable(why) => write!(f, "endpoint unreachable: {why}"),
        }
    }
}

/// Delivers one heartbeat: the loop's only contact with the endpoint, so that tests can drive the
/// loop with a scripted endpoint under `tokio::time::pause()`. [`Transport`] is the real one.
pub trait Sender: Send + Sync + 'static {
    /// One attempt. `log` receives the start of an error answer's body (for `--verbose`).
    fn send(
        &self,
        heartbeat: &Heartbeat,
        log: impl FnOnce(String) + Send,
    ) -> impl Future<Output = Result<Delivered, AttemptFailure>> + Send;
}

impl Sender for Transport {
    fn send(
        &self,
        heartbeat: &Heartbeat,
        log: impl FnOnce(String) + Send,
    ) -> impl Future<Output = Result<Delivered, AttemptFailure>> + Send {
        self.attempt(heartbeat, log)
    }
}

/// The HTTP client, set up once.
pub struct Transport {
    client: reqwest::Client,
    url: reqwest::Url,
    key: Option<String>,
}

impl Transport {
    pub fn new(config: &AgentConfig) -> Result<Transport, String> {
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .referer(false)
            .user_agent(format!("isp-monitor-agent/{}", super::VERSION))
            .build()
            .map_err(|err| format!("cannot build the HTTP client: {err}"))?;
        Ok(Transport {
            client,
            url: config.url.clone(),
            key: config.key.clone(),
        })
    }

    /// One HTTP attempt. `log` receives the start of an error answer's body (for `--verbose`).
    pub async fn attempt(
        &self,
        heartbeat: &Heartbeat,
        log: impl FnOnce(String) + Send,
    ) -> Result<Delivered, AttemptFailure> {
        let mut request = self.client.post(self.url.clone()).json(heartbeat);
        if let Some(key) = &self.key {
            request = request.header("x-functions-key", key);
        }
        let started = Instant::now();
        // `without_url`: the URL may carry the key in `?code=`, and error messages get logged.
        let mut answer = request
            .send()
            .await
            .map_err(|err| AttemptFailure::Unreachable(describe(&err.without_url())))?;
        let rtt = started.elapsed();
        let status = answer.status();
        if status.is_success() {
            // The body is never read: a 2xx is all the agent needs.
            return Ok(Delivered {
                status: status.as_u16(),
                rtt,
            });
        }
        if status.is_redirection() {
            let location = answer
                .headers()
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| self.url.join(value).ok())
                .map(|url| printable_url(&url));
            return Err(AttemptFailure::Redirect {
                status: status.as_u16(),
                location,
            });
        }
        let retry_after = answer
            .headers()
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, Utc::now()));
        let mut prefix = Vec::new();
        while prefix.len() < MAX_ANSWER_BYTES {
            match answer.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_ANSWER_BYTES - prefix.len();
                    prefix.extend_from_slice(&chunk[..chunk.len().min(room)]);
                }
                _ => break,
            }
        }
        drop(answer); // closes the connection with the rest of the body unread
        let reason: String = String::from_utf8_lossy(&prefix)
            .chars()
            .take(200)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        log(format!("endpoint answered {}: {reason}", status.as_u16()));
        Err(AttemptFailure::Status {
            status: status.as_u16(),
            retry_after,
        })
    }
}

/// A URL without what must never be printed: user name, password, query (`?code=` holds the key)
/// and fragment.
pub fn printable_url(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.set_query(None);
    url.set_fragment(None);
    let text = url.to_string();
    if text.chars().count() > 200 {
        text.chars().take(200).collect::<String>() + "…"
    } else {
        text
    }
}

/// `Retry-After` as seconds or an HTTP date (RFC 9110 §10.2.3), at most [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(seconds) => Duration::from_secs(seconds),
        Err(_) => {
            let at = DateTime::parse_from_rfc2822(value).ok()?.to_utc();
            (at - now).to_std().unwrap_or(Duration::ZERO)
        }
    };
    Some(wait.min(MAX_RETRY_AFTER))
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Seconds and HTTP dates are understood; absurd waits are capped; junk is ignored.
    #[test]
    fn retry_after_values() {
        let now = DateTime::parse_from_rfc3339("2026-11-25T10:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 10:01:30 GMT", now),
            Some(Duration::from_secs(90))
        );
        assert_eq!(
            parse_retry_after("Wed, 25 Nov 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("99999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after("soon", now), None);
    }

    /// Credentials, the key in the query and fragments never reach a printed URL.
    #[test]
    fn printable_urls_hide_secrets() {
        let url = reqwest::Url::parse("https://me:pw@f.example/api/ping?code=KEY#x").unwrap();
        assert_eq!(printable_url(&url), "https://f.example/api/ping");
    }
}
