//! JSON invocation mode: the host's default, and its fallback whenever the function has bindings
//! other than one HTTP trigger and one HTTP output. The host `POST`s `/{FunctionName}` with
//! `{"Data": {"req": {…}}, "Metadata": {…}}` and expects `2xx application/json` with
//! `{"Outputs": {"res": {…}}, "Logs": […], "ReturnValue": null}`; anything else fails the
//! invocation (docs/platform.md §1). The real status of the heartbeat travels inside `Outputs.res`.

use std::time::SystemTime;

use axum::Json;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::forwarding::read_body;
use super::{AppState, PingAnswer, PingRequest, answer_ping, plain};
use crate::heartbeat::{HeartbeatError, MAX_BODY_BYTES};
use crate::telemetry::HostMode;

/// The binding names in `Ping/function.json`: the trigger's data arrives under `Data.req`, the
/// answer goes out under `Outputs.res`.
pub const TRIGGER_BINDING: &str = "req";
pub const OUTPUT_BINDING: &str = "res";

/// The envelope may be larger than the heartbeat it carries: JSON escaping, base64, headers.
const MAX_ENVELOPE_BYTES: usize = 4 * MAX_BODY_BYTES + 64 * 1024;

pub(super) async fn ping(state: AppState, request: Request) -> Response {
    let start = SystemTime::now();
    if request.method() != Method::POST {
        let reason = "the host invokes /Ping with POST; heartbeats go to /api/ping".to_owned();
        return plain(StatusCode::METHOD_NOT_ALLOWED, reason);
    }
    let (parts, body) = request.into_parts();
    let outer_invocation_id = parts
        .headers
        .get("x-azure-functions-invocationid")
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    let envelope = match read_body(&parts.headers, body, MAX_ENVELOPE_BYTES).await {
        Ok(bytes) => bytes,
        Err(err) => {
            let answer = PingAnswer {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                body: err.to_string(),
            };
            return outputs(answer);
        }
    };
    let http = match trigger_data(&envelope) {
        Ok(http) => http,
        Err(reason) => return plain(StatusCode::BAD_REQUEST, reason),
    };

    let headers = http_headers(&http);
    let header = |name: &str| headers.get(name).cloned();
    let method = text_field(&http, "Method")
        .and_then(|method| Method::from_bytes(method.to_ascii_uppercase().as_bytes()).ok())
        .unwrap_or(Method::POST);
    let url = text_field(&http, "Url")
        .map(|url| url.split(['?', '#']).next().unwrap_or("").to_owned())
        .unwrap_or_default();
    let answer = answer_ping(
        &state,
        PingRequest {
            start,
            mode: HostMode::Invocation,
            method,
            url,
            body: request_body(&http, header("content-type").as_deref()),
            device_header: header("x-device"),
            forwarded_for: header("x-forwarded-for"),
            invocation_id: outer_invocation_id.or_else(|| header("x-azure-functions-invocationid")),
            user_agent: header("user-agent"),
        },
    );
    outputs(answer)
}

/// Wraps an answer the way the host expects it.
fn outputs(answer: PingAnswer) -> Response {
    let mut headers = json!({"Content-Type": "text/plain; charset=utf-8"});
    if answer.status == StatusCode::METHOD_NOT_ALLOWED {
        headers["Allow"] = json!("GET, POST");
    }
    let payload = json!({
        "Outputs": {
            OUTPUT_BINDING: {
                "statusCode": answer.status.as_u16(),
                "body": answer.body,
                "headers": headers,
            }
        },
        "Logs": [],
        "ReturnValue": null,
    });
    (StatusCode::OK, Json(payload)).into_response()
}

/// `Data.req` of the envelope, or a one-line reason it is not a host envelope.
fn trigger_data(envelope: &[u8]) -> Result<Map<String, Value>, String> {
    let value: Value = serde_json::from_slice(envelope)
        .map_err(|err| format!("invocation body is not valid JSON: {err}"))?;
    let data = get_ignoring_case(&value, "Data")
        .ok_or("invocation body has no `Data`; is this the Functions host?")?;
    match get_ignoring_case(data, TRIGGER_BINDING) {
        Some(Value::Object(http)) => Ok(http.clone()),
        _ => Err(format!(
            "invocation body has no `Data.{TRIGGER_BINDING}` object"
        )),
    }
}

/// Header names as the host sends them are not reliably cased; keys are lower-cased here. Values
/// arrive as lists (`{"name": ["v"]}`); a plain string is accepted too.
fn http_headers(http: &Map<String, Value>) -> std::collections::HashMap<String, String> {
    let Some(Value::Object(headers)) = get_map_ignoring_case(http, "Headers") else {
        return Default::default();
    };
    headers
        .iter()
        .filter_map(|(name, value)| {
            let text = match value {
                Value::String(text) => text.clone(),
                Value::Array(items) => items
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "),
                _ => return None,
            };
            Some((name.to_ascii_lowercase(), text))
        })
        .collect()
}

/// The heartbeat body: a string (base64 for binary content types), absent when empty. A host that
/// hands over parsed JSON is handled too, by serializing it back.
fn request_body(
    http: &Map<String, Value>,
    content_type: Option<&str>,
) -> Result<Vec<u8>, HeartbeatError> {
    let binary = content_type.is_some_and(|kind| {
        let kind = kind.to_ascii_lowercase();
        kind.starts_with("application/octet-stream") || kind.starts_with("multipart/")
    });
    let bytes = match get_map_ignoring_case(http, "Body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if binary => base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| {
                HeartbeatError::InvalidJson("the binary body is not valid base64".to_owned())
            })?,
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(other) => serde_json::to_vec(other).unwrap_or_default(),
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(HeartbeatError::BodyTooLarge { bytes: bytes.len() });
    }
    Ok(bytes)
}

fn text_field<'a>(http: &'a Map<String, Value>, name: &str) -> Option<&'a str> {
    get_map_ignoring_case(http, name).and_then(Value::as_str)
}

fn get_ignoring_case<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    value
        .as_object()
        .and_then(|map| get_map_ignoring_case(map, name))
}

fn get_map_ignoring_case<'a>(map: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    map.get(name).or_else(|| {
        map.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}
