//! The Azure Functions custom handler: an HTTP server the Functions host starts and forwards
//! heartbeats to.
//!
//! The host speaks to us in one of two ways, and both end in [`answer_ping`], so every rule about
//! heartbeats holds identically in both:
//! - forwarding mode ([`forwarding`]): the original request arrives as it was sent, on `/api/ping`;
//! - JSON invocation mode ([`invocation`]): the host wraps the request in a JSON envelope and
//!   `POST`s it to `/Ping`, and expects the answer wrapped the same way.

pub mod client_ip;
pub mod forwarding;
pub mod invocation;

use std::future::Future;
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::Utc;
use serde::Serialize;
use tokio::net::TcpListener;

use crate::heartbeat::{Heartbeat, HeartbeatError, UNKNOWN_DEVICE};
use crate::telemetry::{HostMode, RefusedRequest, RequestRecord, Telemetry};

/// The port `func start` serves on; the handler uses it too when run alone, so the same URL works.
pub const DEFAULT_PORT: u16 = 7071;
/// How long in-flight requests may take to finish after a shutdown signal before we stop anyway,
/// so a stalled client cannot hold the process open.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    telemetry: Arc<Telemetry>,
}

impl AppState {
    pub fn new(telemetry: Arc<Telemetry>) -> AppState {
        AppState { telemetry }
    }
}

/// The handler's routes. `GET /` is the host's readiness and health probe; the heartbeat paths are
/// matched case-insensitively because the platform's routing is (docs/platform.md §1).
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(ready))
        .fallback(route_by_path)
        .with_state(state)
}

/// Serves until `shutdown` completes, then lets in-flight requests finish for at most
/// [`SHUTDOWN_GRACE`].
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = stopping_tx.send(true);
    });
    let mut graceful_rx = stopping_rx.clone();
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(async move {
        let _ = graceful_rx.wait_for(|stopping| *stopping).await;
    });
    tokio::select! {
        result = server => result,
        () = async {
            let _ = stopping_rx.wait_for(|stopping| *stopping).await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } => {
            tracing::warn!("requests still open {SHUTDOWN_GRACE:?} after shutdown; stopping anyway");
            Ok(())
        }
    }
}

/// The port to listen on: `FUNCTIONS_CUSTOMHANDLER_PORT`, else the legacy
/// `FUNCTIONS_HTTPWORKER_PORT` (both set by the host, docs/platform.md §1), else [`DEFAULT_PORT`].
pub fn port_from_env(env: impl Fn(&str) -> Option<String>) -> Result<u16, String> {
    for name in ["FUNCTIONS_CUSTOMHANDLER_PORT", "FUNCTIONS_HTTPWORKER_PORT"] {
        if let Some(value) = env(name) {
            return match value.trim().parse::<u16>() {
                Ok(port) if port > 0 => Ok(port),
                _ => Err(format!(
                    "{name} is {value:?}; it must be a port number from 1 to 65535"
                )),
            };
        }
    }
    Ok(DEFAULT_PORT)
}

async fn ready() -> &'static str {
    "ISP Monitor handler is running; heartbeats go to /api/ping"
}

async fn route_by_path(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path();
    if path.eq_ignore_ascii_case("/api/ping") {
        forwarding::ping(state, request).await
    } else if path.eq_ignore_ascii_case("/ping") {
        invocation::ping(state, request).await
    } else {
        let reason = format!(
            "no such path: {}; heartbeats go to /api/ping",
            shorten(path, 100)
        );
        plain(StatusCode::NOT_FOUND, reason)
    }
}

/// A heartbeat request as either host mode delivers it.
pub(crate) struct PingRequest {
    pub start: SystemTime,
    pub mode: HostMode,
    pub method: Method,
    /// Without the query string, which can carry the function key.
    pub url: String,
    pub body: Result<Vec<u8>, HeartbeatError>,
    pub device_header: Option<String>,
    pub forwarded_for: Option<String>,
    pub invocation_id: Option<String>,
    pub user_agent: Option<String>,
}

/// The answer to a heartbeat, before a host mode wraps it.
#[derive(Debug)]
pub(crate) struct PingAnswer {
    pub status: StatusCode,
    pub body: String,
}

