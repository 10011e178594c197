//! The AWS Lambda function: the real `lambda` binary polling the Runtime API stand-in
//! (`support::lambda_runtime`) for Function URL events, as Lambda runs it. Every heartbeat case of
//! the Azure contract (`contract.rs`) gets the same answer here, and the CloudWatch lines it prints
//! are parsed and checked against the embedded metric format rules (docs/platform.md §12).

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use isp_monitor::handler::aws::LambdaFrontEnd;
use isp_monitor::handler::aws::key::FunctionKey;
use isp_monitor::handler::aws::lines::CloudWatchLines;
use isp_monitor::handler::aws::notify::{NotifyFuture, OutageNotifier};
use isp_monitor::outage::OutageReport;
use lambda_http::RequestExt;
use serde_json::{Value, json};
use support::lambda_runtime::{
    FUNCTION_KEY, LambdaProcess, Outcome, RuntimeApi, UrlRequest, http_answer,
};

/// The CloudWatch units a metric may declare (EMF `MetricDefinition.Unit`, docs/platform.md §13).
const UNITS: &[&str] = &[
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// Checks one line against the EMF document rules; the metric names it declares.
fn check_emf(line: &Value) -> Result<Vec<String>, String> {
    let root = line.as_object().ok_or("the line is not a JSON object")?;
    let aws = root
        .get("_aws")
        .and_then(Value::as_object)
        .ok_or("no `_aws` object")?;
    let timestamp = aws
        .get("Timestamp")
        .and_then(Value::as_u64)
        .ok_or("`_aws.Timestamp` is not an integer")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    if timestamp.abs_diff(now) > 60_000 {
        return Err(format!(
            "Timestamp {timestamp} is not milliseconds near now ({now})"
        ));
    }
    let directives = aws
        .get("CloudWatchMetrics")
        .and_then(Value::as_array)
        .filter(|d| !d.is_empty())
        .ok_or("`CloudWatchMetrics` is not a non-empty array")?;
    let mut names = Vec::new();
    for directive in directives {
        let namespace = directive["Namespace"]
            .as_str()
            .filter(|n| (1..=255).contains(&n.len()))
            .ok_or("Namespace is not a 1..255 character string")?;
        if namespace != "ISPMonitor" {
            return Err(format!("namespace {namespace}"));
        }
        let sets = directive["Dimensions"]
            .as_array()
            .filter(|s| !s.is_empty())
            .ok_or("Dimensions is not a non-empty array")?;
        for set in sets {
            let keys = set.as_array().ok_or("a DimensionSet is not an array")?;
            if keys.len() > 9 {
                return Err("a DimensionSet has more than 9 keys".into());
            }
            for key in keys {
                let key = key.as_str().ok_or("a dimension key is not a string")?;
                root.get(key).and_then(Value::as_str).ok_or(format!(
                    "dimension target {key} is not a string on the root"
                ))?;
            }
        }
        let metrics = directive["Metrics"]
            .as_array()
            .filter(|m| m.len() <= 100)
            .ok_or("Metrics is not an array of at most 100")?;
        for metric in metrics {
            let name = metric["Name"]
                .as_str()
                .filter(|n| (1..=255).contains(&n.len()))
                .ok_or("a metric Name is not a 1..255 character string")?;
            if let Some(unit) = metric.get("Unit") {
                let unit = unit.as_str().unwrap_or("");
                if !UNITS.contains(&unit) {
                    return Err(format!("unit {unit:?} is not a CloudWatch unit"));
                }
            }
            let target = root
                .get(name)
                .ok_or(format!("metric target {name} missing"))?;
            let numeric = target.is_number()
                || target
                    .as_array()
                    .is_some_and(|a| a.len() <= 100 && a.iter().all(Value::is_number));
            if !numeric {
                return Err(format!("metric target {name} is {target}, not numeric"));
            }
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Nothing the function printed contains the key, not even a part of it.
fn assert_key_never_printed(function: &LambdaProcess, api: &RuntimeApi) {
    let part = &FUNCTION_KEY[..12];
    for line in function.lines() {
        assert!(!line.contains(part), "the key leaked into stdout: {line}");
    }
    assert!(
        !function.stderr().contains(part),
        "the key leaked into stderr"
    );
    for (_, error) in api.init_errors() {
        assert!(!error.to_string().contains(part));
    }
}

async fn start() -> (RuntimeApi, LambdaProcess) {
    let api = RuntimeApi::start().await;
    let function = LambdaProcess::start(&api, &[]);
    (api, function)
}

/// An accepted heartbeat answers `200 ok` and prints exactly one line: an EMF document in the
/// ISPMonitor namespace with the Device dimension and a Heartbeat count of 1, carrying the
/// heartbeat's fields, the client address from `requestContext.http.sourceIp` (not a header the
/// client chose) and the invocation's request id.
#[tokio::test(flavor = "multi_thread")]
async fn a_heartbeat_is_one_emf_line() {
    let (api, function) = start().await;
    let body =
        r#"{"device": "den", "note": "hello", "seq": 7, "rtt_ms": 41, "agent_version": "0.4.0"}"#;
    let request = UrlRequest::heartbeat(body).header("x-forwarded-for", "198.51.100.66");
    let answer = api.request(&request).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "ok");
    assert_eq!(answer.headers["content-type"], "text/plain; charset=utf-8");

    let lines = function.wait_lines(1).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!(check_emf(line), Ok(vec!["Heartbeat".to_owned()]), "{line}");
    assert_eq!(
        line["_aws"]["CloudWatchMetrics"][0],
        json!({"Namespace": "ISPMonitor", "Dimensions": [["Device"]],
               "Metrics": [{"Name": "Heartbeat", "Unit": "Count"}]})
    );
    assert_eq!(line["event"], "heartbeat");
    assert_eq!(line["Device"], "den");
    assert_eq!(line["Heartbeat"], 1);
    assert_eq!(
        line["client_ip"], "203.0.113.7",
        "sourceIp, not X-Forwarded-For"
    );
    assert_eq!(line["seq"], 7);
    assert_eq!(line["rtt_ms"], 41);
    assert_eq!(line["agent_version"], "0.4.0");
    assert_eq!(line["note"], "hello");
    assert_eq!(line["outages"], 0);
    assert_eq!(line["request_id"], api.last_request_id());
    assert!(api.violations().is_empty(), "{:?}", api.violations());
    assert_key_never_printed(&function, &api);
}

/// A heartbeat carrying connection quality (interface A) adds the EMF metrics `LossPct` and, when
/// any attempt connected, `RttP95Ms`; an all-lost interval has loss 100 and no latency metric.
#[tokio::test(flavor = "multi_thread")]
async fn quality_becomes_two_more_metrics() {
    let (api, function) = start().await;
    let measured = r#"{"device": "den", "quality": {"probes": 8, "lost": 2, "rtt_p50_ms": 12.5, "rtt_p95_ms": 40.25, "dns_ms": 3}}"#;
    let all_lost = r#"{"device": "den", "quality": {"probes": 4, "lost": 4, "rtt_p50_ms": null, "rtt_p95_ms": null, "dns_ms": null}}"#;
    for body in [measured, all_lost] {
        assert_eq!(api.request(&UrlRequest::heartbeat(body)).await.status, 200);
    }
    let lines = function.wait_lines(2).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(
        check_emf(&lines[0]),
        Ok(vec![
            "Heartbeat".to_owned(),
            "LossPct".to_owned(),
            "RttP95Ms".to_owned()
        ]),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"],
        json!([{"Name": "Heartbeat", "Unit": "Count"}, {"Name": "LossPct", "Unit": "Percent"},
               {"Name": "RttP95Ms", "Unit": "Milliseconds"}])
    );
    assert_eq!(
        (lines[0]["LossPct"].as_f64(), lines[0]["RttP95Ms"].as_f64()),
        (Some(25.0), Some(40.25))
    );
    assert_eq!(
        check_emf(&lines[1]),
        Ok(vec!["Heartbeat".to_owned(), "LossPct".to_owned()]),
        "{}",
        lines[1]
    );
    assert_eq!(lines[1]["LossPct"].as_f64(), Some(100.0));
    assert!(lines[1].get("RttP95Ms").is_none(), "{}", lines[1]);
}

/// Both key forms work (the header, or `?code=` as in a URL copied with its key); a bare GET
/// (curl) is a heartbeat; the path matches case-insensitively as on Azure; the device may come
/// from `X-Device`, else it is `unknown`. The logged path never carries the query.
#[tokio::test(flavor = "multi_thread")]
async fn both_key_forms_get_and_any_case_path() {
    let (api, function) = start().await;
    let code = format!("code={FUNCTION_KEY}");
    let requests = [
        UrlRequest::heartbeat(r#"{"device": "dl-home", "note": "single ping"}"#),
        UrlRequest::heartbeat(r#"{"device": "attic"}"#)
            .without_header("x-functions-key")
            .query(&code),
        UrlRequest::new("GET", "/api/ping").query(&code),
        UrlRequest::new("GET", "/API/PING")
            .query(&format!("x=1&{code}"))
            .header("x-device", "garage"),
        UrlRequest::new("POST", "/api/Ping")
            .header("x-functions-key", FUNCTION_KEY)
            .header("content-type", "application/octet-stream")
            .body(br#"{"device": "binary"}"#)
            .base64(),
    ];
    for request in &requests {
        let answer = api.request(request).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, "ok"),
            "{request:?}"
        );
    }
    let lines = function.wait_lines(requests.len()).await;
    let devices: Vec<_> = lines.iter().map(|l| l["Device"].clone()).collect();
    assert_eq!(
        devices,
        [
            json!("dl-home"),
            json!("attic"),
            json!("unknown"),
            json!("garage"),
            json!("binary")
        ]
    );
    for line in &lines {
        check_emf(line).unwrap();
    }
    assert_key_never_printed(&function, &api);
}

/// Every kind of bad input is refused with the status and one-line reason the Azure handler
/// gives (`support::bad_input_cases`, as in `contract.rs`), each refusal is one `refused` line, and none is
/// recorded as a heartbeat. Base64 bodies are decoded before validation.
#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_refused_as_on_azure() {
    let cases = support::bad_input_cases();
    let (api, function) = start().await;
    let mut sent = 0;
    for (body, status, reason) in &cases {
        for base64 in [false, true] {
            let mut request = UrlRequest::heartbeat(body);
            if base64 {
                request = request.base64();
            }
            let answer = api.request(&request).await;
            sent += 1;
            assert_eq!(answer.status, *status, "{body:.60} (base64 {base64})");
            assert!(
                answer.body.starts_with(reason),
                "{:?} should start with {reason:?}",
                answer.body
            );
            assert!(!answer.body.contains('\n'), "one line: {:?}", answer.body);
        }
    }
    let lines = function.wait_lines(sent).await;
    assert_eq!(lines.len(), sent, "{lines:?}");
    for (line, (_, status, reason)) in lines.iter().zip(cases.iter().flat_map(|c| [c, c])) {
        assert_eq!(line["event"], "refused", "{line}");
        assert_eq!(line["status"], *status);
        assert!(
            line["error"].as_str().unwrap().starts_with(reason),
            "{line}"
        );
        assert!(line.get("_aws").is_none(), "a refusal is no metric: {line}");
    }
    // Still healthy afterwards.
    assert_eq!(api.request(&UrlRequest::heartbeat("{}")).await.status, 200);
    assert_eq!(
        function.wait_lines(sent + 1).await.last().unwrap()["event"],
        "heartbeat"
    );
    assert_key_never_printed(&function, &api);
}

/// No key, a wrong key in either form, or a wrong header beside a right `code` (the header
/// wins, as on Azure) is a 401 with a one-line reason and a `refused` line; neither the real key
/// nor the wrong one is printed.
#[tokio::test(flavor = "multi_thread")]
async fn missing_or_wrong_key_is_401() {
    let (api, function) = start().await;
    let wrong = "lambda-test-key-0123456789abcdeX";
    let missing = "missing function key: send it in the x-functions-key header or as ?code=";
    let invalid = "the function key is not valid";
    let cases = [
        (
            UrlRequest::heartbeat("{}").without_header("x-functions-key"),
            missing,
        ),
        (
            UrlRequest::heartbeat("{}")
                .without_header("x-functions-key")
                .query("code="),
            missing,
        ),
        (
            UrlRequest::heartbeat("{}")
                .without_header("x-functions-key")
                .header("x-functions-key", wrong),
            invalid,
        ),
        (
            UrlRequest::heartbeat("{}")
                .without_header("x-functions-key")
                .query(&format!("code={wrong}")),
            invalid,
        ),
        (
            UrlRequest::heartbeat("{}")
                .without_header("x-functions-key")
                .header("x-functions-key", wrong)
                .query(&format!("code={FUNCTION_KEY}")),
            invalid,
        ),
        (UrlRequest::new("GET", "/api/ping"), missing),
    ];
    for (request, reason) in &cases {
        let answer = api.request(request).await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (401, *reason),
            "{request:?}"
        );
    }
    let lines = function.wait_lines(cases.len()).await;
    assert_eq!(lines.len(), cases.len());
    for (line, (_, reason)) in lines.iter().zip(&cases) {
        assert_eq!(line["event"], "refused");
        assert_eq!(line["status"], 401);
        assert_eq!(line["error"], *reason);
        assert_eq!(line["client_ip"], "203.0.113.7");
    }
    for line in function.lines() {
        assert!(
            !line.contains(&wrong[..12]),
            "a client's key was printed: {line}"
        );
    }
    assert_key_never_printed(&function, &api);
}

/// Other methods get 405 with `Allow: GET, POST`, other paths 404 with a hint, as on Azure.
#[tokio::test(flavor = "multi_thread")]
async fn other_methods_and_paths() {
    let (api, function) = start().await;
    let put = api
        .request(&UrlRequest::new("PUT", "/api/ping").header("x-functions-key", FUNCTION_KEY))
        .await;
    assert_eq!(put.status, 405);
    assert_eq!(put.headers["allow"], "GET, POST");
    assert_eq!(put.body, "method PUT is not allowed; use GET or POST");

    let pong = api
        .request(&UrlRequest::new("GET", "/api/pong").query(&format!("code={FUNCTION_KEY}")))
        .await;
    assert_eq!(pong.status, 404);
    assert_eq!(
        pong.body,
        "no such path: /api/pong; heartbeats go to /api/ping"
    );

    let lines = function.wait_lines(2).await;
    assert_eq!(lines[0]["status"], 405);
    assert_eq!(
        lines[1],
        json!({"event": "refused", "status": 404, "error": pong.body})
    );
    assert_key_never_printed(&function, &api);
}

/// A heartbeat with outage reports is one heartbeat line (`outages: 2`) and one `outage` line per
/// report, with the device, id, RFC 3339 start and end, duration, cause and detail.
#[tokio::test(flavor = "multi_thread")]
async fn outages_are_one_line_each() {
    let (api, function) = start().await;
    let body = json!({
        "device": "den",
        "outages": [
            {"id": "o-1", "start": "2026-11-30T10:00:00Z", "end": "2026-11-30T10:05:30Z",
             "cause": "isp", "detail": "dns and targets unreachable"},
            {"id": "o-2", "start": "2026-11-30T11:00:00Z", "end": "2026-11-30T11:01:00Z",
             "cause": "lan"},
        ],
    });
    let answer = api.request(&UrlRequest::heartbeat(&body.to_string())).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "ok"));
    let lines = function.wait_lines(3).await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert_eq!(lines[0]["event"], "heartbeat");
    assert_eq!(lines[0]["outages"], 2);
    check_emf(&lines[0]).unwrap();
    let request_id = api.last_request_id();
    assert_eq!(
        lines[1],
        json!({"event": "outage", "Device": "den", "outage_id": "o-1",
               "start": "2026-11-30T10:00:00Z", "end": "2026-11-30T10:05:30Z",
               "duration_s": 330, "cause": "isp", "detail": "dns and targets unreachable",
               "request_id": request_id})
    );
    assert_eq!(lines[2]["outage_id"], "o-2");
    assert_eq!(lines[2]["cause"], "lan");
    assert_eq!(lines[2]["duration_s"], 60);
    assert!(
        lines[1].get("_aws").is_none(),
        "an outage line is no metric"
    );
}

