//! Forwarding mode (`enableForwardingHttpRequest: true`, what `host.json` uses): the host passes the
//! original method, path (with `/api`), headers and body through, and returns our answer unchanged
//! (docs/platform.md §1).

use std::time::SystemTime;

use axum::extract::Request;
use axum::response::Response;

use super::{FORWARDING, INVOCATION_ID_HEADER, client_ip};
use crate::handler::core::{Headers, HeartbeatRequest};
use crate::handler::{AppState, plain, read_body};
use crate::heartbeat::{HeartbeatError, MAX_BODY_BYTES};

pub(crate) async fn ping(state: AppState, request: Request) -> Response {
    let start = SystemTime::now();
    let (parts, body) = request.into_parts();
    let body = read_body(
        &parts.headers,
        body,
        MAX_BODY_BYTES,
        state.body_timeout,
        |bytes, _| HeartbeatError::BodyTooLarge { bytes },
    )
    .await;
    let headers = headers_of(&parts.headers);
    let answer = state.core.answer(HeartbeatRequest {
        start,
        front_end: FORWARDING,
        method: parts.method.as_str(),
        path: parts.uri.path(),
        headers: &headers,
        body,
        client_ip: client_ip(&headers),
        request_id: headers.get(INVOCATION_ID_HEADER).unwrap_or(""),
    });
    plain(answer)
}

/// The request's headers as the core sees them (values as text, invalid UTF-8 replaced).
pub(crate) fn headers_of(headers: &axum::http::HeaderMap) -> Headers {
    let mut seen = Headers::new();
    for (name, value) in headers {
        seen.append(name.as_str(), &String::from_utf8_lossy(value.as_bytes()));
    }
    seen
}
