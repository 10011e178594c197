//! JSON invocation mode: the host's default, and its fallback whenever the function has bindings
//! other than one HTTP trigger and one HTTP output. The host `POST`s `/{FunctionName}` with
//! `{"Data": {"req": {…}}, "Metadata": {…}}` and expects `2xx application/json` with
//! `{"Outputs": {"res": {…}}, "Logs": […], "ReturnValue": null}`; anything else fails the
//! invocation (docs/platform.md §1). The real status of the heartbeat travels inside `Outputs.res`.
//!
//! An envelope the handler cannot use is refused through the core like any other bad heartbeat
//! (a log line and a telemetry row); only the wrapping differs: a request that is not a host
//! envelope at all is answered plainly, since no host is waiting for `Outputs`.

use std::time::SystemTime;

use axum::Json;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Map, Value, json};

use super::forwarding::headers_of;
use super::{INVOCATION, INVOCATION_ID_HEADER, client_ip};
use crate::handler::core::{Answer, Headers, HeartbeatRequest};
use crate::handler::{AppState, plain, read_body};
use crate::heartbeat::{HeartbeatError, MAX_BODY_BYTES};

/// The binding names in `Ping/function.json`: the trigger's data arrives under `Data.req`, the
/// answer goes out under `Outputs.res`.
pub(crate) const TRIGGER_BINDING: &str = "req";
pub(crate) const OUTPUT_BINDING: &str = "res";

/// The envelope may be larger than the heartbeat it carries: JSON escaping, base64, headers.
pub(crate) const MAX_ENVELOPE_BYTES: usize = 4 * MAX_BODY_BYTES + 64 * 1024;

/// The path recorded for a request whose envelope names none.
const INVOCATION_PATH: &str = "/Ping";

pub(crate) async fn ping(state: AppState, request: Request) -> Response {
    let start = SystemTime::now();
    let (parts, body) = request.into_parts();
    let outer = headers_of(&parts.headers);
    let outer_id = outer.get(INVOCATION_ID_HEADER).map(str::to_owned);
    let read = if parts.method == axum::http::Method::POST {
        read_body(
            &parts.headers,
            body,
            MAX_ENVELOPE_BYTES,
            state.body_timeout,
            |bytes, limit| HeartbeatError::EnvelopeTooLarge { bytes, limit },
        )
        .await
    } else {
        Err(HeartbeatError::MethodNotAllowed {
            method: parts.method.to_string(),
            allow: "POST",
        })
    };
    let envelope = read.and_then(|bytes| Envelope::decode(&bytes));
    let (envelope, refusal) = match envelope {
        Ok(envelope) => (envelope, None),
        Err(error) => (Envelope::default(), Some(error)),
    };
    // Not from the host (wrong method, or not an envelope): nobody expects `Outputs`.
    let plain_answer = matches!(
        refusal,
        Some(HeartbeatError::MethodNotAllowed { .. } | HeartbeatError::EnvelopeMalformed(_))
    );
    let body = match refusal {
        Some(error) => Err(error),
        None => envelope.body(),
    };
    let request_id = outer_id
        .as_deref()
        .or_else(|| envelope.headers.get(INVOCATION_ID_HEADER))
        .unwrap_or("");
    let answer = state.core.answer(HeartbeatRequest {
        start,
        front_end: INVOCATION,
        method: &envelope.method,
        path: &envelope.path,
        headers: &envelope.headers,
        body,
        client_ip: client_ip(&envelope.headers),
        request_id,
    });
    if plain_answer {
        plain(answer)
    } else {
        outputs(answer)
    }
}

/// `Data.req` of a host envelope: the request the client sent, as the host describes it.
#[derive(Debug)]
pub(crate) struct Envelope {
    method: String,
    path: String,
    headers: Headers,
    body: Option<Value>,
}

impl Default for Envelope {
    fn default() -> Envelope {
        Envelope {
            method: "POST".to_owned(),
            path: INVOCATION_PATH.to_owned(),
            headers: Headers::new(),
            body: None,
        }
    }
}

