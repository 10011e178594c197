//! The heartbeat agent, as a real process, against the real handler behind the host stand-in,
//! with telemetry going to the ingestion stand-in. Probe targets always point at loopback.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::host::{FUNCTION_KEY, FunctionsHost, HostConfig};
use support::ingestion::{Behaviour, Ingestion};
use support::{TempDir, agent_binary, free_port, wait_for};

/// The agent under test: this build's, or another one named by `ISP_MONITOR_TEST_AGENT` (to show
/// that a test fails against an older agent).
fn agent_bin() -> std::path::PathBuf {
    std::env::var_os("ISP_MONITOR_TEST_AGENT")
        .map(Into::into)
        .unwrap_or_else(|| agent_binary().to_owned())
}
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A loopback port with nothing listening: a probe target that never answers.
fn dead_target() -> String {
    format!("127.0.0.1:{}", free_port())
}

fn agent_command(state_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(agent_bin());
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", state_dir)
        .env("HEARTBEAT_PROBE_TARGETS", dead_target())
        .env("HEARTBEAT_STATE_DIR", state_dir)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Runs the agent to completion: (exit code, stdout, stderr).
async fn run_agent(state_dir: &Path, args: &[&str]) -> (i32, String, String) {
    let output = agent_command(state_dir, args).output().await.unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A daemon agent whose output lines are collected as they come.
struct Daemon {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Daemon {
    fn start(state_dir: &Path, url: &str, extra: &[&str]) -> Daemon {
        Daemon::start_with(state_dir, url, extra, |_| {})
    }

    fn start_with(
        state_dir: &Path,
        url: &str,
        extra: &[&str],
        adjust: impl FnOnce(&mut Command),
    ) -> Daemon {
        let mut args = vec![
            "--daemon",
            "--url",
            url,
            "--device",
            "den",
            "--interval",
            "1",
            "--probe-interval",
            "1",
            "--timeout",
            "2",
        ];
        // A default given again in `extra` is replaced, not repeated (clap refuses repeats).
        for pair in extra.chunks(2) {
            if let Some(at) = args
                .iter()
                .position(|a| *a == pair[0] && pair[0] != "--daemon")
            {
                args.drain(at..at + 2);
            }
        }
        args.extend_from_slice(extra);
        let mut command = agent_command(state_dir, &args);
        command
            .env("HEARTBEAT_KEY", FUNCTION_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        adjust(&mut command);
        let mut child = command.spawn().unwrap();
        let lines: Arc<Mutex<Vec<String>>> = Default::default();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let lines = Arc::clone(&lines);
            tokio::spawn(async move {
                let mut reader = BufReader::new(stream).lines();
                while let Ok(Some(line)) = reader.next_line().await {
                    lines.lock().unwrap().push(line);
                }
            });
        }
        Daemon { child, lines }
    }

    async fn wait_for_line(&self, needle: &str, timeout: Duration) -> String {
        wait_for(timeout, async || {
            self.lines
                .lock()
                .unwrap()
                .iter()
                .find(|l| l.contains(needle))
                .cloned()
        })
        .await
        .unwrap_or_else(|| {
            panic!(
                "no line containing {needle:?} in {:#?}",
                self.lines.lock().unwrap()
            )
        })
    }

    fn count(&self, needle: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    fn signal(&self, signal: i32) {
        // SAFETY: kill(2) on our own child.
        unsafe { libc::kill(self.child.id().unwrap() as i32, signal) };
    }

    async fn terminate(mut self) -> i32 {
        self.signal(libc::SIGTERM);
        let status = tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .expect("stops within 5 s of SIGTERM")
            .unwrap();
        status.code().unwrap_or(-1)
    }

    async fn kill(mut self) {
        self.signal(libc::SIGKILL);
        let _ = self.child.wait().await;
    }
}

async fn host_with_telemetry(ingestion: &Ingestion) -> FunctionsHost {
    let config = HostConfig::from_repo()
        .with_env(
            "APPLICATIONINSIGHTS_CONNECTION_STRING",
            &ingestion.connection_string(),
        )
        .with_env("SSL_CERT_FILE", ingestion.ca_file().to_str().unwrap());
    FunctionsHost::start(config).await.unwrap()
}

fn props(envelope: &Value) -> &Value {
    &envelope["data"]["baseData"]["properties"]
}

/// `--once`: 0 when the heartbeat is accepted, 1 when refused or unreachable, 2 for bad usage, and
/// the key never appears in what it prints.
#[tokio::test(flavor = "multi_thread")]
async fn once_exit_codes() {
    let host = FunctionsHost::start(HostConfig::from_repo()).await.unwrap();
    let dir = TempDir::new("agent-once");
    let url = host.ping_url();
    let (code, stdout, _) = run_agent(
        dir.path(),
        &[
            "--once",
            "--url",
            &url,
            "--key",
            FUNCTION_KEY,
            "--device",
            "den",
        ],
    )
    .await;
    assert_eq!(code, 0, "{stdout}");
    assert!(stdout.contains(" ok status=200 rtt="), "{stdout}");
    let logged = host.heartbeat_logs().await;
    assert_eq!(logged[0]["device"], "den");
    assert_eq!(logged[0]["agent_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(logged[0]["seq"], 1);

    // The original agent's way: key in the URL, no --once (a single heartbeat by default).
    let keyed = host.keyed_ping_url();
    let (code, stdout, stderr) = run_agent(dir.path(), &["--url", &keyed]).await;
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(!stdout.contains(FUNCTION_KEY) && !stderr.contains(FUNCTION_KEY));

    let (code, _, stderr) = run_agent(dir.path(), &["--once", "--url", &url]).await;
    assert_eq!(code, 1);
    assert!(
        stderr.contains("endpoint answered 401 (check HEARTBEAT_KEY / --key)"),
        "{stderr}"
    );

    let nowhere = format!(
        "http://127.0.0.1:{}/api/ping?code={FUNCTION_KEY}",
        free_port()
    );
    let (code, stdout, stderr) = run_agent(dir.path(), &["--once", "--url", &nowhere]).await;
    assert_eq!(code, 1);
    assert!(stderr.contains("endpoint unreachable"), "{stderr}");
    assert!(
        !stdout.contains(FUNCTION_KEY) && !stderr.contains(FUNCTION_KEY),
        "{stdout}{stderr}"
    );

    for (args, message) in [
        (
            vec!["--once"],
            "no endpoint: pass --url or set HEARTBEAT_URL",
        ),
        (
            vec!["--once", "--url", "ftp://example.invalid/"],
            "must be an http:// or https:// URL",
        ),
        (
            vec!["--url", &url, "--interval", "0"],
            "it must be a whole number of seconds, at least 1",
        ),
        (
            vec!["--url", &url, "--interval", "-3"],
            "it must be a whole number of seconds, at least 1",
        ),
        (
            vec![
                "--url",
                &url,
                "--daemon",
                "--state-dir",
                "/proc/isp-monitor",
            ],
            "is not writable",
        ),
        (
            vec!["--url", &url, "--bogus"],
            "unexpected argument '--bogus'",
        ),
    ] {
        let (code, _, stderr) = run_agent(dir.path(), &args).await;
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(message), "{args:?}: {stderr}");
    }
}

/// A corrupt journal is kept aside with a clear line, not deleted, and the daemon goes on with a
/// new journal (it used to exit 2, and tmux never restarted it).
#[tokio::test(flavor = "multi_thread")]
async fn corrupt_journal_is_kept_aside_and_reported() {
    let host = FunctionsHost::start(HostConfig::from_repo()).await.unwrap();
    let dir = TempDir::new("agent-corrupt");
    std::fs::write(dir.path().join("journal.json"), b"{\"version\": 1, \"pend").unwrap();
    let daemon = Daemon::start(dir.path(), &host.ping_url(), &[]);
    daemon
        .wait_for_line("is corrupt", Duration::from_secs(10))
        .await;
    daemon
        .wait_for_line("seq=2 ", Duration::from_secs(10))
        .await;
    assert_eq!(daemon.terminate().await, 0);
    let kept: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().into_string().unwrap())
        .collect();
    let aside = kept
        .iter()
        .find(|name| name.starts_with("journal.json.corrupt-"))
        .expect("kept aside");
    assert_eq!(
        std::fs::read(dir.path().join(aside)).unwrap(),
        b"{\"version\": 1, \"pend"
    );
    let journal: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("journal.json")).unwrap()).unwrap();
    assert!(
        journal["last_success"].is_string(),
        "a new journal: {journal}"
    );
}

/// The daemon sends one heartbeat per interval with a growing sequence number and the previous
/// round-trip time, and stops cleanly on SIGTERM.
#[tokio::test(flavor = "multi_thread")]
async fn daemon_sends_on_schedule_and_stops_on_sigterm() {
    let host = FunctionsHost::start(HostConfig::from_repo()).await.unwrap();
    let dir = TempDir::new("agent-daemon");
    let daemon = Daemon::start(dir.path(), &host.ping_url(), &[]);
    let started = Instant::now();
    daemon
        .wait_for_line("seq=4 ", Duration::from_secs(10))
        .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(2900),
        "4 beats at a 1 s interval took only {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(8),
        "4 beats at a 1 s interval took {elapsed:?}"
    );
    assert_eq!(daemon.terminate().await, 0);

    let logs = host.heartbeat_logs().await;
    let seqs: Vec<_> = logs.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert_eq!(&seqs[..4], &[1, 2, 3, 4]);
    assert_eq!(logs[0]["rtt_ms"], Value::Null, "no previous heartbeat yet");
    assert!(logs[1]["rtt_ms"].is_u64(), "{}", logs[1]);
}

/// Stop the whole endpoint for N seconds: exactly one outage is reported, with the right length
/// and cause, and it appears in telemetry as one Outage event.
#[tokio::test(flavor = "multi_thread")]
async fn outage_is_recorded_and_reported_once_back_online() {
    let ingestion = Ingestion::start(Behaviour::Accept).await;
    let mut host = host_with_telemetry(&ingestion).await;
    let dir = TempDir::new("agent-outage");
    let daemon = Daemon::start(dir.path(), &host.ping_url(), &[]);
    daemon
        .wait_for_line("seq=2 ", Duration::from_secs(10))
        .await;

    const DOWN: u64 = 5;
    host.stop().await;
    let down_at = Instant::now();
    daemon
        .wait_for_line("outage started cause=isp", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_secs(DOWN).saturating_sub(down_at.elapsed())).await;
    host.restart().await.unwrap();
    daemon
        .wait_for_line("outage reported", Duration::from_secs(10))
        .await;
    daemon
        .wait_for_line("reported=1", Duration::from_secs(5))
        .await;
    tokio::time::sleep(Duration::from_millis(2500)).await; // more heartbeats: must carry nothing
    assert_eq!(daemon.terminate().await, 0);
    host.terminate_handler().await; // flush telemetry

    let events = ingestion.events();
    assert_eq!(events.len(), 1, "exactly one Outage event: {events:#?}");
    let p = props(&events[0]);
    assert_eq!(p["device"], "den");
    assert_eq!(p["cause"], "isp");
    let duration: i64 = p["duration_s"].as_str().unwrap().parse().unwrap();
    assert!(
        (duration - DOWN as i64).abs() <= 2,
        "reported {duration} s for a {DOWN} s outage"
    );
    let journal: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("journal.json")).unwrap()).unwrap();
    assert_eq!(journal["pending"], json!([]));
    assert_eq!(journal["open"], Value::Null);
}

