//! Request telemetry: the real exporter inside the real `handler`, started by the host stand-in,
//! uploading to the HTTPS ingestion stand-in. These assert the fields that queries use
//! (docs/telemetry.md) and the exporter's behaviour when ingestion misbehaves.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::host::{FUNCTION_KEY, FunctionsHost, HostConfig};
use support::ingestion::{Behaviour, Ingestion, connection_string_for};
use support::{both_modes, props, with_telemetry};

const WAIT: Duration = Duration::from_secs(15);

async fn send(url: &str, body: Value) -> u16 {
    reqwest::Client::new()
        .post(url)
        .header("x-functions-key", FUNCTION_KEY)
        .header("x-forwarded-for", "6.6.6.6")
        .json(&body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Accepted and refused heartbeats each become one `requests` row named Ping with the fields the
/// queries read, in both host modes; the function key appears nowhere.
#[tokio::test(flavor = "multi_thread")]
async fn every_request_becomes_one_row_with_the_query_fields() {
    for (mode, config) in both_modes() {
        let ingestion = Ingestion::start(Behaviour::Accept).await;
        let mut host = FunctionsHost::start(with_telemetry(config, &ingestion))
            .await
            .unwrap();
        let accepted = json!({"device": "den", "note": "n1", "agent_version": "0.1.0", "seq": 7, "rtt_ms": 42});
        // The key also travels in the query, as in a URL copied from the portal.
        let keyed = format!("{}?code={FUNCTION_KEY}", host.ping_url());
        assert_eq!(send(&keyed, accepted).await, 200);
        assert_eq!(send(&host.ping_url(), json!({"device": 5})).await, 400);
        let rows = ingestion.wait_for_requests(2, WAIT).await;
        assert_eq!(rows.len(), 2, "{mode}: one row per request");

        let ok = rows
            .iter()
            .find(|r| r["data"]["baseData"]["success"] == true)
            .expect("accepted row");
        let data = &ok["data"]["baseData"];
        assert_eq!(ok["iKey"], support::ingestion::INSTRUMENTATION_KEY);
        assert_eq!(data["name"], "Ping", "{mode}");
        assert_eq!(data["responseCode"], "200");
        assert_eq!(data["source"], "127.0.0.1");
        let url = data["url"].as_str().unwrap();
        assert!(
            url.to_ascii_lowercase().ends_with("/api/ping"),
            "{mode}: {url}"
        );
        assert!(
            data["duration"].as_str().unwrap().starts_with("0.00:00:"),
            "{data}"
        );
        assert_eq!(ok["tags"]["ai.location.ip"], "127.0.0.1");
        assert_eq!(ok["tags"]["ai.cloud.role"], "ispmon-func");
        assert_eq!(ok["tags"]["ai.cloud.roleInstance"], "instance-7");
        let p = props(ok);
        assert_eq!(p["emitter"], "isp-monitor-handler");
        assert_eq!(p["device"], "den");
        assert_eq!(p["note"], "n1");
        assert_eq!(p["agent_version"], "0.1.0");
        assert_eq!(p["seq"], "7");
        assert_eq!(p["rtt_ms"], "42");
        assert_eq!(p["client_ip"], "127.0.0.1");
        assert_eq!(p["host_mode"], mode);
        assert!(
            p["invocation_id"]
                .as_str()
                .unwrap()
                .starts_with("00000000-0000-4000-8000-"),
            "{p}"
        );

        let refused = rows
            .iter()
            .find(|r| r["data"]["baseData"]["success"] == false)
            .expect("refused row");
        assert_eq!(refused["data"]["baseData"]["name"], "Ping");
        assert_eq!(refused["data"]["baseData"]["responseCode"], "400");
        assert_eq!(props(refused)["emitter"], "isp-monitor-handler");
        assert_eq!(
            props(refused)["error"],
            "`device` must be a string, found a number"
        );

        host.terminate_handler().await;
        let everything = format!(
            "{:?}{:?}{:?}",
            ingestion.envelopes(),
            host.stdout_lines(),
            host.stderr_lines()
        );
        assert!(
            !everything.contains(FUNCTION_KEY),
            "{mode}: the function key leaked"
        );
        assert!(
            !everything.contains("6.6.6.6"),
            "{mode}: a forged address was recorded"
        );
    }
}

/// A reported outage becomes one `customEvents` row named Outage with the keys the queries read.
#[tokio::test(flavor = "multi_thread")]
async fn reported_outages_become_outage_events() {
    for (mode, config) in both_modes() {
        let ingestion = Ingestion::start(Behaviour::Accept).await;
        let host = FunctionsHost::start(with_telemetry(config, &ingestion))
            .await
            .unwrap();
        let end = chrono::Utc::now() - chrono::Duration::seconds(30);
        let start = end - chrono::Duration::seconds(450);
        let body = json!({"device": "den", "outages": [
            {"id": "abc-1", "start": start.to_rfc3339(), "end": end.to_rfc3339(), "cause": "isp", "detail": "0/2 targets answered"},
            {"id": "abc-2", "start": start.to_rfc3339(), "end": start.to_rfc3339(), "cause": "agent_offline"},
        ]});
        assert_eq!(send(&host.ping_url(), body).await, 200);
        let events = support::wait_for(WAIT, async || {
            let events = ingestion.events();
            (events.len() >= 2).then_some(events)
        })
        .await
        .expect("two Outage events");
        let first = events
            .iter()
            .find(|e| props(e)["outage_id"] == "abc-1")
            .unwrap();
        assert_eq!(first["data"]["baseData"]["name"], "Outage", "{mode}");
        let p = props(first);
        assert_eq!(p["emitter"], "isp-monitor-handler");
        assert_eq!(p["device"], "den");
        assert_eq!(p["cause"], "isp");
        assert_eq!(p["duration_s"], "450");
        assert_eq!(
            p["start"],
            start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        assert_eq!(
            p["end"],
            end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        assert_eq!(p["detail"], "0/2 targets answered");
        assert!(p.get("ai.customEvent.name").is_none());
    }
}

/// However ingestion fails (500, 429, partial, hanging, not listening), heartbeats are answered at
/// their normal latency; retryable failures are retried until the data arrives.
#[tokio::test(flavor = "multi_thread")]
async fn failing_ingestion_never_delays_heartbeats() {
    for behaviour in [
        Behaviour::Status(500),
        Behaviour::Status(429),
        Behaviour::PartialOnce,
        Behaviour::Hang,
        Behaviour::Accept,
    ] {
        let ingestion = Ingestion::start(behaviour).await;
        let mut config = with_telemetry(HostConfig::from_repo(), &ingestion);
        let not_listening = behaviour == Behaviour::Accept;
        if not_listening {
            // Reuse the Accept slot for "nothing listening at all".
            config = config.with_env(
                "APPLICATIONINSIGHTS_CONNECTION_STRING",
                &connection_string_for(support::free_port()),
            );
        }
        let host = FunctionsHost::start(config).await.unwrap();
        let client = reqwest::Client::new();
        let direct = format!("http://127.0.0.1:{}/api/ping", host.handler_port());
        let mut slowest = Duration::ZERO;
        for n in 0..40 {
            let started = Instant::now();
            let answer = client
                .post(&direct)
                .json(&json!({"device": "d", "seq": n}))
                .send()
                .await
                .unwrap();
            assert_eq!(answer.status(), 200);
            slowest = slowest.max(started.elapsed());
            if n % 10 == 0 {
                tokio::time::sleep(Duration::from_millis(600)).await; // let batches go out and fail
            }
        }
        // A functional bound, not a benchmark: an export on the request path would take seconds.
        assert!(
            slowest < Duration::from_millis(500),
            "{behaviour:?}: slowest heartbeat took {slowest:?}"
        );
        let label = if not_listening {
            "not listening".to_owned()
        } else {
            format!("{behaviour:?}")
        };
        assert!(
            not_listening || ingestion.uploads() > 0,
            "{label}: the exporter never tried"
        );

        match behaviour {
            Behaviour::PartialOnce => {
                // The item refused in the 206 is sent again: all 40 arrive.
                ingestion.wait_for_requests(40, WAIT).await;
            }
            Behaviour::Status(_) => {
                ingestion.set_behaviour(Behaviour::Accept);
                let rows = ingestion.wait_for_requests(1, WAIT).await;
                assert!(!rows.is_empty(), "{label}: retried after recovery");
            }
            _ => {}
        }
    }
}

/// With ingestion hanging, thousands of heartbeats keep the handler's memory bounded (the export
/// queue drops beyond its limit instead of growing).
#[tokio::test(flavor = "multi_thread")]
async fn memory_stays_bounded_when_ingestion_hangs() {
    let ingestion = Ingestion::start(Behaviour::Hang).await;
    let host = FunctionsHost::start(with_telemetry(HostConfig::from_repo(), &ingestion))
        .await
        .unwrap();
    let direct = format!("http://127.0.0.1:{}/api/ping", host.handler_port());
    let client = reqwest::Client::new();
    let note = "x".repeat(400);
    let rss = |pid: u32| -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    };
    let pid = host.handler_pid().unwrap();
    let mut after_first_batch = 0;
    for round in 0..4 {
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let (client, url, note) = (client.clone(), direct.clone(), note.clone());
                tokio::spawn(async move {
                    for _ in 0..250 {
                        let answer = client
                            .post(&url)
                            .json(&json!({"device": "d", "note": note}))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(answer.status(), 200);
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        if round == 0 {
            after_first_batch = rss(pid);
        }
    }
    let after_all = rss(pid);
    eprintln!(
        "handler RSS with ingestion hanging: {after_first_batch} KiB after 4,000 heartbeats, {after_all} KiB after 16,000"
    );
    // 4,000 spans per round: without the queue bound the last three rounds would add ~12,000 spans
    // of >1 KiB each. Allow noise, not growth of that order.
    assert!(
        after_all < after_first_batch + 8 * 1024,
        "RSS grew from {after_first_batch} KiB to {after_all} KiB"
    );
}

/// SIGTERM with spans still queued: they reach ingestion before the process exits.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_flushes_pending_telemetry() {
    let ingestion = Ingestion::start(Behaviour::Accept).await;
    let mut host = FunctionsHost::start(with_telemetry(HostConfig::from_repo(), &ingestion))
        .await
        .unwrap();
    for n in 0..5 {
        assert_eq!(
            send(&host.ping_url(), json!({"device": "flush", "seq": n})).await,
            200
        );
    }
    let started = Instant::now();
    let status = host.terminate_handler().await;
    assert!(status.success());
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "flush took {:?}",
        started.elapsed()
    );
    assert_eq!(
        ingestion.requests().len(),
        5,
        "all five rows arrived before exit"
    );
}

/// Names and notes full of multi-byte characters at their limits export fine, and the export
/// thread survives them (a later heartbeat still arrives).
#[tokio::test(flavor = "multi_thread")]
async fn multi_byte_values_at_the_limits_export() {
    let ingestion = Ingestion::start(Behaviour::Accept).await;
    let host = FunctionsHost::start(with_telemetry(HostConfig::from_repo(), &ingestion))
        .await
        .unwrap();
    let device = "€".repeat(100);
    let note = "😀".repeat(500);
    assert_eq!(
        send(&host.ping_url(), json!({"device": device, "note": note})).await,
        200
    );
    assert_eq!(
        send(&host.ping_url(), json!({"device": "after"})).await,
        200
    );
    let rows = ingestion.wait_for_requests(2, WAIT).await;
    let wide = rows
        .iter()
        .find(|r| props(r)["device"] == device.as_str())
        .expect("row with the wide device");
    let recorded = props(wide)["note"].as_str().unwrap();
    assert!(
        note.starts_with(recorded) && !recorded.is_empty(),
        "cut at a character boundary"
    );
    assert!(rows.iter().any(|r| props(r)["device"] == "after"));
}

/// No connection string: one clear line, serving unaffected. A malformed one: an error line
/// naming the problem, serving unaffected, and the string is not echoed.
#[tokio::test(flavor = "multi_thread")]
async fn missing_or_malformed_connection_string_leaves_serving_intact() {
    let host = FunctionsHost::start(HostConfig::from_repo()).await.unwrap();
    assert_eq!(send(&host.ping_url(), json!({})).await, 200);
    assert!(
        host.settled_stdout_lines()
            .await
            .iter()
            .any(|l| l.contains("telemetry off: APPLICATIONINSIGHTS_CONNECTION_STRING is not set"))
    );

    let config = HostConfig::from_repo().with_env(
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        "IngestionEndpoint=https://127.0.0.1:1/;Secret=hunter2",
    );
    let host = FunctionsHost::start(config).await.unwrap();
    assert_eq!(send(&host.ping_url(), json!({})).await, 200);
    let stderr = host.stderr_lines().join("\n");
    assert!(stderr.contains("telemetry off: APPLICATIONINSIGHTS_CONNECTION_STRING is malformed: InstrumentationKey is missing"), "{stderr}");
    assert!(!stderr.contains("hunter2"));
}

/// Without `SSL_CERT_FILE` the test CA is not trusted and nothing is accepted: the certificate
/// check is real, and `SSL_CERT_FILE` is what made the other tests work.
#[tokio::test(flavor = "multi_thread")]
async fn untrusted_ingestion_certificate_is_refused() {
    let ingestion = Ingestion::start(Behaviour::Accept).await;
    let config = HostConfig::from_repo().with_env(
        "APPLICATIONINSIGHTS_CONNECTION_STRING",
        &ingestion.connection_string(),
    );
    let mut host = FunctionsHost::start(config).await.unwrap();
    assert_eq!(send(&host.ping_url(), json!({})).await, 200);
    host.terminate_handler().await;
    assert!(ingestion.envelopes().is_empty());
}

/// POSTs `body` straight to the handler's invocation path, as the host would, and returns the
/// HTTP status with the parsed answer (an `Outputs` envelope or plain text).
async fn invoke_directly(host: &FunctionsHost, content_type: &str, body: Vec<u8>) -> (u16, String) {
    let answer = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/Ping", host.handler_port()))
        .header("content-type", content_type)
        .header(
            "x-azure-functions-invocationid",
            "00000000-0000-4000-8000-direct000001",
        )
        .body(body)
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// Every refusal of an invocation envelope (over its own limit, not an envelope, a base64 body
/// that does not decode) leaves through the same exit as a bad heartbeat: the right status and
/// limit in a one-line reason, one `refused` log line and one telemetry row each.
#[tokio::test(flavor = "multi_thread")]
async fn envelope_refusals_are_logged_and_recorded() {
    let ingestion = Ingestion::start(Behaviour::Accept).await;
    let [_, (_, invocation)] = both_modes();
    let host = FunctionsHost::start(with_telemetry(invocation, &ingestion))
        .await
        .unwrap();
    const ENVELOPE_LIMIT: usize = 4 * 64 * 1024 + 64 * 1024;

    let huge = vec![b' '; ENVELOPE_LIMIT + 1];
    let (status, text) = invoke_directly(&host, "application/json", huge).await;
    assert_eq!(
        status, 200,
        "the host needs a 2xx envelope to relay the 413"
    );
    let res: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(res["Outputs"]["res"]["statusCode"], 413);
    assert_eq!(
        res["Outputs"]["res"]["body"],
        format!(
            "invocation envelope is {} bytes; the limit is {ENVELOPE_LIMIT} bytes",
            ENVELOPE_LIMIT + 1
        )
    );

    let (status, text) = invoke_directly(&host, "application/json", b"[]".to_vec()).await;
    assert_eq!(
        (status, text.as_str()),
        (
            400,
            "invocation body has no `Data`; is this the Functions host?"
        )
    );

    let envelope = json!({"Data": {"req": {"Url": "https://x/api/ping", "Method": "POST",
        "Headers": {"Content-Type": ["application/octet-stream"]}, "Body": "not base64!"}}, "Metadata": {}});
    let (status, text) =
        invoke_directly(&host, "application/json", envelope.to_string().into_bytes()).await;
    assert_eq!(status, 200);
    let res: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(res["Outputs"]["res"]["statusCode"], 400);
    assert_eq!(
        res["Outputs"]["res"]["body"],
        "the binary body is not valid base64"
    );

    let rows = ingestion.wait_for_requests(3, WAIT).await;
    let mut recorded: Vec<(String, String)> = rows
        .iter()
        .map(|r| {
            (
                r["data"]["baseData"]["responseCode"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                props(r)["error"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    recorded.sort();
    assert_eq!(
        recorded,
        [
            (
                "400".to_owned(),
                "invocation body has no `Data`; is this the Functions host?".to_owned()
            ),
            (
                "400".to_owned(),
                "the binary body is not valid base64".to_owned()
            ),
            (
                "413".to_owned(),
                format!(
                    "invocation envelope is {} bytes; the limit is {ENVELOPE_LIMIT} bytes",
                    ENVELOPE_LIMIT + 1
                )
            ),
        ]
    );
    let refused_lines = support::wait_for(WAIT, async || {
        let lines: Vec<Value> = host
            .stdout_lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["event"] == "refused")
            .collect();
        (lines.len() >= 3).then_some(lines)
    })
    .await
    .expect("three refused log lines");
    assert_eq!(refused_lines.len(), 3);
}

/// Text a client chooses (an `X-Device` with a newline, NUL and an escape sequence) is recorded
/// sanitized, and the recorded URL is the app's own site and path, whatever `Host` and
/// `X-Forwarded-Proto` the client sent.
#[tokio::test(flavor = "multi_thread")]
async fn client_chosen_text_is_sanitized_and_the_url_is_the_sites() {
    let ingestion = Ingestion::start(Behaviour::Accept).await;
    let [_, (_, invocation)] = both_modes();
    let host = FunctionsHost::start(with_telemetry(invocation, &ingestion))
        .await
        .unwrap();
    let envelope = json!({"Data": {"req": {"Url": "https://attacker.example/api/ping", "Method": "POST",
        "Headers": {"X-Device": ["evil\u{1b}[31m\nname\u{0}"], "Host": ["attacker.example"]},
        "Body": "{\"device\": 5}"}}, "Metadata": {}});
    let (status, _) =
        invoke_directly(&host, "application/json", envelope.to_string().into_bytes()).await;
    assert_eq!(status, 200);

    // Forwarding mode, straight at the handler with a forged Host and scheme.
    let answer = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{}/api/ping", host.handler_port()))
        .header("host", "attacker.example")
        .header("x-forwarded-proto", "gopher")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);

    let rows = ingestion.wait_for_requests(2, WAIT).await;
    let refused = rows
        .iter()
        .find(|r| r["data"]["baseData"]["success"] == false)
        .expect("refused row");
    assert_eq!(
        props(refused)["device"],
        "evil\u{FFFD}[31m\u{FFFD}name\u{FFFD}"
    );
    for row in &rows {
        assert_eq!(
            row["data"]["baseData"]["url"], "https://ispmon-func.azurewebsites.net/api/ping",
            "{row}"
        );
    }
}
