//! A stand-in for the AWS Lambda Runtime API (version 2018-06-01, docs/platform.md §13) and for
//! the Function URL in front of it, faithful to what the `lambda` binary depends on:
//!
//! - `GET /2018-06-01/runtime/invocation/next` blocks until an invocation is queued, then answers
//!   200 with the event as its body and the headers `Lambda-Runtime-Aws-Request-Id`,
//!   `Lambda-Runtime-Deadline-Ms`, `Lambda-Runtime-Invoked-Function-Arn` and
//!   `Lambda-Runtime-Trace-Id`;
//! - `POST …/invocation/{id}/response` and `…/invocation/{id}/error` answer 202 for an invocation
//!   that is waiting for its answer, and 400 for any other id (a second answer, a made-up id);
//! - `POST /2018-06-01/runtime/init/error` answers 202 and records the error;
//! - anything else is a 404, recorded as a protocol violation.
//!
//! Events are Function URL requests in payload format 2.0 ([`UrlRequest::event`], as the AWS docs
//! `urls-invocation` lay them out), and a function's response is turned into the HTTP answer a
//! client would see ([`http_answer`]): `statusCode`, `headers`, `body`, `isBase64Encoded`; a
//! response that is not JSON is a failed invocation (a 502 from the Function URL).
//!
//! The real `lambda` binary runs against it as Lambda runs it: with `AWS_LAMBDA_RUNTIME_API` and
//! the function's variables in an otherwise empty environment; its stdout lines are collected.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{Mutex as AsyncMutex, mpsc, oneshot};

/// The key the stand-in's function is configured with.
pub const FUNCTION_KEY: &str = "lambda-test-key-0123456789abcdef";
pub const FUNCTION_NAME: &str = "ispmon-heartbeat";
pub const FUNCTION_ARN: &str = "arn:aws:lambda:eu-west-1:123456789012:function:ispmon-heartbeat";
pub const URL_ID: &str = "abcdefghijklmnopqrstuvwxyz012345";
/// How long a test waits for one invocation's answer.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(15);
/// The function's timeout: the deadline the stand-in hands out.
pub const FUNCTION_TIMEOUT: Duration = Duration::from_secs(10);

/// How an invocation ended, as the Runtime API saw it.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// `POST …/response` with this body.
    Response(Vec<u8>),
    /// `POST …/error` with this body and `Lambda-Runtime-Function-Error-Type`.
    Error { error_type: String, body: Value },
}

/// What a client of the Function URL sees.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpAnswer {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: HashMap<String, String>,
    pub body: String,
}

struct Pending {
    invocations: AtomicU64,
    /// Invocations queued for `next`.
    queue_tx: mpsc::UnboundedSender<(String, Vec<u8>)>,
    queue_rx: AsyncMutex<mpsc::UnboundedReceiver<(String, Vec<u8>)>>,
    /// Invocations handed out and waiting for their answer.
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
    init_errors: Mutex<Vec<(String, Value)>>,
    violations: Mutex<Vec<String>>,
}

/// The Runtime API stand-in, listening on loopback.
#[derive(Clone)]
pub struct RuntimeApi {
    state: Arc<Pending>,
    address: String,
}

