//! Connection quality (issue 15, interface A): the real `handler` behind the host stand-in
//! validating the heartbeat's `quality` object in both of the host's modes and recording the
//! `quality_*` dimensions the ingestion stand-in receives; the agent's measurement against
//! loopback listeners (open, closed, black-holed); and the real agent's heartbeats carrying it.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use isp_monitor::agent::config::ProbeTarget;
use isp_monitor::agent::probe::RealNetwork;
use isp_monitor::agent::quality::{Plan, measure};
use serde_json::{Value, json};
use support::host::{FUNCTION_KEY, FunctionsHost};
use support::ingestion::{Behaviour, Ingestion};
use support::{both_modes, props, with_telemetry};

const WAIT: Duration = Duration::from_secs(15);

/// The `quality_*` keys of interface A.
const QUALITY_KEYS: [&str; 6] = [
    "quality_probes",
    "quality_lost",
    "quality_loss_pct",
    "quality_rtt_p50_ms",
    "quality_rtt_p95_ms",
    "quality_dns_ms",
];

async fn post(url: &str, body: &Value) -> (u16, String) {
    let answer = reqwest::Client::new()
        .post(url)
        .header("x-functions-key", FUNCTION_KEY)
        .json(body)
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// The `quality_*` dimensions of a row, as (key, value) pairs; absent keys are left out.
fn quality_dims(row: &Value) -> Vec<(&'static str, String)> {
    QUALITY_KEYS
        .iter()
        .filter_map(|key| {
            props(row)
                .get(*key)
                .map(|value| (*key, value.as_str().unwrap_or("not a string").to_owned()))
        })
        .collect()
}

/// In both host modes: a heartbeat with quality is accepted and its row carries every
/// `quality_*` key (null figures empty); one whose attempts were all lost records 100 % loss and
/// empty times; an older agent's heartbeat has no `quality_*` key at all; each bad quality object
/// is refused with its one-line reason, as the answer, as the row's `error`, with no quality keys.
#[tokio::test(flavor = "multi_thread")]
async fn quality_is_validated_and_recorded_in_both_modes() {
    let refusals = [
        (
            json!({"probes": 3, "lost": 4}),
            "`quality.lost` is 4; it cannot exceed `quality.probes` (3)",
        ),
        (
            json!({"probes": 0, "lost": 0}),
            "`quality.probes` is 0; it must be from 1 to 100",
        ),
        (
            json!({"probes": 3, "lost": 0, "rtt_p50_ms": 9, "rtt_p95_ms": 8}),
            "`quality.rtt_p50_ms` (9) is above `quality.rtt_p95_ms` (8); the median cannot exceed the 95th percentile",
        ),
        (
            json!({"probes": 3, "lost": 1, "rtt_p50_ms": null, "rtt_p95_ms": 8}),
            "`quality.rtt_p50_ms` must be a number when some attempts connected (`lost` is below `probes`)",
        ),
        (
            json!({"probes": 3, "lost": 0, "rtt_p50_ms": 1, "rtt_p95_ms": 2, "dns_ms": "fast"}),
            "`quality.dns_ms` must be a number of milliseconds or null, found a string",
        ),
        (json!("good"), "`quality` must be an object, found a string"),
    ];
    for (mode, config) in both_modes() {
        let ingestion = Ingestion::start(Behaviour::Accept).await;
        let host = FunctionsHost::start(with_telemetry(config, &ingestion))
            .await
            .unwrap();
        let url = host.ping_url();
        let measured = json!({"device": "q-good", "seq": 1, "quality":
            {"probes": 9, "lost": 1, "rtt_p50_ms": 12.5, "rtt_p95_ms": 40.25, "dns_ms": 3}});
        assert_eq!(post(&url, &measured).await, (200, "ok".into()), "{mode}");
        let all_lost = json!({"device": "q-lost", "quality":
            {"probes": 3, "lost": 3, "rtt_p50_ms": null, "rtt_p95_ms": null, "dns_ms": null}});
        assert_eq!(post(&url, &all_lost).await, (200, "ok".into()), "{mode}");
        let older = json!({"device": "q-older", "agent_version": "0.1.0", "seq": 4});
        assert_eq!(post(&url, &older).await, (200, "ok".into()), "{mode}");
        for (quality, reason) in &refusals {
            let body = json!({"device": "q-bad", "quality": quality});
            assert_eq!(
                post(&url, &body).await,
                (400, reason.to_string()),
                "{mode}: {quality}"
            );
        }

        let rows = ingestion.wait_for_requests(3 + refusals.len(), WAIT).await;
        assert_eq!(
            rows.len(),
            3 + refusals.len(),
            "{mode}: one row per request"
        );
        let row = |device: &str| {
            rows.iter()
                .find(|r| props(r)["device"] == device)
                .unwrap_or_else(|| panic!("{mode}: no row for {device}"))
        };
        let expected = |values: [&str; 6]| -> Vec<(&'static str, String)> {
            QUALITY_KEYS
                .iter()
                .zip(values)
                .map(|(key, value)| (*key, value.to_owned()))
                .collect()
        };
        assert_eq!(
            quality_dims(row("q-good")),
            expected(["9", "1", "11.11", "12.5", "40.25", "3"]),
            "{mode}"
        );
        assert_eq!(
            quality_dims(row("q-lost")),
            expected(["3", "3", "100", "", "", ""]),
            "{mode}"
        );
        assert_eq!(
            quality_dims(row("q-older")),
            [],
            "{mode}: no quality, no keys"
        );
        let refused: Vec<&Value> = rows
            .iter()
            .filter(|r| r["data"]["baseData"]["success"] == false)
            .collect();
        let mut errors: Vec<&str> = refused
            .iter()
            .map(|r| {
                assert_eq!(r["data"]["baseData"]["responseCode"], "400");
                assert_eq!(
                    quality_dims(r),
                    [],
                    "{mode}: a refused row has no quality keys"
                );
                props(r)["error"].as_str().unwrap()
            })
            .collect();
        errors.sort();
        let mut reasons: Vec<&str> = refusals.iter().map(|(_, reason)| *reason).collect();
        reasons.sort();
        assert_eq!(errors, reasons, "{mode}");
    }
}

// ---------------------------------------------------------------------------------------------
// The agent's measurement against loopback listeners (never a public target).

/// A loopback port that accepts connections and counts them: a live probe target.
async fn open_target() -> (ProbeTarget, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let count: Arc<AtomicUsize> = Default::default();
    let counter = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (loopback(port), count)
}

fn loopback(port: u16) -> ProbeTarget {
    ProbeTarget {
        host: "127.0.0.1".into(),
        port,
    }
}

/// A loopback port that never answers a SYN: a listener with a backlog of 0 that never accepts,
/// its queue filled first, so Linux drops every further SYN (the way a firewall drops packets).
/// Returns the target and what keeps it black-holed.
async fn black_hole() -> (
    ProbeTarget,
    Vec<tokio::net::TcpStream>,
    tokio::net::TcpListener,
) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(0).unwrap();
    let address = listener.local_addr().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        let connect = tokio::net::TcpStream::connect(address);
        match tokio::time::timeout(Duration::from_millis(300), connect).await {
            Ok(Ok(stream)) => fillers.push(stream),
            Ok(Err(err)) => panic!("filling the backlog: {err}"),
            Err(_) => return (loopback(address.port()), fillers, listener),
        }
    }
    panic!("the listen queue never filled: SYNs are not dropped here");
}