/// Item 4. Killing the agent during an outage and starting it again: the outage is still
/// reported, but it ends at the last moment the agent saw it; the time the agent was not running
/// is `agent_offline`, never the ISP's, however quick the restart. Every outage recorded at
/// start-up is printed.
#[tokio::test(flavor = "multi_thread")]
async fn outage_survives_an_agent_restart() {
    let ingestion = Ingestion::start(Behaviour::Accept).await;
    let mut host = host_with_telemetry(&ingestion).await;
    let dir = TempDir::new("agent-restart");
    let daemon = Daemon::start(dir.path(), &host.ping_url(), &[]);
    daemon
        .wait_for_line("seq=1 ", Duration::from_secs(10))
        .await;
    host.stop().await;
    daemon
        .wait_for_line("outage started", Duration::from_secs(10))
        .await;
    daemon
        .wait_for_line("down for", Duration::from_secs(10))
        .await;
    daemon.kill().await;
    let killed_at = chrono::Utc::now();
    host.restart().await.unwrap(); // the network is fine again while nobody watches
    tokio::time::sleep(Duration::from_secs(4)).await;

    let daemon = Daemon::start(dir.path(), &host.ping_url(), &[]);
    let recorded = daemon
        .wait_for_line("outage recorded cause=isp", Duration::from_secs(10))
        .await;
    daemon
        .wait_for_line("agent was not running for", Duration::from_secs(10))
        .await;
    daemon
        .wait_for_line("reported=2", Duration::from_secs(10))
        .await;
    assert_eq!(daemon.terminate().await, 0);
    host.terminate_handler().await;

    let events = ingestion.events();
    let mut causes: Vec<(
        String,
        chrono::DateTime<chrono::Utc>,
        chrono::DateTime<chrono::Utc>,
    )> = events
        .iter()
        .map(|e| {
            let p = props(e);
            let time = |k: &str| {
                chrono::DateTime::parse_from_rfc3339(p[k].as_str().unwrap())
                    .unwrap()
                    .to_utc()
            };
            (
                p["cause"].as_str().unwrap().to_owned(),
                time("start"),
                time("end"),
            )
        })
        .collect();
    causes.sort_by_key(|c| c.1);
    assert_eq!(
        causes.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        ["isp", "agent_offline"],
        "{events:#?} ({recorded})"
    );
    assert!(
        causes[0].2 <= killed_at,
        "the isp outage ends before the kill: {causes:?}"
    );
    assert_eq!(
        causes[1].1, causes[0].2,
        "agent_offline starts where it was last seen"
    );
    assert!(
        causes[1].2 >= killed_at + chrono::Duration::seconds(3),
        "agent_offline covers the restart: {causes:?}"
    );
}