/// Without a usable key the function fails closed: it posts `Runtime.InitError` to
/// `/runtime/init/error`, says what to set on stderr (never the value), exits 1, and never asks
/// for an invocation.
#[tokio::test(flavor = "multi_thread")]
async fn no_key_fails_closed_with_an_init_error() {
    for (env, expected) in [
        (vec![], "ISP_MONITOR_FUNCTION_KEY is not set"),
        (
            vec![("ISP_MONITOR_FUNCTION_KEY", "short-secret")],
            "ISP_MONITOR_FUNCTION_KEY is 12 characters",
        ),
    ] {
        let api = RuntimeApi::start().await;
        let mut function = LambdaProcess::start_with(&api, &env);
        assert_eq!(function.exit_code(Duration::from_secs(10)).await, Some(1));
        let errors = api.init_errors();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].0, "Runtime.InitError");
        assert_eq!(errors[0].1["errorType"], "Runtime.InitError");
        let message = errors[0].1["errorMessage"].as_str().unwrap();
        assert!(message.starts_with(expected), "{message}");
        assert!(
            function.stderr().contains(expected),
            "{}",
            function.stderr()
        );
        assert!(!function.stderr().contains("short-secret"));
        assert!(!message.contains("short-secret"));
        assert!(function.lines().is_empty());
        assert!(api.violations().is_empty(), "{:?}", api.violations());
    }
}

