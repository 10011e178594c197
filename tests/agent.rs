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
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A loopback port with nothing listening: a probe target that never answers.
fn dead_target() -> String {
    format!("127.0.0.1:{}", free_port())
}

fn agent_command(state_dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(agent_binary());
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
        args.extend_from_slice(extra);
        let mut child = agent_command(state_dir, &args)
            .env("HEARTBEAT_KEY", FUNCTION_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
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
    let logged = host.heartbeat_logs();
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

/// A corrupt journal stops the daemon with exit 2 and a message, and is kept aside, not deleted.
#[tokio::test(flavor = "multi_thread")]
async fn corrupt_journal_is_kept_aside_and_reported() {
    let dir = TempDir::new("agent-corrupt");
    std::fs::write(dir.path().join("journal.json"), b"{\"version\": 1, \"pend").unwrap();
    let (code, _, stderr) = run_agent(
        dir.path(),
        &["--daemon", "--url", "http://127.0.0.1:9/api/ping"],
    )
    .await;
    assert_eq!(code, 2);
    assert!(stderr.contains("is corrupt"), "{stderr}");
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

    let logs = host.heartbeat_logs();
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

/// Killing the agent during an outage and starting it again: the outage is still reported once.
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
    let down_at = Instant::now();
    daemon
        .wait_for_line("outage started", Duration::from_secs(10))
        .await;
    daemon.kill().await;

    let daemon = Daemon::start(dir.path(), &host.ping_url(), &[]);
    daemon
        .wait_for_line("down for", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    host.restart().await.unwrap();
    let up_at = down_at.elapsed().as_secs() as i64;
    daemon
        .wait_for_line("outage reported", Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(daemon.terminate().await, 0);
    host.terminate_handler().await;

    let events = ingestion.events();
    assert_eq!(events.len(), 1, "{events:#?}");
    let duration: i64 = props(&events[0])["duration_s"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (duration - up_at).abs() <= 2,
        "reported {duration} s, down about {up_at} s"
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