impl Envelope {
    /// Decodes an envelope, or says in one line why it is not one.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Envelope, HeartbeatError> {
        let malformed = HeartbeatError::EnvelopeMalformed;
        let value: Value = serde_json::from_slice(bytes)
            .map_err(|err| malformed(format!("invocation body is not valid JSON: {err}")))?;
        let data = get_ignoring_case(&value, "Data").ok_or_else(|| {
            malformed("invocation body has no `Data`; is this the Functions host?".to_owned())
        })?;
        let Some(Value::Object(http)) = get_ignoring_case(data, TRIGGER_BINDING) else {
            return Err(malformed(format!(
                "invocation body has no `Data.{TRIGGER_BINDING}` object"
            )));
        };
        let method = text_field(http, "Method")
            .map(str::to_ascii_uppercase)
            .unwrap_or_else(|| "POST".to_owned());
        let path = text_field(http, "Url")
            .map(path_of)
            .filter(|path| !path.is_empty())
            .unwrap_or(INVOCATION_PATH)
            .to_owned();
        Ok(Envelope {
            method,
            path,
            headers: http_headers(http),
            body: get_map_ignoring_case(http, "Body").cloned(),
        })
    }

    /// The heartbeat body: a string (base64 for binary content types), absent when empty. A host
    /// that hands over parsed JSON is handled too, by serializing it back.
    pub(crate) fn body(&self) -> Result<Vec<u8>, HeartbeatError> {
        let binary = self.headers.get("content-type").is_some_and(|kind| {
            let kind = kind.to_ascii_lowercase();
            kind.starts_with("application/octet-stream") || kind.starts_with("multipart/")
        });
        let bytes = match &self.body {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(text)) if binary => base64::engine::general_purpose::STANDARD
                .decode(text.trim())
                .map_err(|_| HeartbeatError::InvalidBase64)?,
            Some(Value::String(text)) => text.clone().into_bytes(),
            Some(other) => serde_json::to_vec(other).unwrap_or_default(),
        };
        if bytes.len() > MAX_BODY_BYTES {
            return Err(HeartbeatError::BodyTooLarge { bytes: bytes.len() });
        }
        Ok(bytes)
    }
}

/// Wraps an answer the way the host expects it.
fn outputs(answer: Answer) -> Response {
    let mut headers = json!({"Content-Type": "text/plain; charset=utf-8"});
    if let Some(allow) = answer.allow {
        headers["Allow"] = json!(allow);
    }
    let payload = json!({
        "Outputs": {
            OUTPUT_BINDING: {
                "statusCode": answer.status,
                "body": answer.body,
                "headers": headers,
            }
        },
        "Logs": [],
        "ReturnValue": null,
    });
    (StatusCode::OK, Json(payload)).into_response()
}

/// The path of an absolute URL (`https://host/api/ping?code=…` → `/api/ping`).
fn path_of(url: &str) -> &str {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let path = after_scheme
        .find('/')
        .map_or("", |slash| &after_scheme[slash..]);
    path.split(['?', '#']).next().unwrap_or("")
}

/// Header names as the host sends them are not reliably cased; [`Headers`] lower-cases them.
/// Values arrive as lists (`{"name": ["v"]}`); a plain string is accepted too.
fn http_headers(http: &Map<String, Value>) -> Headers {
    let mut seen = Headers::new();
    let Some(Value::Object(headers)) = get_map_ignoring_case(http, "Headers") else {
        return seen;
    };
    for (name, value) in headers {
        match value {
            Value::String(text) => seen.append(name, text),
            Value::Array(items) => {
                for item in items.iter().filter_map(Value::as_str) {
                    seen.append(name, item);
                }
            }
            _ => {}
        }
    }
    seen
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The recorded path comes from the envelope's URL without host, query or fragment.
    #[test]
    fn path_of_a_url() {
        assert_eq!(path_of("https://x.net/api/ping?code=k"), "/api/ping");
        assert_eq!(path_of("https://x.net"), "");
        assert_eq!(path_of("/api/Ping#f"), "/api/Ping");
    }
}