/// Each kind of failure is diagnosed as its cause: an unresolvable name is DNS, dead probe targets
/// are the ISP (or the LAN when the gateway is dead too), a 500 is the cloud side, a 401 is
/// configuration.
#[tokio::test(flavor = "multi_thread")]
async fn causes_are_classified() {
    let host = FunctionsHost::start(HostConfig::from_repo()).await.unwrap();
    let live_target = format!("127.0.0.1:{}", host.handler_port());
    let failing = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let failing_url = format!(
        "http://127.0.0.1:{}/api/ping",
        failing.local_addr().unwrap().port()
    );
    tokio::spawn(async move {
        let app = axum::Router::new()
            .fallback(|| async { (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "boom") });
        axum::serve(failing, app).await.unwrap();
    });
    let dead_url = format!("http://127.0.0.1:{}/api/ping", free_port());
    let dns_url = format!(
        "http://isp-monitor-test.invalid:{}/api/ping",
        host.handler_port()
    );
    let keyless = host.ping_url();
    let gateway = dead_target();

    let cases: [(&str, &str, Vec<&str>); 5] = [
        ("dns", &dns_url, vec!["--probe-targets", &live_target]),
        ("isp", &dead_url, vec![]),
        ("lan", &dead_url, vec!["--gateway", &gateway]),
        ("cloud", &failing_url, vec![]),
        ("config", &keyless, vec!["--key", "wrong-key"]),
    ];
    for (cause, url, extra) in cases {
        let dir = TempDir::new("agent-cause");
        let daemon = Daemon::start(dir.path(), url, &extra);
        daemon
            .wait_for_line(
                &format!("outage started cause={cause}"),
                Duration::from_secs(15),
            )
            .await;
        assert_eq!(daemon.terminate().await, 0);
        let journal: Value =
            serde_json::from_slice(&std::fs::read(dir.path().join("journal.json")).unwrap())
                .unwrap();
        let causes = journal["open"]["causes"].as_object().unwrap();
        assert!(
            causes.keys().eq([cause]),
            "{cause}: only that cause was diagnosed: {journal}"
        );
    }
}

