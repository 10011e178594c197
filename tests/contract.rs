//! The custom-handler contract: the real `handler` binary, launched by the Functions host stand-in
//! from the committed `host.json` and `Ping/function.json`, reached over loopback HTTP in both of
//! the host's modes.

mod support;

use std::io::{Read, Write};
use std::time::Duration;

use serde_json::{Value, json};
use support::both_modes;
use support::host::{FUNCTION_KEY, FunctionsHost, HostConfig};

async fn post(host: &FunctionsHost, body: impl Into<reqwest::Body>) -> (u16, String) {
    let answer = reqwest::Client::new()
        .post(host.ping_url())
        .header("x-functions-key", FUNCTION_KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

/// A heartbeat through the committed host configuration is accepted and logged as one JSON line
/// with device, the front end's client address, note and invocation id.
#[tokio::test(flavor = "multi_thread")]
async fn committed_configuration_accepts_a_heartbeat_in_both_modes() {
    for (mode, config) in both_modes() {
        let host = FunctionsHost::start(config).await.unwrap();
        let answer = reqwest::Client::new()
            .post(host.ping_url())
            .header("x-functions-key", FUNCTION_KEY)
            .json(&json!({"device": "den", "note": "hello"}))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{mode}");
        assert_eq!(
            answer.headers()["content-type"],
            "text/plain; charset=utf-8",
            "{mode}"
        );
        assert_eq!(answer.text().await.unwrap(), "ok", "{mode}");

        let logs = host.heartbeat_logs().await;
        assert_eq!(logs.len(), 1, "{mode}: {logs:?}");
        let line = &logs[0];
        assert_eq!(line["device"], "den");
        assert_eq!(line["note"], "hello");
        assert_eq!(
            line["ip"], "127.0.0.1",
            "{mode}: the front end's appended address"
        );
        assert!(
            line["invocation_id"]
                .as_str()
                .unwrap()
                .starts_with("00000000-0000-4000-8000-"),
            "{mode}: {line}"
        );
        assert_eq!(line["host_mode"], mode);
        assert!(line["time"].as_str().unwrap().ends_with('Z'));
    }
}

/// The exact request the original Python agent sends, and a bare `curl` GET with the key in the
/// query, both succeed; the path is matched case-insensitively as the platform routes it.
#[tokio::test(flavor = "multi_thread")]
async fn original_agent_and_bare_curl_succeed() {
    for (mode, config) in both_modes() {
        let host = FunctionsHost::start(config).await.unwrap();
        let answer = reqwest::Client::new()
            .post(host.keyed_ping_url())
            .header("Content-Type", "application/json")
            .header("User-Agent", "ISP-Monitor-Heartbeat-Agent/1.0")
            .body(r#"{"device": "dl-home", "note": "single ping"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{mode}");

        let url = host.keyed_ping_url();
        let curl = tokio::task::spawn_blocking(move || {
            std::process::Command::new("curl")
                .args(["-s", "-S", "-w", " %{http_code}", &url])
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&curl.stdout),
            "ok 200",
            "{mode}: {curl:?}"
        );

        let shouting = format!("{}/API/PING?code={FUNCTION_KEY}", host.base_url());
        assert_eq!(
            reqwest::get(shouting).await.unwrap().status(),
            200,
            "{mode}"
        );

        let devices: Vec<_> = host
            .heartbeat_logs()
            .await
            .iter()
            .map(|l| l["device"].clone())
            .collect();
        assert_eq!(
            devices,
            [json!("dl-home"), json!("unknown"), json!("unknown")],
            "{mode}"
        );
    }
}

/// Every kind of bad input is refused with the right status and a one-line reason, in both modes,
/// and nothing is recorded as a heartbeat.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_with_a_reason_in_both_modes() {
    let cases = support::bad_input_cases();
    for (mode, config) in both_modes() {
        let host = FunctionsHost::start(config).await.unwrap();
        for (body, status, reason) in &cases {
            let (got_status, got_reason) = post(&host, body.clone()).await;
            assert_eq!(got_status, *status, "{mode}: {body:.60}");
            assert!(
                got_reason.starts_with(reason),
                "{mode}: {got_reason:?} should start with {reason:?}"
            );
            assert!(
                !got_reason.contains('\n'),
                "{mode}: one line: {got_reason:?}"
            );
        }
        assert!(
            host.heartbeat_logs().await.is_empty(),
            "{mode}: refused heartbeats were recorded"
        );
        // The handler is still healthy after all of that.
        assert_eq!(post(&host, "{}").await, (200, "ok".to_owned()), "{mode}");
    }
}

/// Methods and paths the host would never route are still answered properly when they reach the
/// handler directly: 405 with `Allow`, 404 with a hint, in both modes.
#[tokio::test(flavor = "multi_thread")]
async fn other_methods_and_paths_reach_clear_answers() {
    let host = FunctionsHost::start(HostConfig::from_repo()).await.unwrap();
    let direct = format!("http://127.0.0.1:{}", host.handler_port());
    let client = reqwest::Client::new();

    let put = client
        .put(format!("{direct}/api/ping"))
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 405);
    assert_eq!(put.headers()["allow"], "GET, POST");
    assert_eq!(
        put.text().await.unwrap(),
        "method PUT is not allowed; use GET or POST"
    );

    let missing = client
        .get(format!("{direct}/api/pong"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(
        missing.text().await.unwrap(),
        "no such path: /api/pong; heartbeats go to /api/ping"
    );

    // JSON invocation mode carries the same 405 inside Outputs.res, with a 200 envelope.
    let envelope = json!({"Data": {"req": {"Url": "https://x/api/ping", "Method": "DELETE", "Headers": {}}}, "Metadata": {}});
    let answer = client
        .post(format!("{direct}/Ping"))
        .json(&envelope)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    assert!(
        answer.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let payload: Value = answer.json().await.unwrap();
    assert_eq!(payload["Outputs"]["res"]["statusCode"], 405);
    assert_eq!(payload["Outputs"]["res"]["headers"]["Allow"], "GET, POST");
    assert_eq!(payload["ReturnValue"], Value::Null);

    // Something that is not a host envelope at all is a 400, not a 500.
    let junk = client
        .post(format!("{direct}/ping"))
        .body("[]")
        .send()
        .await
        .unwrap();
    assert_eq!(junk.status(), 400);
    assert_eq!(
        junk.text().await.unwrap(),
        "invocation body has no `Data`; is this the Functions host?"
    );
}

/// A client cannot choose its recorded address by sending its own X-Forwarded-For: the entry the
/// front end appends wins. The device may come from the X-Device header.
#[tokio::test(flavor = "multi_thread")]
async fn forged_forwarded_for_is_ignored() {
    for (mode, config) in both_modes() {
        let host = FunctionsHost::start(config).await.unwrap();
        let answer = reqwest::Client::new()
            .post(host.keyed_ping_url())
            .header("X-Forwarded-For", "6.6.6.6")
            .header("X-Device", "garage")
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
        let logs = host.heartbeat_logs().await;
        assert_eq!(logs[0]["ip"], "127.0.0.1", "{mode}");
        assert_eq!(logs[0]["device"], "garage", "{mode}");
    }
}

/// A wrong executable name, route, method or authorization in the Functions files breaks things:
/// the stand-in really reads them.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_functions_files_fail() {
    let mut wrong_exe = HostConfig::from_repo();
    wrong_exe.host_json["customHandler"]["description"]["defaultExecutablePath"] = json!("handlr");
    assert!(FunctionsHost::start(wrong_exe).await.is_err());

    let mut wrong_route = HostConfig::from_repo();
    wrong_route.function_json["bindings"][0]["route"] = json!("heartbeat");
    let host = FunctionsHost::start(wrong_route).await.unwrap();
    assert_eq!(post(&host, "{}").await.0, 404);

    let mut post_only = HostConfig::from_repo();
    post_only.function_json["bindings"][0]["methods"] = json!(["post"]);
    let host = FunctionsHost::start(post_only).await.unwrap();
    assert_eq!(
        reqwest::get(host.keyed_ping_url()).await.unwrap().status(),
        404
    );

    let host = FunctionsHost::start(HostConfig::from_repo()).await.unwrap();
    let keyless = reqwest::Client::new()
        .post(host.ping_url())
        .send()
        .await
        .unwrap();
    assert_eq!(keyless.status(), 401, "authLevel function requires the key");
}

/// Many clients at once all get their answer and every heartbeat is logged once.
#[tokio::test(flavor = "multi_thread")]
async fn many_concurrent_clients() {
    let host = FunctionsHost::start(HostConfig::from_repo()).await.unwrap();
    let client = reqwest::Client::new();
    let tasks: Vec<_> = (0..64)
        .map(|client_no| {
            let (client, url) = (client.clone(), host.keyed_ping_url());
            tokio::spawn(async move {
                for beat in 0..10 {
                    let body =
                        json!({"device": format!("dev-{client_no}"), "note": format!("{beat}")});
                    let answer = client.post(&url).json(&body).send().await.unwrap();
                    assert_eq!(answer.status(), 200);
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let logs = support::wait_for(Duration::from_secs(5), async || {
        let logs = host.heartbeat_logs().await;
        (logs.len() >= 640).then_some(logs)
    })
    .await
    .expect("640 log lines");
    assert_eq!(logs.len(), 640);
}

/// SIGTERM lets an in-flight heartbeat finish, then the handler exits 0.
#[tokio::test(flavor = "multi_thread")]
async fn sigterm_finishes_in_flight_requests_then_exits_cleanly() {
    let mut host = FunctionsHost::start(HostConfig::from_repo()).await.unwrap();
    let port = host.handler_port();
    let body = br#"{"device": "slow-sender"}"#;
    let (half, rest) = body.split_at(10);
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "POST /api/ping HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(half).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let pid = host.handler_pid().unwrap();
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    tokio::time::sleep(Duration::from_millis(200)).await;
    stream.write_all(rest).unwrap();
    let mut answer = String::new();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = stream.read_to_string(&mut answer);
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.ends_with("ok"), "{answer}");

    let status = host.terminate_handler().await;
    assert!(status.success(), "{status}");
}

/// Fatal configuration and a busy port end the process non-zero with a message, never exit 0.
#[test]
fn fatal_errors_exit_non_zero_with_a_message() {
    let bad_port = std::process::Command::new(support::handler_binary())
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", "seventy")
        .output()
        .unwrap();
    assert_eq!(bad_port.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&bad_port.stderr).trim(),
        "handler: error: FUNCTIONS_CUSTOMHANDLER_PORT is \"seventy\"; it must be a port number from 1 to 65535"
    );

    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let in_use = std::process::Command::new(support::handler_binary())
        .env_clear()
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", port.to_string())
        .output()
        .unwrap();
    assert_eq!(in_use.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&in_use.stderr);
    assert!(
        stderr.contains(&format!(
            "handler: error: cannot listen on 127.0.0.1:{port}: "
        )),
        "{stderr}"
    );
}
