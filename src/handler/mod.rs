//! The custom handler: an HTTP server the Functions host starts and forwards heartbeats to.
//!
//! - [`core`]: the host-neutral heartbeat core: a request in, the answer, its log line and its
//!   telemetry row out. Every heartbeat answer leaves through [`core::Core::answer`].
//! - `azure`: the Azure Functions front end (forwarding and JSON invocation modes, the trusted
//!   client address, the invocation id): thin adapters from the host's contract to the core.
//! - `server`: the HTTP server itself, with every wait timed out and every buffer bounded.
//! - [`log`]: log lines that never block an answer.

pub mod aws;
pub(crate) mod azure;
pub mod core;
pub mod log;
mod server;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use self::core::{Answer, Core};
use crate::heartbeat::HeartbeatError;

pub use server::{Limits, SHUTDOWN_GRACE, serve};

/// The port `func start` serves on; the handler uses it too when run alone, so the same URL works.
pub const DEFAULT_PORT: u16 = 7071;

/// What every request handler shares.
#[derive(Clone)]
pub struct AppState {
    core: Arc<Core>,
    /// How long a request body may take to arrive ([`Limits::body_timeout`]).
    body_timeout: Duration,
}

impl AppState {
    pub fn new(core: Arc<Core>, limits: &Limits) -> AppState {
        AppState {
            core,
            body_timeout: limits.body_timeout,
        }
    }
}

/// The handler's routes. `GET /` is the host's readiness and health probe; everything else goes
/// to the Azure front end, which routes by path.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", get(ready))
        .fallback(azure::route_by_path)
        .with_state(state)
}

/// The port to listen on: `FUNCTIONS_CUSTOMHANDLER_PORT`, else the legacy
/// `FUNCTIONS_HTTPWORKER_PORT` (both set by the host, docs/platform.md §1), else `flag` (the
/// `--port` option), else [`DEFAULT_PORT`]. The host's variables win so a `--port` in
/// `host.json`'s arguments cannot point the handler away from where the host calls it.
pub fn port_from_env(
    env: impl Fn(&str) -> Option<String>,
    flag: Option<u16>,
) -> Result<u16, String> {
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
    Ok(flag.unwrap_or(DEFAULT_PORT))
}

async fn ready() -> &'static str {
    "ISP Monitor handler is running; heartbeats go to /api/ping"
}

/// A core answer as a plain-text response with a one-line body.
pub(crate) fn plain(answer: Answer) -> Response {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::BAD_REQUEST);
    let mut response = (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        answer.body,
    )
        .into_response();
    if let Some(allow) = answer.allow {
        response
            .headers_mut()
            .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    }
    response
}

/// Reads at most `limit` bytes within `timeout`. A declared or actual larger body is refused
/// (`too_large(bytes, limit)`) without reading it all.
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    timeout: Duration,
    too_large: impl Fn(usize, usize) -> HeartbeatError,
) -> Result<Vec<u8>, HeartbeatError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if let Some(bytes) = declared.filter(|bytes| *bytes > limit) {
        return Err(too_large(bytes, limit));
    }
    let read = tokio::time::timeout(timeout, Limited::new(body, limit).collect()).await;
    match read {
        Err(_) => Err(HeartbeatError::BodyTimeout {
            seconds: timeout.as_secs_f64().round() as u64,
        }),
        Ok(Ok(collected)) => Ok(collected.to_bytes().to_vec()),
        Ok(Err(err)) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(too_large(limit + 1, limit))
        }
        Ok(Err(err)) => Err(HeartbeatError::BodyUnreadable(err.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The host's port variable wins, the legacy one is the fallback, then `--port`, then 7071.
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
        assert_eq!(port_from_env(env(&[]), None), Ok(7071));
        assert_eq!(port_from_env(env(&[]), Some(8080)), Ok(8080));
        assert_eq!(
            port_from_env(env(&[("FUNCTIONS_HTTPWORKER_PORT", "4000")]), Some(8080)),
            Ok(4000)
        );
        assert_eq!(
            port_from_env(
                env(&[
                    ("FUNCTIONS_CUSTOMHANDLER_PORT", "5000"),
                    ("FUNCTIONS_HTTPWORKER_PORT", "4000")
                ]),
                None
            ),
            Ok(5000)
        );
        let err =
            port_from_env(env(&[("FUNCTIONS_CUSTOMHANDLER_PORT", "http")]), None).unwrap_err();
        assert_eq!(
            err,
            "FUNCTIONS_CUSTOMHANDLER_PORT is \"http\"; it must be a port number from 1 to 65535"
        );
        assert!(port_from_env(env(&[("FUNCTIONS_CUSTOMHANDLER_PORT", "0")]), None).is_err());
    }
}
