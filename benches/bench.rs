//! Measures the handler and the agent on this machine and prints the table kept in the README.
//! Loopback only: the handler is the real release binary, telemetry goes to the HTTPS ingestion
//! stand-in from the test suite, and the load comes from this process (so on a 2-core machine the
//! load generator competes with the handler for CPU; the numbers are a floor, not a ceiling).
//!
//! Run: `cargo bench --bench bench` (about three minutes). Not part of the test command.

#[path = "../tests/support/mod.rs"]
mod support;

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use support::ingestion::{Behaviour, Ingestion};
use support::{TempDir, agent_binary, free_port, handler_binary};
use tokio::process::{Child, Command};

const LOAD_SECONDS: u64 = 4;

struct Row {
    what: String,
    value: String,
    target: &'static str,
    met: Option<bool>,
}

fn row(
    what: impl Into<String>,
    value: impl Into<String>,
    target: &'static str,
    met: Option<bool>,
) -> Row {
    Row {
        what: what.into(),
        value: value.into(),
        target,
        met,
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let mut rows = Vec::new();
    rows.extend(start_to_ready().await);
    let ingestion = Ingestion::start(Behaviour::AcceptUnread).await;
    let off = load("telemetry off", None).await;
    let on = load("telemetry on", Some(&ingestion)).await;
    for result in [&off, &on] {
        rows.push(row(
            format!("heartbeat latency p50 / p99 at 1,000/s ({})", result.label),
            format!("{:.2} ms / {:.2} ms", result.p50_ms, result.p99_ms),
            "p99 ≤ 2 ms",
            Some(result.p99_ms <= 2.0),
        ));
        rows.push(row(
            format!("throughput, concurrency 1 ({})", result.label),
            format!("{:.0} /s", result.rps_1),
            "",
            None,
        ));
        rows.push(row(
            format!("throughput, concurrency 64 ({})", result.label),
            format!("{:.0} /s", result.rps_64),
            "≥ 20,000 /s",
            Some(result.rps_64 >= 20_000.0),
        ));
        rows.push(row(
            format!(
                "handler CPU per heartbeat at concurrency 64 ({})",
                result.label
            ),
            format!("{:.0} µs", result.cpu_us_per_heartbeat),
            "",
            None,
        ));
        rows.push(row(
            format!(
                "of which the log writer thread, per heartbeat ({})",
                result.label
            ),
            format!(
                "{:.1} µs ({:.0} % of the handler's CPU)",
                result.log_cpu_us_per_heartbeat,
                result.log_cpu_share * 100.0
            ),
            "",
            None,
        ));
        rows.push(row(
            format!("handler RSS idle / peak under load ({})", result.label),
            format!(
                "{:.1} MB / {:.1} MB",
                result.rss_idle_mb, result.rss_peak_mb
            ),
            "≤ 20 MB",
            Some(result.rss_peak_mb <= 20.0),
        ));
    }
    let cost = 1.0 - on.rps_64 / off.rps_64;
    rows.push(row(
        "throughput cost of telemetry (concurrency 64)",
        format!("{:.1} %", cost * 100.0),
        "≤ 10 %",
        Some(cost <= 0.10),
    ));
    let dropped = DROPPED_LOG_LINES.load(Ordering::Relaxed);
    rows.push(row(
        "log lines dropped (stdout drained like the host does)",
        format!("{dropped}"),
        "0",
        Some(dropped == 0),
    ));
    rows.extend(sizes());
    rows.extend(agent().await);

    println!("\n| measurement | value | target | |");
    println!("| --- | --- | --- | --- |");
    for r in &rows {
        let verdict = match r.met {
            Some(true) => "met",
            Some(false) => "MISSED",
            None => "",
        };
        println!("| {} | {} | {} | {} |", r.what, r.value, r.target, verdict);
    }
    let generator = if std::process::Command::new("wrk")
        .arg("--version")
        .output()
        .is_ok()
    {
        "wrk (1 thread)"
    } else {
        "in-process reqwest (install wrk for truer numbers)"
    };
    println!(
        "\nmachine: {} cores, {}; load generator for throughput: {generator}",
        num_cpus(),
        cpu_model()
    );
}

/// Log lines the handler reported dropped (its stderr warnings), summed over every handler the
/// benchmark started.
static DROPPED_LOG_LINES: AtomicU64 = AtomicU64::new(0);

fn spawn_handler(port: u16, ingestion: Option<&Ingestion>) -> Child {
    let mut command = Command::new(handler_binary());
    command
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .stdin(Stdio::null())
        // The host reads stdout through a pipe; drain one the same way rather than discard it.
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    if let Some(ingestion) = ingestion {
        command
            .env(
                "APPLICATIONINSIGHTS_CONNECTION_STRING",
                ingestion.connection_string(),
            )
            .env("SSL_CERT_FILE", ingestion.ca_file());
    }
    let mut child = command.spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    tokio::spawn(async move {
        let _ = tokio::io::copy(&mut stdout, &mut tokio::io::sink()).await;
    });
    let stderr = child.stderr.take().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let dropped = line
                .strip_prefix("handler: warning: ")
                .and_then(|rest| rest.split(' ').next())
                .and_then(|n| n.parse::<u64>().ok());
            if let Some(n) = dropped {
                DROPPED_LOG_LINES.fetch_add(n, Ordering::Relaxed);
            }
        }
    });
    child
}