/// Time the agent was not running is reported separately, as `agent_offline`, measured from the
/// last successful heartbeat in the state directory.
#[tokio::test(flavor = "multi_thread")]
async fn time_not_running_is_reported_as_agent_offline() {
    let ingestion = Ingestion::start(Behaviour::Accept).await;
    let mut host = host_with_telemetry(&ingestion).await;
    let dir = TempDir::new("agent-offline");
    let last_success = chrono::Utc::now() - chrono::Duration::minutes(10);
    let journal = json!({"version": 1, "last_success": last_success.to_rfc3339(), "open": null, "pending": []});
    std::fs::write(dir.path().join("journal.json"), journal.to_string()).unwrap();

    let daemon = Daemon::start(dir.path(), &host.ping_url(), &[]);
    daemon
        .wait_for_line("agent was not running for 10m00s", Duration::from_secs(10))
        .await;
    daemon
        .wait_for_line("reported=1", Duration::from_secs(10))
        .await;
    assert_eq!(daemon.terminate().await, 0);
    host.terminate_handler().await;
    let events = ingestion.events();
    assert_eq!(events.len(), 1);
    assert_eq!(props(&events[0])["cause"], "agent_offline");
    let duration: i64 = props(&events[0])["duration_s"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((600..=603).contains(&duration), "{duration}");
}

/// A report the handler refuses can never block later heartbeats: it is set aside for a human and
/// heartbeats continue.
#[tokio::test(flavor = "multi_thread")]
async fn refused_reports_are_set_aside_not_resent_forever() {
    let host = FunctionsHost::start(HostConfig::from_repo()).await.unwrap();
    let dir = TempDir::new("agent-poison");
    let ancient = json!({"id": "old-1", "start": "2020-01-01T00:00:00Z", "end": "2020-01-01T00:05:00Z", "cause": "isp"});
    let journal = json!({"version": 1, "last_success": null, "open": null, "pending": [ancient]});
    std::fs::write(dir.path().join("journal.json"), journal.to_string()).unwrap();

    let daemon = Daemon::start(dir.path(), &host.ping_url(), &[]);
    daemon
        .wait_for_line(
            "the handler refused outage reports [\"old-1\"]",
            Duration::from_secs(10),
        )
        .await;
    daemon
        .wait_for_line("seq=4 ", Duration::from_secs(10))
        .await;
    assert_eq!(daemon.terminate().await, 0);
    let rejected = std::fs::read_to_string(dir.path().join("rejected-outages.json")).unwrap();
    assert!(rejected.contains("old-1"), "{rejected}");
    let journal: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("journal.json")).unwrap()).unwrap();
    assert_eq!(journal["pending"], json!([]));
}

// ---------------------------------------------------------------------------------------------
// Issue 13: each item below failed against the agent before the fix (run with
// ISP_MONITOR_TEST_AGENT=<old binary> to see it).