impl RuntimeApi {
    pub async fn start() -> RuntimeApi {
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();
        let state = Arc::new(Pending {
            invocations: AtomicU64::new(0),
            queue_tx,
            queue_rx: AsyncMutex::new(queue_rx),
            waiting: Mutex::new(HashMap::new()),
            init_errors: Mutex::new(Vec::new()),
            violations: Mutex::new(Vec::new()),
        });
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route(
                "/2018-06-01/runtime/invocation/{id}/response",
                post(response),
            )
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .fallback(unknown)
            .with_state(Arc::clone(&state));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        RuntimeApi { state, address }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Queues one event and waits for the function's answer to it.
    pub async fn invoke(&self, event: &Value) -> Outcome {
        let n = self.state.invocations.fetch_add(1, Ordering::Relaxed);
        let id = format!("8476a536-e9f4-11e8-9739-{n:012}");
        let (tx, rx) = oneshot::channel();
        self.state.waiting.lock().unwrap().insert(id.clone(), tx);
        self.state
            .queue_tx
            .send((id.clone(), serde_json::to_vec(event).unwrap()))
            .unwrap();
        match tokio::time::timeout(INVOKE_TIMEOUT, rx).await {
            Ok(Ok(outcome)) => outcome,
            _ => panic!("invocation {id} got no answer within {INVOKE_TIMEOUT:?}"),
        }
    }

    /// Sends a Function URL request through the function, as a client would see it.
    pub async fn request(&self, request: &UrlRequest) -> HttpAnswer {
        match http_answer(&self.invoke(&request.event()).await) {
            Ok(answer) => answer,
            Err(why) => panic!("{why}"),
        }
    }

    /// The request id of the most recent invocation.
    pub fn last_request_id(&self) -> String {
        let n = self
            .state
            .invocations
            .load(Ordering::Relaxed)
            .saturating_sub(1);
        format!("8476a536-e9f4-11e8-9739-{n:012}")
    }

    /// Errors posted to `/runtime/init/error`: the error type header and the body.
    pub fn init_errors(&self) -> Vec<(String, Value)> {
        self.state.init_errors.lock().unwrap().clone()
    }

    /// Requests the Runtime API would not have accepted.
    pub fn violations(&self) -> Vec<String> {
        self.state.violations.lock().unwrap().clone()
    }
}

async fn next(State(state): State<Arc<Pending>>) -> Response {
    // Lambda holds `next` open until there is an event; so does the stand-in.
    let Some((id, event)) = state.queue_rx.lock().await.recv().await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let deadline = SystemTime::now() + FUNCTION_TIMEOUT;
    let deadline_ms = deadline.duration_since(UNIX_EPOCH).unwrap().as_millis();
    (
        StatusCode::OK,
        [
            ("lambda-runtime-aws-request-id", id),
            ("lambda-runtime-deadline-ms", deadline_ms.to_string()),
            (
                "lambda-runtime-invoked-function-arn",
                FUNCTION_ARN.to_owned(),
            ),
            (
                "lambda-runtime-trace-id",
                "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1"
                    .to_owned(),
            ),
            ("content-type", "application/json".to_owned()),
        ],
        event,
    )
        .into_response()
}

fn settle(state: &Pending, id: &str, outcome: Outcome) -> StatusCode {
    match state.waiting.lock().unwrap().remove(id) {
        Some(waiter) => {
            let _ = waiter.send(outcome);
            StatusCode::ACCEPTED
        }
        None => {
            state
                .violations
                .lock()
                .unwrap()
                .push(format!("answer for unknown or settled invocation {id}"));
            StatusCode::BAD_REQUEST
        }
    }
}

async fn response(
    State(state): State<Arc<Pending>>,
    UrlPath(id): UrlPath<String>,
    body: Bytes,
) -> StatusCode {
    settle(&state, &id, Outcome::Response(body.to_vec()))
}

async fn error(
    State(state): State<Arc<Pending>>,
    UrlPath(id): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let outcome = Outcome::Error {
        error_type: error_type(&headers),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    };
    settle(&state, &id, outcome)
}

async fn init_error(
    State(state): State<Arc<Pending>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
    state
        .init_errors
        .lock()
        .unwrap()
        .push((error_type(&headers), body));
    StatusCode::ACCEPTED
}

async fn unknown(State(state): State<Arc<Pending>>, request: axum::extract::Request) -> StatusCode {
    state
        .violations
        .lock()
        .unwrap()
        .push(format!("{} {}", request.method(), request.uri()));
    StatusCode::NOT_FOUND
}

fn error_type(headers: &HeaderMap) -> String {
    headers
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// The HTTP answer the Function URL gives for an invocation outcome, or why it would be a 502.
/// A JSON object with `statusCode` is used as it is; valid JSON without one is a 200 whose body
/// is that JSON (AWS docs `urls-invocation`, "Response payload format").
pub fn http_answer(outcome: &Outcome) -> Result<HttpAnswer, String> {
    let bytes = match outcome {
        Outcome::Response(bytes) => bytes,
        Outcome::Error { error_type, body } => {
            return Err(format!("the invocation failed ({error_type}): {body}"));
        }
    };
    let value: Value = serde_json::from_slice(bytes).map_err(|err| {
        format!(
            "malformed response (not JSON: {err}): {:.200}",
            String::from_utf8_lossy(bytes)
        )
    })?;
    let Some(status) = value.get("statusCode") else {
        return Ok(HttpAnswer {
            status: 200,
            headers: HashMap::from([("content-type".to_owned(), "application/json".to_owned())]),
            body: value.to_string(),
        });
    };
    let status = status
        .as_u64()
        .filter(|s| (100..=599).contains(s))
        .ok_or_else(|| format!("malformed response: statusCode {status}"))? as u16;
    let mut headers = HashMap::new();
    if let Some(map) = value.get("headers").and_then(Value::as_object) {
        for (name, value) in map {
            let value = value
                .as_str()
                .ok_or_else(|| format!("malformed response: header {name} is {value}"))?;
            headers.insert(name.to_ascii_lowercase(), value.to_owned());
        }
    }
    let body = match value.get("body") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => {
            if value["isBase64Encoded"].as_bool().unwrap_or(false) {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|_| "malformed response: body is not base64".to_owned())?;
                String::from_utf8(bytes).map_err(|_| "response body is not UTF-8".to_owned())?
            } else {
                text.clone()
            }
        }
        Some(other) => return Err(format!("malformed response: body is {other}")),
    };
    Ok(HttpAnswer {
        status,
        headers,
        body,
    })
}

