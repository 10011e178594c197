//! What the integration tests share: a stand-in for the Azure Functions host that launches the real
//! `handler` binary the way the platform does, and a stand-in for Application Insights ingestion.
#![allow(dead_code)]

pub mod aws_standin;
pub mod host;
pub mod ingestion;
pub mod lambda_runtime;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The repository root: where `host.json` and `Ping/` live.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The `handler` binary under test: the one cargo built for this run or, when
/// `ISP_MONITOR_TEST_HANDLER` names a file, that one (the package tests point it at the binary
/// taken out of the deployment zip; the benchmark at a musl or glibc build).
pub fn handler_binary() -> &'static Path {
    static BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BINARY.get_or_init(|| match std::env::var_os("ISP_MONITOR_TEST_HANDLER") {
        Some(path) if !path.is_empty() => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "ISP_MONITOR_TEST_HANDLER={} is not a file",
                path.display()
            );
            path
        }
        _ => PathBuf::from(env!("CARGO_BIN_EXE_handler")),
    })
}

/// The `heartbeat-agent` binary cargo built for this test run.
pub fn agent_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_heartbeat-agent"))
}

/// A loopback port nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Polls `check` every 25 ms until it returns `Some` or `timeout` passes.
pub async fn wait_for<T>(
    timeout: Duration,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A fresh empty directory under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(label: &str) -> TempDir {
        static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let path =
            std::env::temp_dir().join(format!("isp-monitor-{label}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The committed host configuration, and the same with forwarding off (what the host falls back to
/// when a binding is added), so every rule is checked in both of the host's modes.
pub fn both_modes() -> [(&'static str, host::HostConfig); 2] {
    let forwarding = host::HostConfig::from_repo();
    let mut invocation = host::HostConfig::from_repo();
    invocation.host_json["customHandler"]["enableForwardingHttpRequest"] = serde_json::json!(false);
    assert!(forwarding.forwarding() && !invocation.forwarding());
    [("forwarding", forwarding), ("invocation", invocation)]
}

/// `customDimensions` of a captured envelope.
pub fn props(envelope: &serde_json::Value) -> &serde_json::Value {
    &envelope["data"]["baseData"]["properties"]
}

/// `config` with telemetry to `ingestion` (its CA trusted through `SSL_CERT_FILE`) and the
/// platform's site variables set.
pub fn with_telemetry(
    config: host::HostConfig,
    ingestion: &ingestion::Ingestion,
) -> host::HostConfig {
    config
        .with_env(
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            &ingestion.connection_string(),
        )
        .with_env("SSL_CERT_FILE", ingestion.ca_file().to_str().unwrap())
        .with_env("WEBSITE_SITE_NAME", "ispmon-func")
        .with_env("WEBSITE_HOSTNAME", "ispmon-func.azurewebsites.net")
        .with_env("WEBSITE_INSTANCE_ID", "instance-7")
}

/// The handler binary started directly (no host), on `port`, with a clean environment plus `env`;
/// stdout and stderr piped and left to the caller.
pub fn spawn_handler(port: u16, env: &[(&str, &str)]) -> tokio::process::Child {
    tokio::process::Command::new(handler_binary())
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Waits until something answers `GET /` on `port`.
pub async fn wait_ready(port: u16) {
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    wait_for(Duration::from_secs(10), async || {
        client.get(&url).send().await.ok().map(|_| ())
    })
    .await
    .expect("handler answers GET / within 10 s");
}

/// Resident set size and its peak (VmRSS, VmHWM) of a process, in KiB.
pub fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The bad heartbeats every host must refuse, with the status and the start of the one-line reason
/// (the handler's own words): shared by the Azure contract tests and the Lambda ones, so both hosts
/// are held to the same list.
pub fn bad_input_cases() -> Vec<(String, u16, &'static str)> {
    let long_device = "d".repeat(101);
    let long_note = "n".repeat(501);
    vec![
        ("{not json".into(), 400, "body is not valid JSON: "),
        (
            "[\"device\"]".into(),
            400,
            "body must be a JSON object, found an array",
        ),
        (
            "\"den\"".into(),
            400,
            "body must be a JSON object, found a string",
        ),
        (
            r#"{"device": 42}"#.into(),
            400,
            "`device` must be a string, found a number",
        ),
        (
            r#"{"note": ["x"]}"#.into(),
            400,
            "`note` must be a string, found an array",
        ),
        (
            r#"{"device": "a\u0000b"}"#.into(),
            400,
            "`device` contains a control character",
        ),
        (
            r#"{"note": "line\nbreak"}"#.into(),
            400,
            "`note` contains a control character",
        ),
        (
            format!(r#"{{"device": "{long_device}"}}"#),
            400,
            "`device` is 101 characters; the limit is 100",
        ),
        (
            format!(r#"{{"note": "{long_note}"}}"#),
            400,
            "`note` is 501 characters; the limit is 500",
        ),
        (
            r#"{"outages": [{"id": "x"}]}"#.into(),
            400,
            "`outages[0]`: `start` is missing",
        ),
        (
            format!(r#"{{"note": "{}"}}"#, "x".repeat(70_000)),
            413,
            "body is ",
        ),
    ]
}