/// How a loopback [`Endpoint`] answers.
#[derive(Clone)]
enum Answer {
    Ok,
    /// Status and headers.
    Status(u16, Vec<(&'static str, String)>),
}

/// One request an [`Endpoint`] received.
#[derive(Clone, Debug)]
struct Seen {
    method: String,
    headers: axum::http::HeaderMap,
    body: Value,
}

/// A small loopback HTTP server standing in for the heartbeat endpoint: records every request and
/// answers as told.
struct Endpoint {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
    answer: Arc<Mutex<Answer>>,
}

impl Endpoint {
    async fn start(answer: Answer) -> Endpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen: Arc<Mutex<Vec<Seen>>> = Default::default();
        let answer = Arc::new(Mutex::new(answer));
        let (seen2, answer2) = (Arc::clone(&seen), Arc::clone(&answer));
        let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
            let (seen, answer) = (Arc::clone(&seen2), Arc::clone(&answer2));
            async move {
                let (parts, body) = request.into_parts();
                let bytes = axum::body::to_bytes(body, 1 << 20)
                    .await
                    .unwrap_or_default();
                seen.lock().unwrap().push(Seen {
                    method: parts.method.to_string(),
                    headers: parts.headers,
                    body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                });
                let answer = answer.lock().unwrap().clone();
                let mut response = axum::response::Response::new(axum::body::Body::from("{}"));
                if let Answer::Status(status, headers) = answer {
                    *response.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
                    for (name, value) in headers {
                        response
                            .headers_mut()
                            .insert(name, axum::http::HeaderValue::from_str(&value).unwrap());
                    }
                }
                response
            }
        });
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Endpoint { port, seen, answer }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/api/ping", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn set(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// Every outage report received, in order.
    fn outages(&self) -> Vec<Value> {
        self.seen()
            .iter()
            .flat_map(|s| s.body["outages"].as_array().cloned().unwrap_or_default())
            .collect()
    }
}

/// A loopback port that accepts TCP connections and counts them: a live probe target.
async fn counting_target() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let target = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
    let count: Arc<std::sync::atomic::AtomicUsize> = Default::default();
    let counter = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            drop(stream);
        }
    });
    (target, count)
}

fn read_journal(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("journal.json")).unwrap()).unwrap()
}

fn pending_report(id: &str) -> Value {
    let start = chrono::Utc::now() - chrono::Duration::minutes(30);
    json!({"id": id, "start": start.to_rfc3339(), "end": (start + chrono::Duration::minutes(5)).to_rfc3339(), "cause": "isp"})
}

/// Item 1. A redirect is never followed: the host it names never hears from the agent (no key, no
/// `?code=` in a Referer, no POST turned into a GET), the heartbeat counts as failed, the pending
/// outage stays in the journal, and the message names the location to configure.
#[tokio::test(flavor = "multi_thread")]
async fn redirects_are_never_followed() {
    let elsewhere = Endpoint::start(Answer::Ok).await;
    let redirecting = Endpoint::start(Answer::Ok).await;
    for status in [301, 302, 307, 308] {
        let dir = TempDir::new("agent-redirect");
        let journal = json!({"version": 1, "last_success": null, "open": null, "pending": [pending_report("keep-me")]});
        std::fs::write(dir.path().join("journal.json"), journal.to_string()).unwrap();
        redirecting.set(Answer::Status(
            status,
            vec![(
                "location",
                format!("{}?code={FUNCTION_KEY}", elsewhere.url()),
            )],
        ));
        let url = format!("{}?code={FUNCTION_KEY}", redirecting.url());
        let (code, stdout, stderr) = run_agent(
            dir.path(),
            &["--once", "--url", &url, "--key", FUNCTION_KEY],
        )
        .await;
        assert_eq!(code, 1, "{status}: {stdout}{stderr}");
        let expected = format!("use {} as HEARTBEAT_URL", elsewhere.url());
        assert!(stderr.contains(&expected), "{status}: {stderr}");
        assert!(stdout.contains("cause=config"), "{status}: {stdout}");
        assert!(
            !stdout.contains(FUNCTION_KEY) && !stderr.contains(FUNCTION_KEY),
            "{stdout}{stderr}"
        );
        let journal = read_journal(dir.path());
        assert_eq!(
            journal["pending"][0]["id"], "keep-me",
            "{status}: {journal}"
        );
    }
    assert!(
        elsewhere.seen().is_empty(),
        "the redirect target was contacted: {:?}",
        elsewhere.seen()
    );
    assert!(
        redirecting
            .seen()
            .iter()
            .all(|s| s.method == "POST" && s.headers.contains_key("x-functions-key"))
    );
}