/// Outside Lambda (no `AWS_LAMBDA_RUNTIME_API`) the binary says so and exits 1; it does not panic.
#[tokio::test(flavor = "multi_thread")]
async fn outside_lambda_it_says_so() {
    let output = tokio::process::Command::new(support::lambda_runtime::lambda_binary())
        .env_clear()
        .env("ISP_MONITOR_FUNCTION_KEY", FUNCTION_KEY)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(10), output)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.starts_with("lambda: error: AWS_LAMBDA_RUNTIME_API is not set"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"));
}

/// The stand-in really checks: a response that is not JSON, a bad status or a bad base64 body
/// is a failed invocation; an answer for an invocation that is not waiting is refused with 400
/// and recorded; an event that is not a Function URL event comes back as the function's error.
#[tokio::test(flavor = "multi_thread")]
async fn the_stand_in_can_fail() {
    for (bytes, why) in [
        (&b"ok"[..], "not JSON"),
        (br#"{"statusCode": "200"}"#, "statusCode"),
        (
            br#"{"statusCode": 200, "body": "!!", "isBase64Encoded": true}"#,
            "base64",
        ),
        (br#"{"statusCode": 200, "headers": {"a": 1}}"#, "header"),
    ] {
        let err = http_answer(&Outcome::Response(bytes.to_vec())).unwrap_err();
        assert!(err.contains(why), "{err}");
    }
    // Valid JSON without statusCode is a 200 whose body is the JSON (AWS docs urls-invocation).
    let inferred = http_answer(&Outcome::Response(br#"{"m": 1}"#.to_vec())).unwrap();
    assert_eq!(
        (inferred.status, inferred.body.as_str()),
        (200, r#"{"m":1}"#)
    );

    let api = RuntimeApi::start().await;
    let stray = reqwest::Client::new()
        .post(format!(
            "http://{}/2018-06-01/runtime/invocation/no-such-id/response",
            api.address()
        ))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(stray.status(), 400);
    assert_eq!(api.violations().len(), 1);

    let function = LambdaProcess::start(&api, &[]);
    match api.invoke(&json!({"not": "a function url event"})).await {
        Outcome::Error { error_type, body } => {
            assert!(!error_type.is_empty(), "{body}");
            assert!(body["errorMessage"].is_string(), "{body}");
        }
        other => panic!("expected an invocation error, got {other:?}"),
    }
    // The function goes on serving after a bad event.
    assert_eq!(api.request(&UrlRequest::heartbeat("{}")).await.status, 200);
    let seen: HashSet<String> = function
        .wait_lines(1)
        .await
        .iter()
        .map(|l| l["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, HashSet::from(["heartbeat".to_owned()]));
}

const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:ispmon-alerts";
const AWS_SECRET: &str = "stand-in/secret+KEY=value0123456789";

/// A loopback SNS endpoint recording each request body; answers a Publish success, or 500.
async fn sns_endpoint(fail: bool) -> (String, Arc<Mutex<Vec<String>>>) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&bodies);
    let app = axum::Router::new().fallback(move |body: String| {
        let seen = Arc::clone(&seen);
        async move {
            seen.lock().unwrap().push(body);
            if fail {
                (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    "<ErrorResponse><Error><Code>InternalError</Code><Message>down</Message></Error></ErrorResponse>",
                )
            } else {
                (
                    axum::http::StatusCode::OK,
                    "<PublishResponse><PublishResult><MessageId>m-1</MessageId></PublishResult></PublishResponse>",
                )
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, bodies)
}

fn with_outages(device: &str) -> String {
    json!({"device": device, "outages": [
        {"id": "o-1", "start": "2026-11-30T10:00:00Z", "end": "2026-11-30T10:05:30Z", "cause": "isp"},
        {"id": "o-2", "start": "2026-11-30T11:00:00Z", "end": "2026-11-30T11:01:00Z", "cause": "lan"},
    ]})
    .to_string()
}

/// With `ISP_MONITOR_SNS_TOPIC_ARN` set, the real binary publishes one SNS message per accepted
/// outage report to the topic (through `ISP_MONITOR_SNS_ENDPOINT`), and none for a heartbeat
/// without outages or a refused one. When SNS fails, the heartbeat is still `200 ok` and each
/// outage gets a `notify_failed` line; no credential is printed.
#[tokio::test(flavor = "multi_thread")]
async fn outages_are_published_once_each() {
    for fail in [false, true] {
        let (endpoint, bodies) = sns_endpoint(fail).await;
        let api = RuntimeApi::start().await;
        let function = LambdaProcess::start(
            &api,
            &[
                ("ISP_MONITOR_SNS_TOPIC_ARN", TOPIC),
                ("ISP_MONITOR_SNS_ENDPOINT", &endpoint),
                ("AWS_ACCESS_KEY_ID", "AKIDSTANDINTEST1"),
                ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
                ("AWS_SESSION_TOKEN", "IQoJb3JpZ2luSessionToken=="),
            ],
        );
        assert_eq!(
            api.request(&UrlRequest::heartbeat(r#"{"device": "den"}"#))
                .await
                .status,
            200
        );
        assert_eq!(
            api.request(&UrlRequest::heartbeat(r#"{"outages": 1}"#))
                .await
                .status,
            400
        );
        let answer = api
            .request(&UrlRequest::heartbeat(&with_outages("den")))
            .await;
        assert_eq!(
            (answer.status, answer.body.as_str()),
            (200, "ok"),
            "fail={fail}"
        );

        let published = bodies.lock().unwrap().clone();
        assert_eq!(published.len(), 2, "fail={fail}: {published:?}");
        let topic = isp_monitor::notify::sigv4::form_encode(TOPIC);
        for (body, id) in published.iter().zip(["o-1", "o-2"]) {
            assert!(body.starts_with("Action=Publish&"), "{body}");
            assert!(body.contains(&format!("TopicArn={topic}")), "{body}");
            assert!(body.contains(id), "{body}");
            assert!(
                !body.contains(&FUNCTION_KEY[..12]),
                "the function key went to SNS"
            );
        }
        let expected_lines = if fail { 2 + 3 + 2 } else { 2 + 3 };
        let lines = function.wait_lines(expected_lines).await;
        let failed: Vec<_> = lines
            .iter()
            .filter(|l| l["event"] == "notify_failed")
            .collect();
        if fail {
            assert_eq!(failed.len(), 2, "{lines:?}");
            assert_eq!(failed[0]["outage_id"], "o-1");
            assert_eq!(failed[0]["Device"], "den");
            assert!(
                failed[0]["error"].as_str().unwrap().contains("500"),
                "{}",
                failed[0]
            );
        } else {
            assert!(failed.is_empty(), "{failed:?}");
        }
        for line in function.lines() {
            assert!(
                !line.contains(AWS_SECRET) && !line.contains(&AWS_SECRET[..10]),
                "{line}"
            );
        }
        assert!(!function.stderr().contains(&AWS_SECRET[..10]));
        assert_key_never_printed(&function, &api);
    }
}

/// In process: a notifier that never answers cannot hold the heartbeat past the invocation's
/// deadline (less a second to answer in); each outage it did not take is a `notify_failed` line.
#[tokio::test(flavor = "multi_thread")]
async fn a_hanging_notifier_is_cut_off_by_the_deadline() {
    struct Hangs(AtomicUsize);
    impl OutageNotifier for Hangs {
        fn notify<'a>(&'a self, _device: &'a str, _outage: &'a OutageReport) -> NotifyFuture<'a> {
            self.0.fetch_add(1, Ordering::Relaxed);
            Box::pin(std::future::pending())
        }
    }
    let captured = Captured::default();
    let lines = Arc::new(CloudWatchLines::to(captured.clone()));
    let key = FunctionKey::from_env(|_| Some(FUNCTION_KEY.to_owned())).unwrap();
    let notifier = Arc::new(Hangs(AtomicUsize::new(0)));
    let front_end = LambdaFrontEnd::new(key, lines, Some(notifier.clone()));

    let event = UrlRequest::heartbeat(&with_outages("den"))
        .event()
        .to_string();
    let mut context = lambda_http::Context::default();
    context.request_id = "req-1".to_owned();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    context.deadline = now + 2_000;
    let request = lambda_http::request::from_str(&event)
        .unwrap()
        .with_lambda_context(context);
    let started = std::time::Instant::now();
    let answer = front_end.handle(request).await;
    let took = started.elapsed();
    assert_eq!(answer.status(), 200);
    assert!(took < Duration::from_millis(1_800), "held for {took:?}");
    assert!(
        took >= Duration::from_millis(700),
        "gave up early: {took:?}"
    );
    assert_eq!(
        notifier.0.load(Ordering::Relaxed),
        2,
        "each outage was offered"
    );
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let events: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<_> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "heartbeat",
            "outage",
            "outage",
            "notify_failed",
            "notify_failed"
        ]
    );
    assert!(
        events[3]["error"]
            .as_str()
            .unwrap()
            .contains("budget ran out")
    );
    assert_eq!(events[3]["request_id"], "req-1");
}

/// Output captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The line shapes docs/telemetry.md shows ("Telemetry on AWS") are the ones the binary prints:
/// same events, same keys, the same EMF directive.
#[tokio::test(flavor = "multi_thread")]
async fn the_documented_lines_are_the_printed_ones() {
    let doc = std::fs::read_to_string(support::repo_root().join("docs/telemetry.md")).unwrap();
    let section = doc
        .split("\n## Telemetry on AWS\n")
        .nth(1)
        .expect("docs/telemetry.md has a \"Telemetry on AWS\" section");
    let section = section.split("\n## ").next().unwrap();
    let documented: Vec<Value> = section
        .split("```json\n")
        .skip(1)
        .map(|block| serde_json::from_str(block.split("\n```").next().unwrap()).unwrap())
        .collect();
    assert_eq!(
        documented.len(),
        3,
        "heartbeat, outage and refused examples"
    );

    let (api, function) = start().await;
    let beat =
        r#"{"device": "den", "note": "hello", "seq": 7, "rtt_ms": 41, "agent_version": "0.4.0"}"#;
    assert_eq!(api.request(&UrlRequest::heartbeat(beat)).await.status, 200);
    let outage = json!({"device": "den", "outages": [{"id": "o-1", "start": "2026-11-30T10:00:00Z",
        "end": "2026-11-30T10:05:30Z", "cause": "isp", "detail": "dns and targets unreachable"}]});
    assert_eq!(
        api.request(&UrlRequest::heartbeat(&outage.to_string()))
            .await
            .status,
        200
    );
    assert_eq!(
        api.request(&UrlRequest::heartbeat(r#"{"device": 42}"#))
            .await
            .status,
        400
    );
    let printed = function.wait_lines(4).await;
    let keys = |v: &Value| -> Vec<String> {
        let mut keys: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    };
    for example in &documented {
        let event = example["event"].as_str().unwrap();
        let line = printed
            .iter()
            .find(|l| l["event"] == event)
            .unwrap_or_else(|| panic!("no {event} line printed: {printed:?}"));
        assert_eq!(keys(example), keys(line), "{event}: documented vs printed");
        if event == "heartbeat" {
            assert_eq!(
                example["_aws"]["CloudWatchMetrics"],
                line["_aws"]["CloudWatchMetrics"]
            );
            assert!(example["_aws"]["Timestamp"].is_u64());
        }
        if event != "heartbeat" {
            let mut same = example.clone();
            same["request_id"] = line["request_id"].clone();
            same["client_ip"] = line["client_ip"].clone();
            if example.get("client_ip").is_none() {
                same.as_object_mut().unwrap().remove("client_ip");
            }
            assert_eq!(
                &same, line,
                "{event}: the documented example is what the binary prints"
            );
        }
    }
}

/// The quality figures are plain fields of the heartbeat line, named as Azure's
/// `customDimensions` (docs/telemetry.md) so the AWS report's Logs Insights query
/// (queries/report-aws/quality.logsinsights) sums what Azure's does: probes and lost whenever the
/// heartbeat carried quality, the round trips only when measured (both), DNS only when it resolved;
/// a heartbeat without quality has none of them. They are no metrics: the EMF directive still
/// declares only Heartbeat, LossPct and RttP95Ms.
#[tokio::test(flavor = "multi_thread")]
async fn quality_is_in_the_line_under_the_azure_names() {
    let (api, function) = start().await;
    let bodies = [
        r#"{"device": "den", "quality": {"probes": 9, "lost": 1, "rtt_p50_ms": 12.5, "rtt_p95_ms": 40.25, "dns_ms": 3}}"#,
        r#"{"device": "den", "quality": {"probes": 4, "lost": 4, "rtt_p50_ms": null, "rtt_p95_ms": null, "dns_ms": null}}"#,
        r#"{"device": "den", "quality": {"probes": 4, "lost": 4, "rtt_p50_ms": null, "rtt_p95_ms": null, "dns_ms": 7}}"#,
        r#"{"device": "den", "quality": {"probes": 3, "lost": 0, "rtt_p50_ms": 1, "rtt_p95_ms": 2, "dns_ms": null}}"#,
        r#"{"device": "den", "quality": null}"#,
        r#"{"device": "den"}"#,
    ];
    for body in bodies {
        assert_eq!(api.request(&UrlRequest::heartbeat(body)).await.status, 200);
    }
    let lines = function.wait_lines(bodies.len()).await;
    assert_eq!(lines.len(), bodies.len(), "{lines:?}");
    let quality = |line: &Value| -> Value {
        let fields: serde_json::Map<String, Value> = line
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| k.starts_with("quality"))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        Value::Object(fields)
    };
    // The two fragments docs/telemetry.md shows ("Telemetry on AWS") are what the binary adds.
    let doc = std::fs::read_to_string(support::repo_root().join("docs/telemetry.md")).unwrap();
    let fragment = |start: &str| -> Value {
        let at = doc
            .find(&format!("`{start}"))
            .unwrap_or_else(|| panic!("docs/telemetry.md shows `{start}…`"));
        let text = &doc[at + 1..];
        serde_json::from_str(&format!("{{{}}}", &text[..text.find('`').unwrap()])).unwrap()
    };
    assert_eq!(
        quality(&lines[0]),
        fragment(r#""quality_probes":9,"#),
        "the documented example"
    );
    assert_eq!(
        quality(&lines[0]),
        json!({"quality_probes": 9, "quality_lost": 1, "quality_rtt_p50_ms": 12.5,
               "quality_rtt_p95_ms": 40.25, "quality_dns_ms": 3.0})
    );
    assert_eq!(
        quality(&lines[1]),
        fragment(r#""quality_probes":4,"quality_lost":4"#),
        "every attempt lost, no DNS: the documented fields only"
    );
    assert_eq!(
        quality(&lines[1]),
        json!({"quality_probes": 4, "quality_lost": 4})
    );
    assert_eq!(
        quality(&lines[2]),
        json!({"quality_probes": 4, "quality_lost": 4, "quality_dns_ms": 7.0}),
        "every attempt lost: no round-trip fields"
    );
    assert_eq!(
        quality(&lines[3]),
        json!({"quality_probes": 3, "quality_lost": 0, "quality_rtt_p50_ms": 1.0,
               "quality_rtt_p95_ms": 2.0}),
        "no DNS time: no DNS field"
    );
    assert_eq!(quality(&lines[4]), json!({}), "quality: null is none");
    assert_eq!(quality(&lines[5]), json!({}), "no quality is none");
    for line in &lines[..4] {
        let declared = check_emf(line).unwrap();
        assert!(declared.iter().all(|m| !m.starts_with("quality")), "{line}");
        assert_eq!(line["event"], "heartbeat");
    }
    assert_eq!(check_emf(&lines[5]), Ok(vec!["Heartbeat".to_owned()]));
    assert_key_never_printed(&function, &api);
}
