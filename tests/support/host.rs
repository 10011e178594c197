//! A stand-in for the Azure Functions host, faithful to the parts of the contract the handler
//! depends on (docs/platform.md §1 as read from azure-functions-host `Workers/Http`):
//!
//! - it reads the repository's own `host.json` and `Ping/function.json`, lays out an app root the
//!   way a deployment does, and launches `customHandler.description.defaultExecutablePath` from it
//!   with `FUNCTIONS_CUSTOMHANDLER_PORT`, `FUNCTIONS_HTTPWORKER_PORT` and `FUNCTIONS_APP_ROOT_PATH`,
//!   in `workingDirectory`, polling `GET /` every 25 ms for up to 30 s;
//! - its front end routes `/{routePrefix}/{route}` case-insensitively, for the trigger's methods
//!   only, with the function key required by `authLevel: function`;
//! - it appends the caller's `ip:port` to `X-Forwarded-For` as Azure's front end does;
//! - it forwards in forwarding mode (original method, path with `/api`, query, headers, body only
//!   when `Content-Length > 0`, plus the host's headers) when `enableForwardingHttpRequest` is on
//!   and the function has exactly one HTTP trigger and one HTTP output, and otherwise in JSON
//!   invocation mode (`POST /{FunctionName}` with the `Data`/`Metadata` envelope, requiring a 2xx
//!   `application/json` answer with `Outputs.res`).
//!
//! A wrong executable name, route, method or binding in the committed files makes it fail.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::{TempDir, free_port, handler_binary, repo_root};

pub const FUNCTION_NAME: &str = "Ping";
pub const FUNCTION_KEY: &str = "test-function-key-0123456789";
pub const HOST_VERSION: &str = "4.1040.300.0";

/// What the host is started with. `from_repo` reads the committed files; tests may edit the
/// parsed JSON to prove that a wrong value breaks things.
#[derive(Clone)]
pub struct HostConfig {
    pub host_json: Value,
    pub function_json: Value,
    /// Extra environment for the handler (the host passes app settings as environment).
    pub env: Vec<(String, String)>,
}

impl HostConfig {
    pub fn from_repo() -> HostConfig {
        let read = |path: &str| -> Value {
            let text = std::fs::read_to_string(repo_root().join(path)).unwrap();
            serde_json::from_str(&text).unwrap()
        };
        HostConfig {
            host_json: read("host.json"),
            function_json: read("Ping/function.json"),
            env: Vec::new(),
        }
    }