/// Item 2. An error answer with a 2 GiB body: the agent reads a small prefix and hangs up at once
/// instead of reading it all (it took an agent to 4.2 GB).
#[tokio::test(flavor = "multi_thread")]
async fn huge_error_bodies_are_not_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    const OFFERED: usize = 256 << 20;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
        "http://127.0.0.1:{}/api/ping",
        listener.local_addr().unwrap().port()
    );
    let written: Arc<std::sync::atomic::AtomicUsize> = Default::default();
    let counter = Arc::clone(&written);
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = vec![0; 65536];
        let _ = stream.read(&mut request).await;
        let head = "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 2147483648\r\n\r\n";
        stream.write_all(head.as_bytes()).await.unwrap();
        let chunk = vec![b'x'; 1 << 16];
        while counter.load(std::sync::atomic::Ordering::SeqCst) < OFFERED {
            match stream.write(&chunk).await {
                Ok(n) if n > 0 => counter.fetch_add(n, std::sync::atomic::Ordering::SeqCst),
                _ => break,
            };
        }
    });
    let dir = TempDir::new("agent-huge");
    let started = Instant::now();
    let (code, _, stderr) = run_agent(
        dir.path(),
        &["--once", "--url", &url, "--timeout", "8", "--verbose"],
    )
    .await;
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("endpoint answered 500"), "{stderr}");
    let sent = written.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        sent < 32 << 20,
        "the agent took {} MiB of the error body",
        sent >> 20
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

/// Item 3. `429` with `Retry-After: 3` is the cloud side throttling: the endpoint is left alone
/// for 3 s while the internet targets are still probed every probe interval. `503` without one
/// backs off 1, 2, 4 s (up to the interval) instead of an attempt every probe interval.
#[tokio::test(flavor = "multi_thread")]
async fn throttling_and_errors_back_off() {
    let endpoint = Endpoint::start(Answer::Status(429, vec![("retry-after", "3".into())])).await;
    let (target, probes) = counting_target().await;
    let dir = TempDir::new("agent-429");
    let daemon = Daemon::start(dir.path(), &endpoint.url(), &["--probe-targets", &target]);
    daemon
        .wait_for_line("outage started cause=cloud", Duration::from_secs(10))
        .await;
    let first = Instant::now();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(endpoint.seen().len(), 1, "Retry-After: 3 was not honoured");
    assert!(
        probes.load(std::sync::atomic::Ordering::SeqCst) >= 2,
        "the internet targets were not probed while backing off"
    );
    wait_for(Duration::from_secs(3), async || {
        (endpoint.seen().len() >= 2).then_some(())
    })
    .await
    .expect("tried again after 3 s");
    assert!(first.elapsed() >= Duration::from_millis(2900));
    assert_eq!(daemon.terminate().await, 0);
    let journal = read_journal(dir.path());
    assert!(
        journal["open"]["causes"]
            .as_object()
            .unwrap()
            .keys()
            .eq(["cloud"]),
        "{journal}"
    );
    assert!(
        journal["open"]["detail"]
            .as_str()
            .unwrap()
            .contains("throttling"),
        "{journal}"
    );

    let failing = Endpoint::start(Answer::Status(503, vec![])).await;
    let dir = TempDir::new("agent-503");
    let daemon = Daemon::start(
        dir.path(),
        &failing.url(),
        &["--interval", "4", "--probe-targets", &target],
    );
    daemon
        .wait_for_line("outage started cause=cloud", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(5500)).await;
    let attempts = failing.seen().len();
    assert_eq!(daemon.terminate().await, 0);
    assert!(
        (2..=3).contains(&attempts),
        "{attempts} attempts in 5.5 s: expected at 0, 1, 3 s"
    );
}

/// Item 5. The suspected start is written at the first failure: an agent killed during the quick
/// retries still has its outage reported on the next start (then `agent_offline`).
#[tokio::test(flavor = "multi_thread")]
async fn start_survives_a_kill_during_the_quick_retries() {
    let endpoint = Endpoint::start(Answer::Ok).await;
    let dir = TempDir::new("agent-suspect");
    let dead = format!("http://127.0.0.1:{}/api/ping", free_port());
    let before = chrono::Utc::now();
    let daemon = Daemon::start(dir.path(), &dead, &["--verbose"]);
    daemon
        .wait_for_line("attempt 1 failed", Duration::from_secs(10))
        .await;
    daemon.kill().await;

    let daemon = Daemon::start(dir.path(), &endpoint.url(), &[]);
    daemon
        .wait_for_line("outage recorded cause=unknown", Duration::from_secs(10))
        .await;
    daemon
        .wait_for_line("reported=2", Duration::from_secs(10))
        .await;
    assert_eq!(daemon.terminate().await, 0);
    let outages = endpoint.outages();
    assert_eq!(outages.len(), 2, "{outages:#?}");
    let start = chrono::DateTime::parse_from_rfc3339(outages[0]["start"].as_str().unwrap())
        .unwrap()
        .to_utc();
    assert!(
        start >= before - chrono::Duration::seconds(1)
            && start <= before + chrono::Duration::seconds(3),
        "the first failure: {outages:#?}"
    );
    assert_eq!(outages[0]["cause"], "unknown");
    assert_eq!(outages[1]["cause"], "agent_offline");
}

