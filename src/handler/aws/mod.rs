//! The AWS Lambda front end: a Function URL request, as `lambda_http` delivers it (API Gateway
//! payload format 2.0, docs/platform.md §13), turned into the core's
//! [`HeartbeatRequest`](super::core::HeartbeatRequest), answered by the same
//! [`Core`](super::core::Core) as on Azure, and recorded as CloudWatch lines ([`lines`]).
//!
//! What only AWS needs lives here: the key check (the Function URL is public, [`key`]), the
//! client address from `requestContext.http.sourceIp`, and the outage notifier hook ([`notify`]).
//! The binary (`src/bin/lambda.rs`) only wires these to the Lambda runtime.

pub mod key;
pub mod lines;
pub mod notify;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};

use self::key::{FunctionKey, KEY_HEADER, KEY_QUERY};
use self::lines::CloudWatchLines;
use self::notify::{NOTIFY_BUDGET, OutageNotifier};
use super::core::{Answer, Core, Headers, HeartbeatRequest, LOCAL_SITE, clean};
use super::log::LogWriter;
use crate::heartbeat::{Heartbeat, MAX_DEVICE_CHARS, UNKNOWN_DEVICE};

/// `host_mode` of a heartbeat delivered through Lambda (the Azure modes are `forwarding` and
/// `invocation`).
pub const LAMBDA: &str = "lambda";
/// The heartbeat path, as on Azure (matched case-insensitively, as there).
pub const PING_PATH: &str = "/api/ping";

/// What answers Function URL requests.
pub struct LambdaFrontEnd {
    core: Core,
    lines: Arc<CloudWatchLines>,
    key: FunctionKey,
    notifier: Option<Arc<dyn OutageNotifier>>,
}

impl LambdaFrontEnd {
    /// A front end checking `key`, writing `lines`, and handing outages to `notifier` if any.
    pub fn new(
        key: FunctionKey,
        lines: Arc<CloudWatchLines>,
        notifier: Option<Arc<dyn OutageNotifier>>,
    ) -> LambdaFrontEnd {
        // The CloudWatch lines replace the core's own log line, so its log writer stays unused.
        let unused_log = LogWriter::to(std::io::sink(), std::io::sink(), 1);
        let core = Core::new(lines.clone(), unused_log, LOCAL_SITE.to_owned());
        LambdaFrontEnd {
            core,
            lines,
            key,
            notifier,
        }
    }

    /// Answers one Function URL request.
    pub async fn handle(&self, request: Request) -> Response<Body> {
        let start = SystemTime::now();
        let (parts, body) = request.into_parts();
        let raw_path = parts.raw_http_path();
        // Never the query: it can carry the key.
        let path = if raw_path.is_empty() {
            parts.uri.path()
        } else {
            raw_path
        };
        let context = parts.lambda_context_ref();
        let request_id = context.map(|c| c.request_id.as_str()).unwrap_or("");
        let deadline_ms = context.map(|c| c.deadline);
        let client_ip = source_ip(parts.request_context_ref());
        let mut headers = Headers::new();
        for (name, value) in &parts.headers {
            headers.append(name.as_str(), &String::from_utf8_lossy(value.as_bytes()));
        }

        if !path.eq_ignore_ascii_case(PING_PATH) {
            return plain(self.core.not_found(path));
        }
        let query_key = parts
            .query_string_parameters_ref()
            .and_then(|query| query.first(KEY_QUERY));
        if let Err(refusal) = self.key.check(headers.get(KEY_HEADER), query_key) {
            let reason = refusal.to_string();
            let device = clean(
                headers.get("x-device").unwrap_or("").trim(),
                MAX_DEVICE_CHARS,
            );
            let device = if device.is_empty() {
                UNKNOWN_DEVICE
            } else {
                &device
            };
            let ip = client_ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
            self.lines
                .refused(401, &reason, device, &ip, &clean(request_id, 200));
            return plain(Answer {
                status: 401,
                body: reason,
                allow: None,
            });
        }

        // lambda_http has already decoded a base64 body (`isBase64Encoded`).
        let body = match body {
            Body::Text(text) => text.into_bytes(),
            Body::Binary(bytes) => bytes,
            _ => Vec::new(),
        };
        let (answer, heartbeat) = self.core.answer_with_heartbeat(HeartbeatRequest {
            start,
            front_end: LAMBDA,
            method: parts.method.as_str(),
            path,
            headers: &headers,
            body: Ok(body),
            client_ip,
            request_id,
        });
        if let (Some(notifier), Some(heartbeat)) = (&self.notifier, heartbeat) {
            self.notify(notifier.as_ref(), &heartbeat, request_id, deadline_ms)
                .await;
        }
        plain(answer)
    }

    /// Hands each outage to the notifier, within [`NOTIFY_BUDGET`] and the invocation's deadline.
    async fn notify(
        &self,
        notifier: &dyn OutageNotifier,
        heartbeat: &Heartbeat,
        request_id: &str,
        deadline_ms: Option<u64>,
    ) {
        if heartbeat.outages.is_empty() {
            return;
        }
        let budget = deadline_ms
            .map(remaining_before)
            .map_or(NOTIFY_BUDGET, |left| left.min(NOTIFY_BUDGET));
        let until = tokio::time::Instant::now() + budget;
        for outage in &heartbeat.outages {
            let sent = tokio::time::timeout_at(until, notifier.notify(&heartbeat.device, outage));
            let error = match sent.await {
                Ok(Ok(())) => continue,
                Ok(Err(error)) => error,
                Err(_) => format!(
                    "not sent: the {} s notification budget ran out",
                    budget.as_secs()
                ),
            };
            self.lines
                .notify_failed(&heartbeat.device, &outage.id, &error, request_id);
        }
    }
}

/// Time left before `deadline_ms` (Unix milliseconds), less a margin to answer in.
fn remaining_before(deadline_ms: u64) -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64);
    Duration::from_millis(deadline_ms.saturating_sub(now).saturating_sub(1000))
}

/// The client's address: `requestContext.http.sourceIp`, "the source IP address of the immediate
/// TCP connection" as Lambda saw it (docs/platform.md §13); never a header the client chose.
fn source_ip(context: Option<&RequestContext>) -> Option<IpAddr> {
    match context {
        Some(RequestContext::ApiGatewayV2(context)) => context
            .http
            .source_ip
            .as_deref()
            .and_then(|ip| ip.trim().parse().ok()),
        _ => None,
    }
}

/// A core answer as a plain-text Function URL response with a one-line body.
fn plain(answer: Answer) -> Response<Body> {
    let mut response = Response::new(Body::Text(answer.body));
    *response.status_mut() = lambda_http::http::StatusCode::from_u16(answer.status)
        .unwrap_or(lambda_http::http::StatusCode::BAD_REQUEST);
    let headers = response.headers_mut();
    headers.insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    if let Some(allow) = answer.allow {
        headers.insert(
            lambda_http::http::header::ALLOW,
            lambda_http::http::HeaderValue::from_static(allow),
        );
    }
    response
}
