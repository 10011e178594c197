//! Every answer the handler can give, in-process through `handler::app()` (no socket): the
//! refusal table in both of the host's modes, each refusal with its status, its one-line reason
//! and exactly one log line; and random bodies and envelopes that must never panic or answer 5xx.
//! The real binary behind the host stand-in is tested in `contract.rs`.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, header};
use isp_monitor::handler::core::Core;
use isp_monitor::handler::log::LogWriter;
use isp_monitor::handler::{self, AppState, Limits};
use isp_monitor::heartbeat::Heartbeat;
use isp_monitor::telemetry::Telemetry;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

/// Log output captured in memory.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The app with telemetry off and its log lines captured.
struct App {
    router: axum::Router,
    log: LogWriter,
    lines: Captured,
}

impl App {
    fn new() -> App {
        let lines = Captured::default();
        let log = LogWriter::to(lines.clone(), std::io::sink(), 4096);
        let core = Core::new(
            Arc::new(Telemetry::disabled()),
            log.clone(),
            "https://site.example".to_owned(),
        );
        let limits = Limits {
            body_timeout: Duration::from_secs(2),
            ..Limits::default()
        };
        App {
            router: handler::app(AppState::new(Arc::new(core), &limits)),
            log,
            lines,
        }
    }

    /// Sends one request; returns status, `Allow`, body.
    async fn send(&self, request: Request<Body>) -> (u16, Option<String>, String) {
        let answer = self.router.clone().oneshot(request).await.unwrap();
        let status = answer.status().as_u16();
        let allow = answer
            .headers()
            .get(header::ALLOW)
            .map(|v| v.to_str().unwrap().to_owned());
        let bytes = axum::body::to_bytes(answer.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, allow, String::from_utf8(bytes.to_vec()).unwrap())
    }