/// The real measurement: an open port gives round-trip times, a closed port counts as loss at
/// once, a black-holed one times out and the whole measurement still ends within its budget;
/// `localhost` resolves (from the hosts file, no DNS server asked).
#[tokio::test(flavor = "multi_thread")]
async fn real_measurement_on_loopback() {
    let (open, accepted) = open_target().await;
    let closed = loopback(support::free_port());
    let plan = |targets: Vec<ProbeTarget>, budget_ms| Plan {
        targets,
        attempts_per_target: 3,
        timeout: Duration::from_millis(400),
        budget: Duration::from_millis(budget_ms),
        resolve: Some(("localhost".into(), 80)),
    };

    let quality = measure(RealNetwork, plan(vec![open.clone(), closed.clone()], 5000)).await;
    assert_eq!((quality.probes, quality.lost), (6, 3), "{quality:?}");
    let (p50, p95) = (quality.rtt_p50_ms.unwrap(), quality.rtt_p95_ms.unwrap());
    assert!(0.0 < p50 && p50 <= p95 && p95 < 400.0, "{quality:?}");
    assert!(quality.dns_ms.is_some_and(|ms| ms < 400.0), "{quality:?}");
    assert!(
        support::wait_for(Duration::from_secs(2), async || {
            (accepted.load(Ordering::SeqCst) == 3).then_some(())
        })
        .await
        .is_some(),
        "three connections reached the open port"
    );

    let (hole, _fillers, _listener) = black_hole().await;
    let started = Instant::now();
    let quality = measure(RealNetwork, plan(vec![open, hole], 900)).await;
    let took = started.elapsed();
    // The 400 ms timeout is cut to 300 ms so that three attempts fit in the 900 ms budget.
    assert_eq!((quality.probes, quality.lost), (6, 3), "{quality:?}");
    assert!(
        // The upper bound leaves room for a loaded machine's scheduling; a measurement that
        // ignored the budget would take 3 x 400 ms per target, 1.2 s at the least.
        took >= Duration::from_millis(900) && took < Duration::from_millis(1150),
        "took {took:?}: the budget, plus scheduling"
    );
    assert!(quality.rtt_p95_ms.is_some());

    let quality = measure(RealNetwork, plan(vec![closed], 1000)).await;
    assert_eq!(quality.lost, quality.probes);
    assert_eq!((quality.rtt_p50_ms, quality.rtt_p95_ms), (None, None));
}