/// Time from spawning the process to its first answer on `GET /`, as the host measures readiness.
async fn start_to_ready() -> Vec<Row> {
    let mut samples = Vec::new();
    for _ in 0..41 {
        let port = free_port();
        let started = Instant::now();
        let mut child = spawn_handler(port, None);
        loop {
            if let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                stream
                    .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    .await
                    .unwrap();
                let mut buf = [0u8; 12];
                if stream.read_exact(&mut buf).await.is_ok() && buf.starts_with(b"HTTP/1.1 200") {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        samples.push(started.elapsed().as_secs_f64() * 1000.0);
        child.kill().await.unwrap();
    }
    samples.sort_by(f64::total_cmp);
    let median = samples[samples.len() / 2];
    vec![row(
        "handler start to first answer on GET / (median of 41)",
        format!("{median:.1} ms"),
        "≤ 20 ms",
        Some(median <= 20.0),
    )]
}

struct LoadResult {
    label: &'static str,
    p50_ms: f64,
    p99_ms: f64,
    rps_1: f64,
    rps_64: f64,
    rss_idle_mb: f64,
    rss_peak_mb: f64,
    cpu_us_per_heartbeat: f64,
    /// CPU of the handler's log-writer thread per heartbeat at concurrency 64: the logging cost
    /// that moved off the request path.
    log_cpu_us_per_heartbeat: f64,
    /// Share of the handler's CPU at concurrency 64 spent in that thread.
    log_cpu_share: f64,
}

async fn load(label: &'static str, ingestion: Option<&Ingestion>) -> LoadResult {
    let port = free_port();
    let child = spawn_handler(port, ingestion);
    let pid = child.id().unwrap();
    let url = format!("http://127.0.0.1:{port}/api/ping");
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(128)
        .build()
        .unwrap();
    while client
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_idle_mb = rss_kib(pid).0 as f64 / 1024.0;

    // Open loop at 1,000 heartbeats a second: each request is sent on schedule, whatever the
    // previous one did, and its latency recorded.
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut ticker = tokio::time::interval(Duration::from_millis(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    for n in 0..(1000 * LOAD_SECONDS) {
        ticker.tick().await;
        let (client, url, latencies) = (client.clone(), url.clone(), Arc::clone(&latencies));
        tasks.push(tokio::spawn(async move {
            let started = Instant::now();
            let answer = client
                .post(&url)
                .json(&json!({"device": "bench", "seq": n, "note": "benchmark"}))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            latencies
                .lock()
                .unwrap()
                .push(started.elapsed().as_secs_f64() * 1000.0);
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort_by(f64::total_cmp);
    let percentile =
        |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];

    let rps_1 = throughput(&client, &url, 1).await;
    let cpu_before = cpu_seconds(pid);
    let log_cpu_before = log_writer_cpu_seconds(pid);
    let rps_64 = throughput(&client, &url, 64).await;
    // CPU per heartbeat at concurrency 64, counting the export thread's work for those heartbeats.
    // Both generators report a rate over LOAD_SECONDS; rate times duration is the count.
    let sent = rps_64 * LOAD_SECONDS as f64;
    tokio::time::sleep(Duration::from_millis(600)).await; // let the last batches go out
    let cpu_total = cpu_seconds(pid) - cpu_before;
    let log_cpu = log_writer_cpu_seconds(pid) - log_cpu_before;
    let cpu_us_per_heartbeat = cpu_total / sent * 1e6;
    let rss_peak_mb = rss_kib(pid).1 as f64 / 1024.0;
    drop(child);
    LoadResult {
        label,
        p50_ms: percentile(0.50),
        p99_ms: percentile(0.99),
        rps_1,
        rps_64,
        rss_idle_mb,
        rss_peak_mb,
        cpu_us_per_heartbeat,
        log_cpu_us_per_heartbeat: log_cpu / sent * 1e6,
        log_cpu_share: if cpu_total > 0.0 {
            log_cpu / cpu_total
        } else {
            0.0
        },
    }
}

/// Heartbeats per second with `concurrency` clients sending back to back. Uses `wrk` when it is
/// installed (`apt-get install wrk`): a C load generator on one thread leaves the handler far more
/// of this machine's two cores than the in-process Rust client, which is the fallback.
async fn throughput(client: &reqwest::Client, url: &str, concurrency: usize) -> f64 {
    match wrk(url, concurrency).await {
        Some(rps) => rps,
        None => closed_loop(client, url, concurrency).await,
    }
}

async fn wrk(url: &str, concurrency: usize) -> Option<f64> {
    let dir = TempDir::new("bench-wrk");
    let script = dir.path().join("post.lua");
    std::fs::write(
        &script,
        "wrk.method = \"POST\"\nwrk.body = '{\"device\":\"bench\",\"note\":\"benchmark\"}'\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
    )
    .ok()?;
    let output = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{concurrency}"),
            &format!("-d{LOAD_SECONDS}s"),
            "-s",
        ])
        .arg(&script)
        .arg(url)
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    if text.contains("Non-2xx") {
        panic!("wrk saw failed heartbeats:\n{text}");
    }
    text.lines()
        .find(|l| l.starts_with("Requests/sec:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// As many heartbeats as `concurrency` clients can send back to back for a few seconds.
async fn closed_loop(client: &reqwest::Client, url: &str, concurrency: usize) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, done, stop) = (
                client.clone(),
                url.to_owned(),
                Arc::clone(&done),
                Arc::clone(&stop),
            );
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let answer = client
                        .post(&url)
                        .json(&json!({"device": "bench", "note": "benchmark"}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(answer.status(), 200);
                    answer.bytes().await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(LOAD_SECONDS)).await;
    stop.store(true, Ordering::Relaxed);
    for task in tasks {
        task.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

/// (current, peak) resident set size in KiB.
fn rss_kib(pid: u32) -> (u64, u64) {
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

/// The release binary and the deployment package (host.json, Ping/function.json and the binary
/// as `handler`, zipped as deploy.sh does).
fn sizes() -> Vec<Row> {
    let binary = std::fs::metadata(handler_binary()).unwrap().len() as f64 / 1_048_576.0;
    let mut rows = vec![row(
        "handler binary (this build, stripped)",
        format!("{binary:.1} MB"),
        "",
        None,
    )];
    let dir = TempDir::new("bench-package");
    std::fs::copy(
        support::repo_root().join("host.json"),
        dir.path().join("host.json"),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("Ping")).unwrap();
    std::fs::copy(
        support::repo_root().join("Ping/function.json"),
        dir.path().join("Ping/function.json"),
    )
    .unwrap();
    std::fs::copy(handler_binary(), dir.path().join("handler")).unwrap();
    let zipped = std::process::Command::new("zip")
        .current_dir(dir.path())
        .args([
            "-q",
            "-X",
            "-r",
            "package.zip",
            "host.json",
            "Ping",
            "handler",
        ])
        .status();
    match zipped {
        Ok(status) if status.success() => {
            let package = std::fs::metadata(dir.path().join("package.zip"))
                .unwrap()
                .len() as f64
                / 1_048_576.0;
            rows.push(row(
                "deployment package (zip)",
                format!("{package:.1} MB"),
                "≤ 10 MB",
                Some(package <= 10.0),
            ));
        }
        _ => rows.push(row(
            "deployment package (zip)",
            "not measured: `zip` is not installed",
            "≤ 10 MB",
            None,
        )),
    }
    rows
}

/// The agent as a daemon at a 1-second interval against a local handler: peak RSS, and CPU time
/// per 1,000 heartbeats extrapolated from 30.
async fn agent() -> Vec<Row> {
    let port = free_port();
    let _handler = spawn_handler(port, None);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let state = TempDir::new("bench-agent");
    let mut child = Command::new(agent_binary())
        .env_clear()
        .args([
            "--daemon",
            "--interval",
            "1",
            "--device",
            "bench",
            "--probe-targets",
            "127.0.0.1:9",
        ])
        .arg("--url")
        .arg(format!("http://127.0.0.1:{port}/api/ping"))
        .arg("--state-dir")
        .arg(state.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let pid = child.id().unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let cpu_before = cpu_seconds(pid);
    const BEATS: u64 = 30;
    tokio::time::sleep(Duration::from_secs(BEATS)).await;
    let cpu_per_1000 = (cpu_seconds(pid) - cpu_before) / BEATS as f64 * 1000.0;
    let (rss, peak) = rss_kib(pid);
    child.kill().await.unwrap();
    vec![
        row(
            "agent RSS / peak (daemon)",
            format!(
                "{:.1} MB / {:.1} MB",
                rss as f64 / 1024.0,
                peak as f64 / 1024.0
            ),
            "≤ 8 MB",
            Some(peak as f64 / 1024.0 <= 8.0),
        ),
        row(
            format!("agent CPU time per 1,000 heartbeats (from {BEATS})"),
            format!("{cpu_per_1000:.2} s"),
            "",
            None,
        ),
    ]
}

/// CPU time of the handler's `log-writer` thread (found by name under /proc/PID/task).
fn log_writer_cpu_seconds(pid: u32) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|c| c.trim() == "log-writer")
        })
        .map(|task| stat_cpu_seconds(&task.path().join("stat")))
        .sum()
}

/// User plus system CPU time of a process, from /proc/PID/stat.
fn cpu_seconds(pid: u32) -> f64 {
    stat_cpu_seconds(std::path::Path::new(&format!("/proc/{pid}/stat")))
}

/// User plus system CPU time from a `stat` file of /proc (a process's or a thread's).
fn stat_cpu_seconds(path: &std::path::Path) -> f64 {
    let stat = std::fs::read_to_string(path).unwrap_or_default();
    // Fields after the command name, which is in parentheses and may contain spaces.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields
        .get(11)
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    ticks / per_second
}

fn num_cpus() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}
