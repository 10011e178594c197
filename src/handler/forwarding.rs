//! Forwarding mode (`enableForwardingHttpRequest: true`, what `host.json` uses): the host passes the
//! original method, path (with `/api`), headers and body through, and returns our answer unchanged
//! (docs/platform.md §1).

use std::time::SystemTime;

use axum::body::Body;
use axum::extract::Request;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use super::{AppState, PingRequest, answer_ping, plain};
use crate::heartbeat::{HeartbeatError, MAX_BODY_BYTES};
use crate::telemetry::HostMode;

pub(super) async fn ping(state: AppState, request: Request) -> Response {
    let start = SystemTime::now();
    let (parts, body) = request.into_parts();
    let body = read_body(&parts.headers, body, MAX_BODY_BYTES).await;
    let answer = answer_ping(
        &state,
        PingRequest {
            start,
            mode: HostMode::Forwarding,
            method: parts.method.clone(),
            url: url_without_query(&parts),
            body,
            device_header: header_text(&parts.headers, "x-device"),
            forwarded_for: header_text(&parts.headers, "x-forwarded-for"),
            invocation_id: header_text(&parts.headers, "x-azure-functions-invocationid"),
            user_agent: header_text(&parts.headers, "user-agent"),
        },
    );
    let mut response = plain(answer.status, answer.body);
    if answer.status == StatusCode::METHOD_NOT_ALLOWED {
        response
            .headers_mut()
            .insert(header::ALLOW, "GET, POST".parse().expect("static header"));
    }
    response
}

/// Reads at most `limit` bytes. A declared or actual larger body is refused without reading it all.
pub(super) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Vec<u8>, HeartbeatError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if let Some(bytes) = declared.filter(|bytes| *bytes > limit) {
        return Err(HeartbeatError::BodyTooLarge { bytes });
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes().to_vec()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(HeartbeatError::BodyTooLarge { bytes: limit + 1 })
        }
        Err(err) => Err(HeartbeatError::InvalidJson(format!(
            "the body could not be read: {err}"
        ))),
    }
}

/// All values of a header joined as one (a repeated `X-Forwarded-For` is one list).
fn header_text(headers: &HeaderMap, name: &str) -> Option<String> {
    let values: Vec<_> = headers
        .get_all(name)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect();
    (!values.is_empty()).then(|| values.join(", "))
}

fn url_without_query(parts: &Parts) -> String {
    let host = header_text(&parts.headers, "host").unwrap_or_else(|| "localhost".to_owned());
    let scheme =
        header_text(&parts.headers, "x-forwarded-proto").unwrap_or_else(|| "http".to_owned());
    format!("{scheme}://{host}{}", parts.uri.path())
}