    /// The log lines written so far (taken, so each call sees only new ones).
    fn take_lines(&self) -> Vec<Value> {
        assert!(self.log.flush(Duration::from_secs(5)));
        let bytes = std::mem::take(&mut *self.lines.0.lock().unwrap());
        String::from_utf8(bytes)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
}

fn forwarded(method: &str, body: impl Into<Body>) -> Request<Body> {
    Request::builder()
        .method(method)
        .uri("/api/ping?code=secret-key")
        .header("x-forwarded-for", "203.0.113.7:5000")
        .body(body.into())
        .unwrap()
}

/// The host's envelope around a request, posted to `/Ping`.
fn invocation(method: &str, headers: Value, body: Option<&str>) -> Request<Body> {
    let mut req = json!({"Url": "https://x/api/ping?code=secret-key", "Method": method,
        "Headers": headers, "Query": {}, "Params": {}});
    if let Some(body) = body {
        req["Body"] = json!(body);
    }
    let envelope = json!({"Data": {"req": req}, "Metadata": {}});
    Request::post("/Ping")
        .header("content-type", "application/json")
        .body(Body::from(envelope.to_string()))
        .unwrap()
}

/// The status and body a host would relay from an `Outputs` envelope.
fn unwrap_outputs(
    (status, _, body): (u16, Option<String>, String),
) -> (u16, Option<String>, String) {
    assert_eq!(status, 200, "the host needs 2xx: {body}");
    let payload: Value = serde_json::from_str(&body).unwrap();
    let res = &payload["Outputs"]["res"];
    (
        res["statusCode"].as_u64().unwrap() as u16,
        res["headers"]["Allow"].as_str().map(str::to_owned),
        res["body"].as_str().unwrap().to_owned(),
    )
}

/// Every refusal, in both modes: its status, its `Allow`, its one-line reason, and one
/// `refused` log line carrying the same status and reason.
#[tokio::test]
async fn the_refusal_table() {
    let app = App::new();
    let too_big = format!(r#"{{"note": "{}"}}"#, "x".repeat(70_000));
    let envelope_limit = 4 * 64 * 1024 + 64 * 1024;
    let huge_envelope = Request::post("/Ping")
        .body(Body::from(vec![b' '; envelope_limit + 1]))
        .unwrap();
    let binary = json!({"content-type": ["application/octet-stream"]});
    // (case, request, unwrap Outputs?, status, Allow, reason)
    type Case = (
        &'static str,
        Request<Body>,
        bool,
        u16,
        Option<&'static str>,
        String,
    );
    let cases: Vec<Case> = vec![
        (
            "PUT forwarded",
            forwarded("PUT", ""),
            false,
            405,
            Some("GET, POST"),
            "method PUT is not allowed; use GET or POST".into(),
        ),
        (
            "bad JSON forwarded",
            forwarded("POST", "{nope"),
            false,
            400,
            None,
            "body is not valid JSON: key must be a string at line 1 column 2".into(),
        ),
        (
            "too large forwarded",
            forwarded("POST", too_big.clone()),
            false,
            413,
            None,
            "body is 65537 bytes; the limit is 65536 bytes".into(),
        ),
        (
            "control character forwarded",
            forwarded("POST", r#"{"device": "a\u0000b"}"#),
            false,
            400,
            None,
            "`device` contains a control character".into(),
        ),
        (
            "DELETE invoked",
            invocation("DELETE", json!({}), None),
            true,
            405,
            Some("GET, POST"),
            "method DELETE is not allowed; use GET or POST".into(),
        ),
        (
            "bad JSON invoked",
            invocation("POST", json!({}), Some("{nope")),
            true,
            400,
            None,
            "body is not valid JSON: key must be a string at line 1 column 2".into(),
        ),
        (
            "too large invoked",
            invocation("POST", json!({}), Some(&too_big)),
            true,
            413,
            None,
            "body is 70012 bytes; the limit is 65536 bytes".into(),
        ),
        (
            "bad base64 invoked",
            invocation("POST", binary, Some("%%%")),
            true,
            400,
            None,
            "the binary body is not valid base64".into(),
        ),
        (
            "envelope over its limit",
            huge_envelope,
            true,
            413,
            None,
            format!(
                "invocation envelope is {} bytes; the limit is {envelope_limit} bytes",
                envelope_limit + 1
            ),
        ),
        (
            "not an envelope",
            Request::post("/Ping").body(Body::from("[]")).unwrap(),
            false,
            400,
            None,
            "invocation body has no `Data`; is this the Functions host?".into(),
        ),
        (
            "envelope not JSON",
            Request::post("/Ping").body(Body::from("{")).unwrap(),
            false,
            400,
            None,
            "invocation body is not valid JSON: EOF while parsing an object at line 1 column 1"
                .into(),
        ),
        (
            "GET on the invocation path",
            Request::get("/Ping").body(Body::empty()).unwrap(),
            false,
            405,
            Some("POST"),
            "method GET is not allowed; use POST".into(),
        ),
    ];
    for (case, request, wrapped, status, allow, reason) in cases {
        let mut answer = app.send(request).await;
        if wrapped {
            answer = unwrap_outputs(answer);
        }
        assert_eq!(
            answer,
            (status, allow.map(str::to_owned), reason.clone()),
            "{case}"
        );
        let lines = app.take_lines();
        assert_eq!(lines.len(), 1, "{case}: {lines:?}");
        assert_eq!(lines[0]["event"], "refused", "{case}");
        assert_eq!(lines[0]["status"], status, "{case}");
        assert_eq!(lines[0]["reason"], reason.as_str(), "{case}");
    }

    // Not a heartbeat path: a 404 with a hint, logged, no heartbeat row.
    let (status, _, body) = app
        .send(Request::get("/api/pong").body(Body::empty()).unwrap())
        .await;
    assert_eq!(
        (status, body.as_str()),
        (404, "no such path: /api/pong; heartbeats go to /api/ping")
    );
    assert_eq!(app.take_lines()[0]["event"], "not_found");
}

/// An accepted heartbeat in both modes: `ok`, and one `heartbeat` line with the trusted address
/// (the last forwarded entry) and the front end's label.
#[tokio::test]
async fn accepted_in_both_modes() {
    let app = App::new();
    let answer = app.send(forwarded("POST", r#"{"device": "den"}"#)).await;
    assert_eq!(answer, (200, None, "ok".to_owned()));
    let headers = json!({"x-forwarded-for": ["6.6.6.6, 203.0.113.7:5000"], "X-Device": ["attic"]});
    let answer = unwrap_outputs(app.send(invocation("POST", headers, None)).await);
    assert_eq!(answer, (200, None, "ok".to_owned()));
    let lines = app.take_lines();
    let seen: Vec<_> = lines
        .iter()
        .map(|l| {
            (
                l["event"].clone(),
                l["device"].clone(),
                l["ip"].clone(),
                l["host_mode"].clone(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            (
                json!("heartbeat"),
                json!("den"),
                json!("203.0.113.7"),
                json!("forwarding")
            ),
            (
                json!("heartbeat"),
                json!("attic"),
                json!("203.0.113.7"),
                json!("invocation")
            ),
        ]
    );
}

/// Random JSON-ish text: mostly structure characters and the field names the parser knows, so
/// the cases reach past the first syntax error.
fn jsonish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just(",".to_owned()),
        Just(":".to_owned()),
        Just("\"device\"".to_owned()),
        Just("\"note\"".to_owned()),
        Just("\"seq\"".to_owned()),
        Just("\"outages\"".to_owned()),
        Just("\"start\"".to_owned()),
        Just("\"end\"".to_owned()),
        Just("\"cause\"".to_owned()),
        Just("\"id\"".to_owned()),
        Just("null".to_owned()),
        Just("-1".to_owned()),
        Just("1e999".to_owned()),
        Just("\"2026-11-25T00:00:00Z\"".to_owned()),
        Just("\"\\u0000\"".to_owned()),
        Just("\"\\ud800\"".to_owned()),
        any::<String>(),
    ];
    proptest::collection::vec(token, 0..24).prop_map(|tokens| tokens.concat())
}

/// A random envelope: valid JSON around random pieces where the host puts its fields.
fn envelope() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(json!(null)),
        any::<String>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        jsonish().prop_map(Value::from),
        Just(json!({"content-type": ["application/octet-stream"]})),
        Just(json!({"x-device": ["a\nb"], "x-forwarded-for": "[::1]:5"})),
        Just(json!([1, {"a": []}])),
    ];
    (
        piece.clone(),
        piece.clone(),
        piece.clone(),
        piece,
        any::<bool>(),
    )
        .prop_map(|(method, url, headers, body, lowercase)| {
            let req = json!({"Method": method, "Url": url, "Headers": headers, "Body": body});
            let data = if lowercase {
                json!({"data": {"REQ": req}})
            } else {
                json!({"Data": {"req": req}})
            };
            data.to_string().into_bytes()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// The heartbeat parser refuses bad input with a one-line reason; it never panics.
    #[test]
    fn the_parser_never_panics(body in prop_oneof![jsonish(), any::<String>()], header in proptest::option::of(any::<String>())) {
        if let Err(err) = Heartbeat::parse(body.as_bytes(), header.as_deref(), chrono::Utc::now()) {
            let reason = err.to_string();
            prop_assert!(!reason.contains('\n'), "{reason:?}");
            prop_assert!(err.status_code() < 500);
        }
    }

    /// Random bodies on the forwarding path and random envelopes on the invocation path are each
    /// answered below 500, with a one-line reason, whatever they contain.
    #[test]
    fn random_requests_never_answer_5xx(body in jsonish(), envelope in envelope(), raw in proptest::collection::vec(any::<u8>(), 0..256)) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let app = App::new();
            let (status, _, reason) = app.send(forwarded("POST", body)).await;
            assert!(status < 500 && !reason.contains('\n'), "{status} {reason:?}");
            for bytes in [envelope, raw] {
                let request = Request::post("/Ping").body(Body::from(bytes)).unwrap();
                let (status, _, text) = app.send(request).await;
                assert!(status < 500, "{status} {text:?}");
                if let Ok(payload) = serde_json::from_str::<Value>(&text) {
                    let res = &payload["Outputs"]["res"];
                    assert!(res["statusCode"].as_u64().unwrap() < 500, "{payload}");
                    assert!(!res["body"].as_str().unwrap().contains('\n'), "{payload}");
                } else {
                    assert!(!text.contains('\n'), "{text:?}");
                }
            }
        });
    }
}