    pub fn with_env(mut self, name: &str, value: &str) -> HostConfig {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Forwarding mode applies only with the flag on and exactly one HTTP trigger and one HTTP
    /// output; anything else falls back to JSON invocation mode.
    pub fn forwarding(&self) -> bool {
        let flag = self.host_json["customHandler"]["enableForwardingHttpRequest"] == json!(true);
        let bindings = self.function_json["bindings"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let triggers = bindings
            .iter()
            .filter(|b| b["type"] == "httpTrigger")
            .count();
        let outputs = bindings.iter().filter(|b| b["type"] == "http").count();
        flag && bindings.len() == 2 && triggers == 1 && outputs == 1
    }

    fn trigger(&self) -> Value {
        self.function_json["bindings"]
            .as_array()
            .and_then(|bindings| {
                bindings
                    .iter()
                    .find(|b| b["type"] == "httpTrigger" && b["direction"] == "in")
            })
            .cloned()
            .unwrap_or(Value::Null)
    }

    fn output_name(&self) -> Option<String> {
        self.function_json["bindings"]
            .as_array()?
            .iter()
            .find(|b| b["type"] == "http" && b["direction"] == "out")?["name"]
            .as_str()
            .map(str::to_owned)
    }

    /// `/{routePrefix}/{route}`; the route defaults to the function name.
    pub fn route_path(&self) -> String {
        let prefix = self.host_json["extensions"]["http"]["routePrefix"]
            .as_str()
            .unwrap_or("api");
        let route = self.trigger()["route"]
            .as_str()
            .unwrap_or(FUNCTION_NAME)
            .to_owned();
        if prefix.is_empty() {
            format!("/{route}")
        } else {
            format!("/{prefix}/{route}")
        }
    }
}

/// A running host: the handler process and the front end that clients call.
pub struct FunctionsHost {
    config: Arc<HostConfig>,
    app_root: TempDir,
    handler: Option<Child>,
    handler_port: u16,
    front_port: u16,
    front: Option<tokio::task::JoinHandle<()>>,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
}

struct FrontState {
    config: Arc<HostConfig>,
    handler_port: u16,
    client: reqwest::Client,
    invocations: AtomicU64,
}

impl FunctionsHost {
    /// Starts the handler and the front end, failing if the handler never becomes ready.
    pub async fn start(config: HostConfig) -> Result<FunctionsHost, String> {
        let app_root = TempDir::new("approot");
        // The deployment package: host.json, Ping/function.json and the binary, named as Cargo
        // names it (deploy.sh packages it under the same name).
        std::fs::write(
            app_root.path().join("host.json"),
            config.host_json.to_string(),
        )
        .unwrap();
        std::fs::create_dir_all(app_root.path().join(FUNCTION_NAME)).unwrap();
        std::fs::write(
            app_root.path().join(FUNCTION_NAME).join("function.json"),
            config.function_json.to_string(),
        )
        .unwrap();
        std::fs::copy(handler_binary(), app_root.path().join("handler")).unwrap();
        let mut host = FunctionsHost {
            config: Arc::new(config),
            app_root,
            handler: None,
            handler_port: free_port(),
            front_port: free_port(),
            front: None,
            stdout: Default::default(),
            stderr: Default::default(),
        };
        host.launch().await?;
        Ok(host)
    }

    async fn launch(&mut self) -> Result<(), String> {
        let description = &self.config.host_json["customHandler"]["description"];
        let executable = description["defaultExecutablePath"]
            .as_str()
            .ok_or("host.json has no customHandler.description.defaultExecutablePath")?;
        let executable = self.app_root.path().join(executable);
        if !executable.is_file() {
            return Err(format!(
                "host.json names {executable:?}, which the package does not contain"
            ));
        }
        let working_dir: PathBuf = match description["workingDirectory"].as_str() {
            Some(dir) if !dir.is_empty() => self.app_root.path().join(dir),
            _ => self.app_root.path().to_owned(),
        };
        let arguments: Vec<String> = description["arguments"]
            .as_array()
            .map(|args| {
                args.iter()
                    .filter_map(|a| a.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();

        let mut command = Command::new(&executable);
        command
            .args(&arguments)
            .current_dir(&working_dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env(
                "FUNCTIONS_CUSTOMHANDLER_PORT",
                self.handler_port.to_string(),
            )
            .env("FUNCTIONS_HTTPWORKER_PORT", self.handler_port.to_string())
            .env("FUNCTIONS_APP_ROOT_PATH", self.app_root.path())
            .envs(self.config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // The binary was copied in a moment ago; a child forked meanwhile by another test thread
        // can still hold the copy's write descriptor until it execs, and exec then fails with
        // ETXTBSY. That clears within milliseconds, so retry briefly.
        let mut attempts = 0;
        let mut child = loop {
            match command.spawn() {
                Ok(child) => break child,
                Err(err) if err.raw_os_error() == Some(libc::ETXTBSY) && attempts < 50 => {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(err) => return Err(format!("cannot start {executable:?}: {err}")),
            }
        };
        collect_lines(child.stdout.take().unwrap(), Arc::clone(&self.stdout));
        collect_lines(child.stderr.take().unwrap(), Arc::clone(&self.stderr));
        self.handler = Some(child);

        let probe = reqwest::Client::new();
        let ready_url = format!("http://127.0.0.1:{}/", self.handler_port);
        let mut waited = Duration::ZERO;
        loop {
            if probe.get(&ready_url).send().await.is_ok() {
                break;
            }
            if let Some(status) = self.handler.as_mut().unwrap().try_wait().unwrap() {
                return Err(format!(
                    "handler exited with {status} before it was ready; stderr: {:?}",
                    self.stderr_lines()
                ));
            }
            if waited >= Duration::from_secs(30) {
                return Err("handler did not answer GET / within 30 s".to_owned());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
            waited += Duration::from_millis(25);
        }

        let state = Arc::new(FrontState {
            config: Arc::clone(&self.config),
            handler_port: self.handler_port,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            invocations: AtomicU64::new(0),
        });
        let app = Router::new().fallback(front).with_state(state);
        let listener = bind_retrying(self.front_port).await;
        self.front = Some(tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .await;
        }));
        Ok(())
    }

    /// The base URL clients call, e.g. `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.front_port)
    }

    /// The heartbeat URL agents are given, without the key. Deliberately the product's fixed
    /// path, not the one read from function.json: a wrong route there must break the tests.
    pub fn ping_url(&self) -> String {
        format!("{}/api/ping", self.base_url())
    }

    /// The heartbeat URL with the function key in the query, as `az` prints it.
    pub fn keyed_ping_url(&self) -> String {
        format!("{}?code={FUNCTION_KEY}", self.ping_url())
    }

    pub fn handler_port(&self) -> u16 {
        self.handler_port
    }

    pub fn handler_pid(&self) -> Option<u32> {
        self.handler.as_ref().and_then(Child::id)
    }

    pub fn stdout_lines(&self) -> Vec<String> {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until the handler's stdout has been quiet for 300 ms (at most 5 s): the handler
    /// writes its log lines from a queue after it has answered, so a line can trail its answer.
    pub async fn settled_stdout_lines(&self) -> Vec<String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut seen = self.stdout.lock().unwrap().len();
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let now = self.stdout.lock().unwrap().len();
            if now == seen || tokio::time::Instant::now() >= deadline {
                return self.stdout_lines();
            }
            seen = now;
        }
    }

    /// The handler's JSON log lines of accepted heartbeats, once its stdout has settled.
    pub async fn heartbeat_logs(&self) -> Vec<Value> {
        self.settled_stdout_lines()
            .await
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|value| value["event"] == "heartbeat")
            .collect()
    }

    /// Sends SIGTERM to the handler, as the host does on shutdown, and waits for it to exit.
    pub async fn terminate_handler(&mut self) -> std::process::ExitStatus {
        let mut child = self.handler.take().expect("handler running");
        if let Some(pid) = child.id() {
            // SAFETY: plain kill(2) on our own child's pid.
            unsafe { libc::kill(pid as i32, libc::SIGTERM) };
        }
        tokio::time::timeout(Duration::from_secs(15), child.wait())
            .await
            .expect("handler exits within 15 s of SIGTERM")
            .unwrap()
    }

    /// Takes the whole host down: clients now get connection refused.
    pub async fn stop(&mut self) {
        if let Some(front) = self.front.take() {
            front.abort();
            let _ = front.await;
        }
        if self.handler.is_some() {
            self.terminate_handler().await;
        }
    }

    /// Brings the host back on the same ports.
    pub async fn restart(&mut self) -> Result<(), String> {
        self.stop().await;
        self.launch().await
    }
}

impl Drop for FunctionsHost {
    fn drop(&mut self) {
        if let Some(front) = self.front.take() {
            front.abort();
        }
    }
}

fn collect_lines(
    stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    into: Arc<Mutex<Vec<String>>>,
) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            into.lock().unwrap().push(line);
        }
    });
}