/// Item 6. `journal.json` a directory: set aside with a clear line; the agent goes on.
#[tokio::test(flavor = "multi_thread")]
async fn journal_that_is_a_directory_does_not_stop_the_agent() {
    let endpoint = Endpoint::start(Answer::Ok).await;
    let dir = TempDir::new("agent-jdir");
    std::fs::create_dir(dir.path().join("journal.json")).unwrap();
    let daemon = Daemon::start(dir.path(), &endpoint.url(), &[]);
    daemon
        .wait_for_line("is corrupt (it is a directory", Duration::from_secs(10))
        .await;
    daemon
        .wait_for_line("seq=2 ", Duration::from_secs(10))
        .await;
    assert_eq!(daemon.terminate().await, 0);
    assert!(dir.path().join("journal.json").is_file());
}

#[cfg(target_os = "linux")] // prlimit(2) is Linux's
/// Sets the file-size limit of a running process (a full disk's stand-in: every write to a file
/// then fails with EFBIG, since the agent inherits SIGXFSZ ignored).
fn set_file_size_limit(pid: u32, bytes: libc::rlim_t) {
    let limit = libc::rlimit {
        rlim_cur: bytes,
        rlim_max: libc::RLIM_INFINITY,
    };
    // SAFETY: prlimit(2) on our own child, with a valid struct.
    let rc = unsafe { libc::prlimit(pid as i32, libc::RLIMIT_FSIZE, &limit, std::ptr::null_mut()) };
    assert_eq!(rc, 0, "prlimit: {}", std::io::Error::last_os_error());
}

#[cfg(target_os = "linux")] // prlimit(2) is Linux's
/// Item 6. A disk that takes no writes from the start: the agent runs on its in-memory journal,
/// still records and reports an outage, retries writing, and writes the journal once it can.
#[tokio::test(flavor = "multi_thread")]
async fn full_disk_keeps_the_journal_in_memory() {
    // SAFETY: ignoring SIGXFSZ in the test process so that children inherit it ignored.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let ingestion = Ingestion::start(Behaviour::Accept).await;
    let mut host = host_with_telemetry(&ingestion).await;
    let dir = TempDir::new("agent-full");
    let daemon = Daemon::start_with(dir.path(), &host.ping_url(), &[], |command| {
        // SAFETY: only async-signal-safe setrlimit between fork and exec.
        unsafe {
            command.pre_exec(|| {
                let limit = libc::rlimit {
                    rlim_cur: 0,
                    rlim_max: libc::RLIM_INFINITY,
                };
                libc::setrlimit(libc::RLIMIT_FSIZE, &limit);
                Ok(())
            });
        }
    });
    daemon
        .wait_for_line("cannot write the outage journal", Duration::from_secs(10))
        .await;
    daemon
        .wait_for_line("seq=2 ", Duration::from_secs(10))
        .await;
    host.stop().await;
    daemon
        .wait_for_line("outage started", Duration::from_secs(10))
        .await;
    host.restart().await.unwrap();
    daemon
        .wait_for_line("outage reported", Duration::from_secs(10))
        .await;
    assert!(
        !dir.path().join("journal.json").exists(),
        "nothing could be written"
    );
    set_file_size_limit(daemon.child.id().unwrap(), libc::RLIM_INFINITY);
    daemon
        .wait_for_line("is written again", Duration::from_secs(10))
        .await;
    assert_eq!(daemon.terminate().await, 0);
    host.terminate_handler().await;
    assert_eq!(ingestion.events().len(), 1);
    assert_eq!(read_journal(dir.path())["pending"], json!([]));
}

#[cfg(target_os = "linux")] // prlimit(2) is Linux's
/// Item 6. A save that fails after an outage ended leaves a stale journal; after a crash the
/// next run must not send that outage id again with another end. It is reported once.
#[tokio::test(flavor = "multi_thread")]
async fn a_report_id_is_sent_once_whatever_is_on_disk() {
    // SAFETY: as in full_disk_keeps_the_journal_in_memory.
    unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
    let ingestion = Ingestion::start(Behaviour::Accept).await;
    let mut host = host_with_telemetry(&ingestion).await;
    let dir = TempDir::new("agent-stale");
    let daemon = Daemon::start(dir.path(), &host.ping_url(), &[]);
    daemon
        .wait_for_line("seq=1 ", Duration::from_secs(10))
        .await;
    host.stop().await;
    daemon
        .wait_for_line("down for", Duration::from_secs(10))
        .await;
    set_file_size_limit(daemon.child.id().unwrap(), 0);
    let oks = daemon.count(" ok ");
    host.restart().await.unwrap();
    wait_for(Duration::from_secs(10), async || {
        (daemon.count(" ok ") > oks).then_some(())
    })
    .await
    .expect("back online");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    daemon.kill().await;

    let daemon = Daemon::start(dir.path(), &host.ping_url(), &[]);
    daemon
        .wait_for_line("seq=3 ", Duration::from_secs(10))
        .await;
    assert_eq!(daemon.terminate().await, 0);
    host.terminate_handler().await;
    let events = ingestion.events();
    let mut ids: Vec<String> = events
        .iter()
        .filter(|e| props(e)["cause"] != "agent_offline")
        .map(|e| props(e)["id"].as_str().unwrap_or("").to_owned())
        .collect();
    let all = ids.len();
    ids.dedup();
    assert_eq!(ids.len(), 1, "{events:#?}");
    assert_eq!(all, 1, "the outage was reported {all} times: {events:#?}");
}

