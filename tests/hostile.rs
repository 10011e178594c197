//! The real `handler` binary against peers that misbehave: a log reader that stops reading,
//! clients that never finish their headers or bodies, clients that hold connections open, and
//! command lines it does not understand. Each test is bounded in time.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::{free_port, rss_kib, spawn_handler, wait_for, wait_ready};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Collects a child's output stream line by line in the background.
fn collect(
    stream: impl tokio::io::AsyncRead + Unpin + Send + 'static,
) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let into = std::sync::Arc::clone(&lines);
    tokio::spawn(async move {
        let mut reader = BufReader::new(stream).lines();
        while let Ok(Some(line)) = reader.next_line().await {
            into.lock().unwrap().push(line);
        }
    });
    lines
}

/// Reads from `stream` until the peer closes it; `Err` when that takes longer than `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> Result<Vec<u8>, String> {
    let mut seen = Vec::new();
    let read = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.map(|()| seen)
        .map_err(|_| format!("still open after {limit:?}"))
}

/// A stdout nobody reads (a stuck log pipeline) never stops serving: 2,000 heartbeats and the
/// host's `GET /` are all answered promptly, and once stdout is read again every heartbeat is
/// either logged or counted in a warning on stderr; none is lost silently.
#[tokio::test(flavor = "multi_thread")]
async fn unread_stdout_never_stalls_serving() {
    const BEATS: usize = 2000;
    let port = free_port();
    let mut child = spawn_handler(port, &[]);
    let stdout = child.stdout.take().unwrap(); // held, not read, until the end
    let stderr = collect(child.stderr.take().unwrap());
    wait_ready(port).await;

    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/api/ping");
    for seq in 0..BEATS {
        let answer = client
            .post(&url)
            .json(&json!({"device": "stuck-log", "seq": seq}))
            .send()
            .await
            .unwrap_or_else(|err| panic!("heartbeat {seq} was not answered: {err}"));
        assert_eq!(answer.status(), 200, "heartbeat {seq}");
    }
    let health = client
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .expect("GET / answered while stdout is stuck");
    assert_eq!(health.status(), 200);

    let stdout = collect(stdout);
    let accounted = wait_for(Duration::from_secs(10), async || {
        let logged = stdout
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["event"] == "heartbeat")
            .count();
        let dropped: usize = stderr
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| {
                let (count, _) = line
                    .strip_prefix("handler: warning: ")?
                    .split_once(" log lines dropped")?;
                count.parse::<usize>().ok()
            })
            .sum();
        (logged + dropped == BEATS && dropped > 0).then_some((logged, dropped))
    })
    .await;
    assert!(
        accounted.is_some(),
        "every heartbeat logged or counted as dropped; stderr: {:?}",
        stderr.lock().unwrap()
    );
}

/// 400 connections each sending 300 KiB of headers that never end: the handler's memory grows by
/// less than 48 MB (the header size limit refuses each long before 300 KiB), and every connection
/// is closed promptly instead of being held.
#[tokio::test(flavor = "multi_thread")]
async fn huge_unfinished_headers_are_bounded() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let port = free_port();
        let mut child = spawn_handler(port, &[("HANDLER_HEADER_TIMEOUT", "2")]);
        let _stdout = collect(child.stdout.take().unwrap());
        let _stderr = collect(child.stderr.take().unwrap());
        wait_ready(port).await;
        let pid = child.id().unwrap();
        let (before, _) = rss_kib(pid);

        let filler = format!("X-Filler: {}\r\n", "f".repeat(1000));
        let tasks: Vec<_> = (0..400)
            .map(|_| {
                let filler = filler.clone();
                tokio::spawn(async move {
                    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                    let mut sent = 0;
                    let _ = stream
                        .write_all(b"POST /api/ping HTTP/1.1\r\nHost: x\r\n")
                        .await;
                    while sent < 300 * 1024 {
                        if stream.write_all(filler.as_bytes()).await.is_err() {
                            break; // refused: the handler closed the connection
                        }
                        sent += filler.len();
                    }
                    closed_within(&mut stream, Duration::from_secs(10)).await
                })
            })
            .collect();
        let mut answers = Vec::new();
        for task in tasks {
            answers.push(task.await.unwrap());
        }
        let (_, peak) = rss_kib(pid);
        let grown_mb = peak.saturating_sub(before) as f64 / 1024.0;
        eprintln!("RSS before {before} KiB, peak {peak} KiB: grew {grown_mb:.1} MB");
        assert!(grown_mb < 48.0, "RSS grew by {grown_mb:.1} MB");
        let open = answers.iter().filter(|a| a.is_err()).count();
        assert_eq!(open, 0, "{open} of 400 connections were never closed");
    })
    .await
    .expect("test finished within 60 s");
}