/// The port was free a moment ago (or was ours before a restart); retry briefly.
async fn bind_retrying(port: u16) -> tokio::net::TcpListener {
    for _ in 0..200 {
        if let Ok(listener) = tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
            return listener;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("cannot bind the front end to 127.0.0.1:{port}");
}

async fn front(
    State(state): State<Arc<FrontState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let config = &state.config;
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, 10 * 1024 * 1024)
        .await
        .unwrap_or_default();
    if !parts.uri.path().eq_ignore_ascii_case(&config.route_path()) {
        return (StatusCode::NOT_FOUND, "").into_response();
    }
    let trigger = config.trigger();
    let allowed = trigger["methods"]
        .as_array()
        .map(|methods| {
            methods.iter().any(|m| {
                m.as_str()
                    .is_some_and(|m| m.eq_ignore_ascii_case(parts.method.as_str()))
            })
        })
        .unwrap_or(true);
    if !allowed {
        return (StatusCode::NOT_FOUND, "").into_response();
    }
    let query: HashMap<String, String> = parts
        .uri
        .query()
        .map(|q| {
            q.split('&')
                .filter_map(|pair| {
                    pair.split_once('=')
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    if trigger["authLevel"].as_str().unwrap_or("function") != "anonymous" {
        let key = parts
            .headers
            .get("x-functions-key")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .or_else(|| query.get("code").cloned());
        if key.as_deref() != Some(FUNCTION_KEY) {
            return (StatusCode::UNAUTHORIZED, "").into_response();
        }
    }

    // Azure's front end appends the peer it saw (docs/platform.md §1).
    let mut headers = parts.headers.clone();
    let seen = format!("{}:{}", peer.ip(), peer.port());
    let forwarded = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(existing) => format!("{existing}, {seen}"),
        None => seen,
    };
    headers.insert(
        "x-forwarded-for",
        HeaderValue::from_str(&forwarded).unwrap(),
    );
    let invocation_id = format!(
        "00000000-0000-4000-8000-{:012}",
        state.invocations.fetch_add(1, Ordering::Relaxed)
    );

    if config.forwarding() {
        forward(
            &state,
            &parts.method,
            &parts.uri,
            headers,
            body,
            &invocation_id,
        )
        .await
    } else {
        invoke(
            &state,
            &parts.method,
            &parts.uri,
            &headers,
            &query,
            body,
            &invocation_id,
        )
        .await
    }
}

fn host_headers(headers: &mut HeaderMap, invocation_id: &str) {
    headers.insert(
        "x-azure-functions-invocationid",
        HeaderValue::from_str(invocation_id).unwrap(),
    );
    headers.insert(
        "x-azure-functions-hostversion",
        HeaderValue::from_static(HOST_VERSION),
    );
    headers.insert(
        "user-agent",
        HeaderValue::from_str(&format!("Azure-Functions-Host/{HOST_VERSION}")).unwrap(),
    );
}

async fn forward(
    state: &FrontState,
    method: &Method,
    uri: &axum::http::Uri,
    mut headers: HeaderMap,
    body: Bytes,
    invocation_id: &str,
) -> Response {
    host_headers(&mut headers, invocation_id);
    headers.remove("host");
    headers.remove("content-length");
    headers.remove("transfer-encoding");
    let path_and_query = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
    let url = format!("http://127.0.0.1:{}{path_and_query}", state.handler_port);
    let mut request = state.client.request(method.clone(), url).headers(headers);
    if !body.is_empty() {
        request = request.body(body);
    }
    match request.send().await {
        Ok(answer) => {
            let status = answer.status();
            let mut response_headers = HeaderMap::new();
            for name in ["content-type", "allow"] {
                if let Some(value) = answer.headers().get(name) {
                    response_headers.insert(HeaderName::from_static(name), value.clone());
                }
            }
            let bytes = answer.bytes().await.unwrap_or_default();
            (status, response_headers, bytes).into_response()
        }
        Err(err) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("host: forwarding failed: {err}"),
        )
            .into_response(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn invoke(
    state: &FrontState,
    method: &Method,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
    body: Bytes,
    invocation_id: &str,
) -> Response {
    let mut header_lists: HashMap<String, Vec<String>> = HashMap::new();
    for (name, value) in headers {
        header_lists
            .entry(name.as_str().to_owned())
            .or_default()
            .push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    let binary = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|kind| {
            kind.starts_with("application/octet-stream") || kind.starts_with("multipart/")
        });
    let mut req = json!({
        "Url": format!("https://127.0.0.1{}", uri),
        "Method": method.as_str(),
        "Query": query,
        "Headers": header_lists,
        "Params": {},
        "Identities": [],
    });
    if !body.is_empty() {
        req["Body"] = if binary {
            json!(base64::engine::general_purpose::STANDARD.encode(&body))
        } else {
            json!(String::from_utf8_lossy(&body))
        };
    }
    let trigger_name = state.config.trigger()["name"]
        .as_str()
        .unwrap_or("req")
        .to_owned();
    let envelope = json!({
        "Data": { trigger_name: req },
        "Metadata": { "sys": { "MethodName": FUNCTION_NAME, "UtcNow": "2026-11-25T00:00:00Z", "RandGuid": invocation_id } },
    });
    let mut invocation_headers = HeaderMap::new();
    host_headers(&mut invocation_headers, invocation_id);
    let url = format!("http://127.0.0.1:{}/{FUNCTION_NAME}", state.handler_port);
    let failed = |why: String| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("host: invocation failed: {why}"),
        )
            .into_response()
    };
    let answer = match state
        .client
        .post(url)
        .headers(invocation_headers)
        .json(&envelope)
        .send()
        .await
    {
        Ok(answer) => answer,
        Err(err) => return failed(err.to_string()),
    };
    let json_answer = answer
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|kind| kind.starts_with("application/json"));
    if !answer.status().is_success() || !json_answer {
        return failed(format!(
            "handler answered {} {:?}",
            answer.status(),
            answer.headers().get("content-type")
        ));
    }
    let payload: Value = match answer.json().await {
        Ok(payload) => payload,
        Err(err) => return failed(err.to_string()),
    };
    let Some(output) = state.config.output_name() else {
        return failed("function.json has no http output".into());
    };
    let res = &payload["Outputs"][output.as_str()];
    let Some(status) = res["statusCode"]
        .as_u64()
        .and_then(|s| StatusCode::from_u16(s as u16).ok())
    else {
        return failed(format!("no Outputs.{output}.statusCode in {payload}"));
    };
    let mut response_headers = HeaderMap::new();
    if let Some(map) = res["headers"].as_object() {
        for (name, value) in map {
            if let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()),
                value.as_str().map(HeaderValue::from_str),
            ) {
                response_headers.insert(name, value);
            }
        }
    }
    let body = res["body"].as_str().unwrap_or("").to_owned();
    (status, response_headers, body).into_response()
}