/// The real agent against the real handler: with quality on, the heartbeats after the first carry
/// the figures (two attempts to an open and to a closed port: 4 probes, 2 lost, times measured,
/// no DNS time for an endpoint given by IP) and the handler records them; with `--quality off`
/// (the environment switch) no row carries a quality key and no probe target hears from the agent.
#[tokio::test(flavor = "multi_thread")]
async fn the_agent_sends_quality_the_handler_records() {
    let ingestion = Ingestion::start(Behaviour::Accept).await;
    let [(_, forwarding), _] = both_modes();
    let host = FunctionsHost::start(with_telemetry(forwarding, &ingestion))
        .await
        .unwrap();
    let (open, accepted) = open_target().await;
    let closed = loopback(support::free_port());
    let targets = format!("{open},{closed}");
    let (quiet_open, quiet_accepted) = open_target().await;
    let quiet_targets = format!("{quiet_open},{closed}");
    let dir = support::TempDir::new("quality-agent");
    let quiet_dir = support::TempDir::new("quality-agent-off");
    let agent = |dir: &std::path::Path, device: &str, targets: &str, quality: &str| {
        tokio::process::Command::new(support::agent_binary())
            .env_clear()
            .env("HOME", dir)
            .env("HEARTBEAT_STATE_DIR", dir)
            .env("HEARTBEAT_KEY", FUNCTION_KEY)
            .env("HEARTBEAT_QUALITY", quality)
            .env("HEARTBEAT_QUALITY_COUNT", "2")
            .env("HEARTBEAT_QUALITY_TIMEOUT", "1")
            .args(["--daemon", "--url", &host.ping_url(), "--device", device])
            .args(["--interval", "1", "--probe-targets", targets])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap()
    };
    let mut measuring = agent(dir.path(), "q-agent", &targets, "on");
    let mut quiet = agent(quiet_dir.path(), "q-quiet", &quiet_targets, "off");

    let rows = support::wait_for(WAIT, async || {
        let rows = ingestion.requests();
        let with_quality = rows
            .iter()
            .filter(|r| props(r)["device"] == "q-agent" && props(r).get("quality_probes").is_some())
            .count();
        let quiet = rows
            .iter()
            .filter(|r| props(r)["device"] == "q-quiet")
            .count();
        (with_quality >= 2 && quiet >= 3).then_some(rows)
    })
    .await
    .expect("two heartbeats with quality and three without within 15 s");
    for child in [&mut measuring, &mut quiet] {
        let pid = child.id().unwrap() as i32;
        // SAFETY: signalling a child this test started and still owns.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
        assert!(status.expect("stops within 5 s").unwrap().success());
    }

    let agent_rows: Vec<&Value> = rows
        .iter()
        .filter(|r| props(r)["device"] == "q-agent")
        .collect();
    assert_eq!(
        quality_dims(agent_rows[0]),
        [],
        "the first heartbeat has nothing measured yet"
    );
    for row in agent_rows
        .iter()
        .filter(|r| props(r).get("quality_probes").is_some())
    {
        let p = props(row);
        assert_eq!(p["quality_probes"], "4", "{p}");
        assert_eq!(p["quality_lost"], "2", "{p}");
        assert_eq!(p["quality_loss_pct"], "50", "{p}");
        let p50: f64 = p["quality_rtt_p50_ms"].as_str().unwrap().parse().unwrap();
        let p95: f64 = p["quality_rtt_p95_ms"].as_str().unwrap().parse().unwrap();
        assert!(p50 <= p95 && p95 < 1000.0, "{p}");
        assert_eq!(
            p["quality_dns_ms"], "",
            "an IP endpoint has no name to resolve"
        );
    }
    assert!(accepted.load(Ordering::SeqCst) >= 4);
    for row in rows.iter().filter(|r| props(r)["device"] == "q-quiet") {
        assert_eq!(quality_dims(row), [], "quality off");
    }
    assert_eq!(
        quiet_accepted.load(Ordering::SeqCst),
        0,
        "quality off: no probes while up"
    );

    // Each interval's quality also went into the local history's daily summary (h-report's
    // `history.json`, read by `heartbeat-agent report`); none with quality off.
    let history = |dir: &std::path::Path| -> Value {
        serde_json::from_slice(&std::fs::read(dir.join("history.json")).unwrap()).unwrap()
    };
    let days = history(dir.path())["quality_days"].clone();
    let samples = days[0]["samples"].as_u64().unwrap();
    assert!(samples >= 2, "{days}");
    assert_eq!(days[0]["probes"].as_u64(), Some(4 * samples), "{days}");
    assert_eq!(days[0]["lost"].as_u64(), Some(2 * samples), "{days}");
    assert_eq!(history(quiet_dir.path())["quality_days"], json!([]));
}