/// A client's request to the Function URL, before Lambda turns it into an event.
#[derive(Debug, Clone)]
pub struct UrlRequest {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    /// Whether Lambda base64-encodes the body (it does for binary content types).
    pub base64: bool,
    pub source_ip: String,
}

impl UrlRequest {
    /// `POST /api/ping` with the key header and a JSON body, from 203.0.113.7.
    pub fn heartbeat(body: &str) -> UrlRequest {
        UrlRequest::new("POST", "/api/ping")
            .header("x-functions-key", FUNCTION_KEY)
            .header("content-type", "application/json")
            .body(body.as_bytes())
    }

    pub fn new(method: &str, path: &str) -> UrlRequest {
        UrlRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            query: String::new(),
            headers: vec![("user-agent".to_owned(), "isp-monitor-test".to_owned())],
            body: None,
            base64: false,
            source_ip: "203.0.113.7".to_owned(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> UrlRequest {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn without_header(mut self, name: &str) -> UrlRequest {
        self.headers
            .retain(|(known, _)| !known.eq_ignore_ascii_case(name));
        self
    }

    pub fn query(mut self, query: &str) -> UrlRequest {
        self.query = query.to_owned();
        self
    }

    pub fn body(mut self, body: &[u8]) -> UrlRequest {
        self.body = Some(body.to_vec());
        self
    }

    /// The body sent base64-encoded, as Lambda does for a binary content type.
    pub fn base64(mut self) -> UrlRequest {
        self.base64 = true;
        self
    }

    /// The event Lambda hands the function (payload format 2.0): header names lower-cased,
    /// repeated headers joined with commas, the body base64-encoded when `base64`.
    pub fn event(&self) -> Value {
        let mut headers = serde_json::Map::new();
        headers.insert(
            "host".to_owned(),
            json!(format!("{URL_ID}.lambda-url.eu-west-1.on.aws")),
        );
        headers.insert("x-forwarded-for".to_owned(), json!(self.source_ip));
        headers.insert("x-forwarded-proto".to_owned(), json!("https"));
        for (name, value) in &self.headers {
            let name = name.to_ascii_lowercase();
            let joined = match headers.get(&name).and_then(Value::as_str) {
                Some(existing) => format!("{existing},{value}"),
                None => value.clone(),
            };
            headers.insert(name, json!(joined));
        }
        let mut parameters = serde_json::Map::new();
        for pair in self.query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let joined = match parameters.get(name).and_then(Value::as_str) {
                Some(existing) => format!("{existing},{value}"),
                None => value.to_owned(),
            };
            parameters.insert(name.to_owned(), json!(joined));
        }
        let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap();
        let mut event = json!({
            "version": "2.0",
            "routeKey": "$default",
            "rawPath": self.path,
            "rawQueryString": self.query,
            "headers": headers,
            "requestContext": {
                "accountId": "anonymous",
                "apiId": URL_ID,
                "authentication": null,
                "authorizer": null,
                "domainName": format!("{URL_ID}.lambda-url.eu-west-1.on.aws"),
                "domainPrefix": URL_ID,
                "http": {
                    "method": self.method,
                    "path": self.path,
                    "protocol": "HTTP/1.1",
                    "sourceIp": self.source_ip,
                    "userAgent": "isp-monitor-test",
                },
                "requestId": "e1506fd5-9e7b-434f-bd42-4f8fa224b599",
                "routeKey": "$default",
                "stage": "$default",
                "time": "07/Sep/2021:22:50:22 +0000",
                "timeEpoch": now.as_millis() as u64,
            },
            "pathParameters": null,
            "isBase64Encoded": self.base64,
            "stageVariables": null,
        });
        if !parameters.is_empty() {
            event["queryStringParameters"] = Value::Object(parameters);
        }
        if let Some(body) = &self.body {
            event["body"] = if self.base64 {
                json!(base64::engine::general_purpose::STANDARD.encode(body))
            } else {
                json!(String::from_utf8_lossy(body))
            };
        }
        event
    }
}

/// The `lambda` binary under test.
pub fn lambda_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lambda"))
}

/// The real `lambda` binary, started as Lambda starts it, its stdout and stderr collected.
pub struct LambdaProcess {
    pub child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl LambdaProcess {
    /// Starts the binary against `api` with the function's variables, the key, and `extra`.
    pub fn start(api: &RuntimeApi, extra: &[(&str, &str)]) -> LambdaProcess {
        let mut env = vec![("ISP_MONITOR_FUNCTION_KEY", FUNCTION_KEY)];
        env.extend_from_slice(extra);
        LambdaProcess::start_with(api, &env)
    }

    /// Starts the binary with only the platform's variables and exactly `env`.
    pub fn start_with(api: &RuntimeApi, env: &[(&str, &str)]) -> LambdaProcess {
        let mut child = Command::new(lambda_binary())
            .env_clear()
            .env("AWS_LAMBDA_RUNTIME_API", api.address())
            .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION_NAME)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/ispmon-heartbeat")
            .env(
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2026/12/01/[$LATEST]0123456789abcdef",
            )
            .env("AWS_REGION", "eu-west-1")
            .env("LAMBDA_TASK_ROOT", "/var/task")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        LambdaProcess {
            child,
            stdout,
            stderr,
        }
    }

    /// Every stdout line so far (the lines are written before each answer goes back).
    pub fn lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    /// Every stdout line so far, parsed; a line that is not JSON fails the test.
    pub fn json_lines(&self) -> Vec<Value> {
        self.lines()
            .iter()
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"))
            })
            .collect()
    }

    /// Waits (at most 5 s) until at least `count` stdout lines have been read; all lines, parsed.
    pub async fn wait_lines(&self, count: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while self.stdout.lock().unwrap().len() < count && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.json_lines()
    }

    /// Lines of one `event`, taken so far.
    pub fn events(&self, event: &str) -> Vec<Value> {
        self.json_lines()
            .into_iter()
            .filter(|line| line["event"] == event)
            .collect()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    /// Waits (bounded) for the process to exit; its exit code.
    pub async fn exit_code(&mut self, timeout: Duration) -> Option<i32> {
        let status = tokio::time::timeout(timeout, self.child.wait())
            .await
            .ok()?;
        // Let the readers drain what the process wrote before it exited.
        tokio::time::sleep(Duration::from_millis(100)).await;
        status.ok()?.code()
    }
}

fn collect(stream: impl tokio::io::AsyncRead + Unpin + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}