/// Item 7. A second agent on the same state directory exits 2 naming the first one's pid.
#[tokio::test(flavor = "multi_thread")]
async fn two_agents_cannot_share_a_state_dir() {
    let endpoint = Endpoint::start(Answer::Ok).await;
    let dir = TempDir::new("agent-lock");
    let first = Daemon::start(dir.path(), &endpoint.url(), &[]);
    first.wait_for_line("seq=1 ", Duration::from_secs(10)).await;
    let second = tokio::time::timeout(
        Duration::from_secs(10),
        run_agent(dir.path(), &["--daemon", "--url", &endpoint.url()]),
    )
    .await;
    let pid = first.child.id().unwrap();
    assert_eq!(first.terminate().await, 0);
    let (code, _, stderr) = second.expect("the second agent kept running");
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains(&format!(
            "another heartbeat-agent (pid {pid}) is using the state directory"
        )),
        "{stderr}"
    );
    // --once too: it shares the journal.
    let again = Daemon::start(dir.path(), &endpoint.url(), &[]);
    again.wait_for_line("seq=1 ", Duration::from_secs(10)).await;
    let (code, _, stderr) = run_agent(dir.path(), &["--once", "--url", &endpoint.url()]).await;
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(again.terminate().await, 0);
}

/// Item 8. The original cron pattern: a failed `--once` records the start of an outage in the
/// journal, and the next good `--once` reports it, ending then.
#[tokio::test(flavor = "multi_thread")]
async fn once_keeps_the_journal() {
    let endpoint = Endpoint::start(Answer::Ok).await;
    let dir = TempDir::new("agent-cron");
    let dead = format!("http://127.0.0.1:{}/api/ping", free_port());
    let failed_at = chrono::Utc::now();
    let (code, stdout, _) = run_agent(dir.path(), &["--once", "--url", &dead]).await;
    assert_eq!(code, 1);
    assert!(stdout.contains("outage started cause=isp"), "{stdout}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (code, stdout, stderr) = run_agent(dir.path(), &["--once", "--url", &dead]).await;
    assert_eq!(code, 1);
    assert!(stdout.contains(" down for "), "{stdout}{stderr}");
    let (code, stdout, stderr) = run_agent(dir.path(), &["--once", "--url", &endpoint.url()]).await;
    let back_at = chrono::Utc::now();
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("outage reported"), "{stdout}");
    let outages = endpoint.outages();
    assert_eq!(outages.len(), 1, "{outages:#?}");
    assert_eq!(outages[0]["cause"], "isp");
    let time = |k: &str| {
        chrono::DateTime::parse_from_rfc3339(outages[0][k].as_str().unwrap())
            .unwrap()
            .to_utc()
    };
    assert!(
        (time("start") - failed_at).num_seconds().abs() <= 1,
        "{outages:#?}"
    );
    assert!((back_at - time("end")).num_seconds() <= 2, "{outages:#?}");
    assert_eq!(read_journal(dir.path())["pending"], json!([]));
}

/// Item 9 (the agent's part). A URL without a path gets the /api/ping hint; an interval above a
/// day is refused; a URL's user:password is never printed.
#[tokio::test(flavor = "multi_thread")]
async fn config_slips_are_caught() {
    let dir = TempDir::new("agent-config");
    let (code, _, stderr) =
        run_agent(dir.path(), &["--once", "--url", "http://127.0.0.1:7071"]).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("it should end in /api/ping"), "{stderr}");
    let (code, _, stderr) = run_agent(
        dir.path(),
        &[
            "--once",
            "--url",
            "http://127.0.0.1:7071/api/ping",
            "--interval",
            "90000",
        ],
    )
    .await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("at most 86400 seconds"), "{stderr}");

    let endpoint = Endpoint::start(Answer::Status(401, vec![])).await;
    let secret_url = format!(
        "http://someone:s3cret-pw@127.0.0.1:{}/api/ping",
        endpoint.port
    );
    let (code, stdout, stderr) = run_agent(dir.path(), &["--once", "--url", &secret_url]).await;
    assert_eq!(code, 1);
    let dead = format!(
        "http://someone:s3cret-pw@127.0.0.1:{}/api/ping",
        free_port()
    );
    let (_, stdout2, stderr2) = run_agent(dir.path(), &["--once", "--url", &dead]).await;
    let all = format!("{stdout}{stderr}{stdout2}{stderr2}");
    assert!(!all.contains("s3cret"), "{all}");
    assert!(all.contains("http://127.0.0.1:"), "{all}");
}