/// 400 connections that start a request and stop halfway through the headers are each closed by
/// the header timeout (2 s here), not before and not much after; and one that finished a request
/// and then sits idle on keep-alive is closed by the same clock.
#[tokio::test(flavor = "multi_thread")]
async fn unfinished_and_idle_connections_are_closed_by_the_header_timeout() {
    tokio::time::timeout(Duration::from_secs(60), async {
        let port = free_port();
        let mut child = spawn_handler(port, &[("HANDLER_HEADER_TIMEOUT", "2")]);
        let _stdout = collect(child.stdout.take().unwrap());
        let _stderr = collect(child.stderr.take().unwrap());
        wait_ready(port).await;

        let tasks: Vec<_> = (0..400)
            .map(|n| {
                tokio::spawn(async move {
                    // Taken before the connect: the handler's clock cannot start earlier, whereas
                    // on a loaded machine this task may resume well after the handler accepted.
                    let started = Instant::now();
                    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
                    let head =
                        format!("POST /api/ping HTTP/1.1\r\nHost: x\r\nX-Device: slow-{n}\r\n");
                    stream.write_all(head.as_bytes()).await.unwrap();
                    closed_within(&mut stream, Duration::from_secs(8))
                        .await
                        .map(|_| started.elapsed())
                })
            })
            .collect();
        for task in tasks {
            let held = task.await.unwrap().expect("closed by the header timeout");
            assert!(
                held >= Duration::from_millis(1800),
                "closed after {held:?}, before the timeout"
            );
        }

        let mut idle = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        let seen = closed_within(&mut idle, Duration::from_secs(8))
            .await
            .expect("idle keep-alive connection closed");
        assert!(
            seen.starts_with(b"HTTP/1.1 200"),
            "{:?}",
            String::from_utf8_lossy(&seen)
        );
        assert!(started.elapsed() >= Duration::from_millis(1800));
    })
    .await
    .expect("test finished within 60 s");
}

/// A body that stops arriving is refused with 408 after the body timeout (1 s here), through the
/// same exit as every other refusal: a one-line reason and a `refused` log line.
#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_body_is_refused_after_the_body_timeout() {
    let port = free_port();
    let mut child = spawn_handler(port, &[("HANDLER_BODY_TIMEOUT", "1")]);
    let stdout = collect(child.stdout.take().unwrap());
    let _stderr = collect(child.stderr.take().unwrap());
    wait_ready(port).await;

    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream
        .write_all(b"POST /api/ping HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"device\":")
        .await
        .unwrap();
    let started = Instant::now();
    let seen = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("answered and closed");
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(
        text.ends_with("the body did not arrive within 1 s"),
        "{text}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));
    let refused = wait_for(Duration::from_secs(5), async || {
        stdout
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .find(|line| line["event"] == "refused")
    })
    .await
    .expect("a refused log line");
    assert_eq!(refused["status"], 408);
}

/// Connections beyond the bound (4 here) are answered 503 at once instead of waiting in the
/// kernel's queue, and serving resumes as soon as the held connections go away.
#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_bound_are_refused_fast() {
    let port = free_port();
    let mut child = spawn_handler(port, &[("HANDLER_MAX_CONNECTIONS", "4")]);
    let _stdout = collect(child.stdout.take().unwrap());
    let _stderr = collect(child.stderr.take().unwrap());
    wait_ready(port).await;
    // Let the readiness probe's connection close first.
    tokio::time::sleep(Duration::from_millis(200)).await;

    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 12];
        stream.read_exact(&mut buf).await.unwrap();
        held.push(stream); // keep-alive: still counted against the bound
    }
    let mut extra = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    let _ = extra.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let seen = closed_within(&mut extra, Duration::from_secs(2))
        .await
        .expect("the fifth connection is answered at once");
    let text = String::from_utf8_lossy(&seen);
    assert!(text.starts_with("HTTP/1.1 503"), "{text:?}");
    assert!(text.contains("connection limit (4)"), "{text:?}");

    drop(held);
    let answer = wait_for(Duration::from_secs(5), async || {
        reqwest::get(format!("http://127.0.0.1:{port}/"))
            .await
            .ok()
            .filter(|a| a.status() == 200)
    })
    .await;
    assert!(answer.is_some(), "serving resumes once connections close");
}

/// `--help` and `--version` print and exit 0 without serving; an unknown argument exits 2 with a
/// message; `--port` picks the port when the host's variables are absent, and they win when set.
#[tokio::test(flavor = "multi_thread")]
async fn command_line_is_parsed() {
    let run = |args: &'static [&'static str]| async move {
        let child = tokio::process::Command::new(support::handler_binary())
            .env_clear()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        tokio::time::timeout(Duration::from_secs(5), child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("handler {args:?} did not exit within 5 s"))
            .unwrap()
    };
    let help = run(&["--help"]).await;
    assert_eq!(help.status.code(), Some(0));
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("Usage: handler"), "{text}");
    assert!(text.contains("--port"), "{text}");

    let version = run(&["--version"]).await;
    assert_eq!(version.status.code(), Some(0));
    assert_eq!(
        String::from_utf8_lossy(&version.stdout).trim(),
        format!("handler {}", env!("CARGO_PKG_VERSION"))
    );

    let unknown = run(&["--frobnicate"]).await;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("--frobnicate"));

    let port = free_port();
    let mut child = tokio::process::Command::new(support::handler_binary())
        .env_clear()
        .args(["--port", &port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_ready(port).await;
    child.kill().await.unwrap();

    let (host_port, flag_port) = (free_port(), free_port());
    let mut child = tokio::process::Command::new(support::handler_binary())
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", host_port.to_string())
        .args(["--port", &flag_port.to_string()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_ready(host_port).await;
    assert!(
        TcpStream::connect(("127.0.0.1", flag_port)).await.is_err(),
        "the host's port wins over --port"
    );
    child.kill().await.unwrap();
}