/// Validates, logs and records one heartbeat; the single place where both host modes meet.
pub(crate) fn answer_ping(state: &AppState, request: PingRequest) -> PingAnswer {
    let client_ip = client_ip::trusted_client_ip(request.forwarded_for.as_deref());
    let invocation_id = request.invocation_id.as_deref().unwrap_or("");
    let outcome = if request.method != Method::GET && request.method != Method::POST {
        Err((
            StatusCode::METHOD_NOT_ALLOWED,
            format!(
                "method {} is not allowed; use GET or POST",
                shorten(request.method.as_str(), 20)
            ),
        ))
    } else {
        request
            .body
            .and_then(|body| Heartbeat::parse(&body, request.device_header.as_deref(), Utc::now()))
            .map_err(|err| (status_of(&err), err.to_string()))
    };

    let ip_text = client_ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let (status, body) = match &outcome {
        Ok(heartbeat) => {
            log_line(&LogLine {
                time: log_time(),
                event: "heartbeat",
                device: Some(&heartbeat.device),
                ip: &ip_text,
                note: Some(&heartbeat.note),
                invocation_id,
                agent_version: heartbeat.agent_version.as_deref(),
                seq: heartbeat.seq,
                rtt_ms: heartbeat.rtt_ms,
                outages: Some(heartbeat.outages.len()),
                status: None,
                reason: None,
                host_mode: request.mode.as_str(),
            });
            (StatusCode::OK, "ok".to_owned())
        }
        Err((status, reason)) => {
            log_line(&LogLine {
                time: log_time(),
                event: "refused",
                device: None,
                ip: &ip_text,
                note: None,
                invocation_id,
                agent_version: None,
                seq: None,
                rtt_ms: None,
                outages: None,
                status: Some(status.as_u16()),
                reason: Some(reason),
                host_mode: request.mode.as_str(),
            });
            (*status, reason.clone())
        }
    };

    let refused_device = request
        .device_header
        .as_deref()
        .map(|device| shorten(device, crate::heartbeat::MAX_DEVICE_CHARS))
        .unwrap_or(UNKNOWN_DEVICE);
    state.telemetry.record(&RequestRecord {
        start: request.start,
        end: SystemTime::now(),
        status: status.as_u16(),
        url: &request.url,
        client_ip,
        invocation_id,
        user_agent: request.user_agent.as_deref().unwrap_or(""),
        mode: request.mode,
        heartbeat: match &outcome {
            Ok(heartbeat) => Ok(heartbeat),
            Err((_, reason)) => Err(RefusedRequest {
                device: refused_device,
                reason,
            }),
        },
    });
    PingAnswer { status, body }
}

fn status_of(err: &HeartbeatError) -> StatusCode {
    StatusCode::from_u16(err.status_code()).unwrap_or(StatusCode::BAD_REQUEST)
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

fn log_time() -> String {
    Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One JSON line on stdout, written whole: the host files stdout as Information traces
/// (docs/platform.md §1).
fn log_line(line: &LogLine<'_>) {
    let mut buffer = Vec::with_capacity(256);
    if serde_json::to_writer(&mut buffer, line).is_ok() {
        buffer.push(b'\n');
        // A closed stdout must not turn a heartbeat into an error; the telemetry row still records it.
        let _ = std::io::stdout().lock().write_all(&buffer);
    }
}

/// A plain-text answer with a one-line body.
pub(crate) fn plain(status: StatusCode, body: String) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

/// Cuts client-supplied text to `max` characters for use in messages.
fn shorten(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((cut, _)) => &text[..cut],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's port variable wins, the legacy one is the fallback, 7071 the default.
    #[test]
    fn port_precedence_and_errors() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(port_from_env(env(&[])), Ok(7071));
        assert_eq!(
            port_from_env(env(&[("FUNCTIONS_HTTPWORKER_PORT", "4000")])),
            Ok(4000)
        );
        assert_eq!(
            port_from_env(env(&[
                ("FUNCTIONS_CUSTOMHANDLER_PORT", "5000"),
                ("FUNCTIONS_HTTPWORKER_PORT", "4000")
            ])),
            Ok(5000)
        );
        let err = port_from_env(env(&[("FUNCTIONS_CUSTOMHANDLER_PORT", "http")])).unwrap_err();
        assert_eq!(
            err,
            "FUNCTIONS_CUSTOMHANDLER_PORT is \"http\"; it must be a port number from 1 to 65535"
        );
        assert!(port_from_env(env(&[("FUNCTIONS_CUSTOMHANDLER_PORT", "0")])).is_err());
    }
}
