//! Reminders while a device stays silent (docs/aws.md "Alarms and emails", docs/platform.md §17):
//! the real `lambda` binary in its reminder role (`ISP_MONITOR_ROLE=reminders`) behind the Runtime
//! API stand-in (`support::lambda_runtime`), fed EventBridge scheduled events, reading alarms from
//! a loopback CloudWatch DescribeAlarms stand-in and publishing to a loopback SNS stand-in — one
//! process, tests/aws/sns_standin.py, that checks every signature with botocore's signer (service
//! `monitoring` for DescribeAlarms, `sns` for Publish). Needs tests/aws/.venv
//! (tests/aws/install.sh); without it each test says so and passes, except under CI.

mod support;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Timelike, Utc};
use serde_json::{Value, json};
use support::aws_standin::{AwsStandIn, temp_alarms_path};
use support::lambda_runtime::{LambdaProcess, Outcome, RuntimeApi};

const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:ispmon-alerts";
const KEY_ID: &str = "AKIDREMINDERTEST";
const SECRET: &str = "reminder/secret+KEY=value0123456789";
const TOKEN: &str = "IQoJReminderStandInSessionToken//value==";
const PREFIX: &str = "ispmon-silent-";

/// The SNS + CloudWatch stand-in, answering DescribeAlarms from a JSON file of alarms.
struct StandIn {
    aws: AwsStandIn,
    alarms: PathBuf,
}

impl Drop for StandIn {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.alarms);
    }
}

impl StandIn {
    fn start(page_size: usize) -> Option<StandIn> {
        let alarms = temp_alarms_path("reminders");
        std::fs::write(&alarms, "[]").unwrap();
        let page_size = page_size.to_string();
        let aws = AwsStandIn::start([
            "--access-key".as_ref(),
            KEY_ID.as_ref(),
            "--secret".as_ref(),
            SECRET.as_ref(),
            "--token".as_ref(),
            TOKEN.as_ref(),
            "--region".as_ref(),
            "eu-west-1".as_ref(),
            "--topic".as_ref(),
            TOPIC.as_ref(),
            "--alarms".as_ref(),
            alarms.as_os_str(),
            "--page-size".as_ref(),
            std::ffi::OsStr::new(&page_size),
        ])?;
        Some(StandIn { aws, alarms })
    }

    fn url(&self, path: &str) -> String {
        self.aws.url(path)
    }

    /// Replaces the alarms DescribeAlarms answers from: (device, state, minutes since the state
    /// changed).
    fn set_alarms(&self, alarms: &[(&str, &str, i64)]) {
        // Whole seconds, as the scheduled event's time is.
        let now = Utc::now().with_nanosecond(0).unwrap();
        let list: Vec<Value> = alarms
            .iter()
            .map(|(device, state, minutes)| {
                let at = now - chrono::Duration::minutes(*minutes);
                json!({
                    "name": format!("{PREFIX}{device}"),
                    "device": device,
                    "state": state,
                    "transitioned": at.to_rfc3339_opts(SecondsFormat::Millis, true),
                    // Moves with evaluation-state updates; must not restart the count.
                    "updated": now.to_rfc3339_opts(SecondsFormat::Millis, true),
                })
            })
            .collect();
        let mut f = std::fs::File::create(&self.alarms).unwrap();
        f.write_all(serde_json::to_string(&list).unwrap().as_bytes())
            .unwrap();
    }

    /// Every record received so far (waits a little for stragglers).
    fn drain(&self) -> Vec<Value> {
        self.aws.drain(Duration::from_millis(300))
    }
}

fn env<'a>(standin: &'a StandIn, cloudwatch: &'a str, secret: &'a str) -> Vec<(&'a str, String)> {
    vec![
        ("ISP_MONITOR_ROLE", "reminders".to_owned()),
        ("ISP_MONITOR_SNS_TOPIC_ARN", TOPIC.to_owned()),
        ("ISP_MONITOR_SNS_ENDPOINT", standin.url("/")),
        ("ISP_MONITOR_CLOUDWATCH_ENDPOINT", standin.url(cloudwatch)),
        ("ISP_MONITOR_ALARM_PREFIX", PREFIX.to_owned()),
        ("ISP_MONITOR_REMINDER_MINUTES", "15".to_owned()),
        ("ISP_MONITOR_SILENCE_MINUTES", "5".to_owned()),
        ("AWS_ACCESS_KEY_ID", KEY_ID.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", secret.to_owned()),
        ("AWS_SESSION_TOKEN", TOKEN.to_owned()),
    ]
}

fn start(api: &RuntimeApi, env: &[(&str, String)]) -> LambdaProcess {
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    LambdaProcess::start_with(api, &pairs)
}

fn scheduled_event() -> Value {
    json!({
        "version": "0",
        "id": "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa",
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "region": "eu-west-1",
        "resources": ["arn:aws:events:eu-west-1:123456789012:rule/ispmon-reminders"],
        "detail": {}
    })
}

fn publishes(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["params"]["Action"] == "Publish")
        .collect()
}

fn describes(records: &[Value]) -> Vec<&Value> {
    records
        .iter()
        .filter(|r| r["params"]["Action"] == "DescribeAlarms")
        .collect()
}

fn assert_no_secret(text: &str) {
    for secret in [SECRET, TOKEN, KEY_ID] {
        assert!(!text.contains(secret), "a secret in the output: {text}");
    }
}

fn error_of(outcome: &Outcome) -> (String, String) {
    match outcome {
        // The header says `unhandled`; the body carries the function's own error type.
        Outcome::Error { body, .. } => (
            body["errorType"].as_str().unwrap_or_default().to_owned(),
            body["errorMessage"].as_str().unwrap_or_default().to_owned(),
        ),
        Outcome::Response(body) => panic!(
            "expected a failed invocation, got {}",
            String::from_utf8_lossy(body)
        ),
    }
}

/// Two alarms in ALARM (one for 20 minutes, one for 3) and one OK: exactly one reminder, for the
/// old one, signed as botocore signs it; DescribeAlarms asked for ALARM under our prefix.
#[tokio::test]
async fn one_reminder_for_the_alarm_old_enough() {
    let Some(standin) = StandIn::start(100) else {
        return;
    };
    standin.set_alarms(&[
        ("attic", "ALARM", 20),
        ("office", "ALARM", 3),
        ("den", "OK", 40),
    ]);
    let api = RuntimeApi::start().await;
    let lambda = start(&api, &env(&standin, "/", SECRET));
    let outcome = api.invoke(&scheduled_event()).await;
    let Outcome::Response(body) = &outcome else {
        panic!("the run failed: {outcome:?}; stderr {}", lambda.stderr());
    };
    let answer: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(answer, json!({"in_alarm": 2, "reminded": ["attic"]}));
    let records = standin.drain();
    assert!(records.iter().all(|r| r["verified"] == true), "{records:?}");
    let describe = describes(&records);
    assert_eq!(describe.len(), 1);
    assert_eq!(describe[0]["params"]["StateValue"], "ALARM");
    assert_eq!(describe[0]["params"]["AlarmNamePrefix"], PREFIX);
    assert_eq!(describe[0]["params"]["Version"], "2010-08-01");
    let sent = publishes(&records);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        sent[0]["params"]["Subject"],
        "ISP Monitor: attic is still silent (25 min)"
    );
    let message = sent[0]["params"]["Message"].as_str().unwrap();
    assert!(
        message.starts_with("attic has sent no heartbeat for about 25 min"),
        "{message}"
    );
    assert!(message.contains("OK email"), "{message}");
    let lines = lambda.wait_lines(2).await;
    assert_eq!(lines[0]["event"], "reminder");
    assert_eq!(lines[0]["device"], "attic");
    assert_eq!(
        lines[1],
        json!({"event": "reminders", "in_alarm": 2, "sent": 1, "failed": 0})
    );
    assert_no_secret(&format!("{:?} {}", lambda.lines(), lambda.stderr()));
}

/// Pages are followed with NextToken (7 alarms, 2 a page: 4 calls, 7 reminders); a peer that
/// never stops paging is cut off after 10 pages with an error, not a hang.
#[tokio::test]
async fn pages_are_followed_and_bounded() {
    let Some(standin) = StandIn::start(2) else {
        return;
    };
    let devices: Vec<String> = (0..7).map(|i| format!("pc{i}")).collect();
    let alarms: Vec<(&str, &str, i64)> =
        devices.iter().map(|d| (d.as_str(), "ALARM", 30)).collect();
    standin.set_alarms(&alarms);
    let api = RuntimeApi::start().await;
    let _lambda = start(&api, &env(&standin, "/", SECRET));
    let outcome = api.invoke(&scheduled_event()).await;
    assert!(matches!(outcome, Outcome::Response(_)), "{outcome:?}");
    let records = standin.drain();
    let describe = describes(&records);
    assert_eq!(describe.len(), 4);
    assert_eq!(describe[0]["params"].get("NextToken"), None);
    assert_eq!(describe[1]["params"]["NextToken"], "offset-2");
    assert_eq!(publishes(&records).len(), 7);

    // 21 alarms at 2 a page would take 11 pages: refused after 10.
    let many: Vec<String> = (0..21).map(|i| format!("m{i:02}")).collect();
    let alarms: Vec<(&str, &str, i64)> = many.iter().map(|d| (d.as_str(), "ALARM", 30)).collect();
    standin.set_alarms(&alarms);
    let (kind, message) = error_of(&api.invoke(&scheduled_event()).await);
    assert_eq!(kind, "Reminders.Failed");
    assert!(message.contains("after 10 pages"), "{message}");
    let records = standin.drain();
    assert_eq!(describes(&records).len(), 10);
    assert_eq!(
        publishes(&records).len(),
        0,
        "nothing sent from a list cut short"
    );
}

/// An AWS error answer (a wrong secret: the stand-in refuses the signature and echoes the
/// canonical request, session token included) fails the invocation with one line holding AWS's
/// code, and no secret anywhere in the function's output.
#[tokio::test]
async fn an_aws_error_fails_the_run_in_one_line_without_secrets() {
    let Some(standin) = StandIn::start(100) else {
        return;
    };
    standin.set_alarms(&[("attic", "ALARM", 20)]);
    let api = RuntimeApi::start().await;
    let lambda = start(&api, &env(&standin, "/", "the-wrong-secret-value"));
    let (kind, message) = error_of(&api.invoke(&scheduled_event()).await);
    assert_eq!(kind, "Reminders.Failed");
    assert!(
        message.starts_with("cloudwatch DescribeAlarms refused (403): SignatureDoesNotMatch: "),
        "{message}"
    );
    assert!(!message.contains('\n'));
    let records = standin.drain();
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0]["verified"], false,
        "the stand-in refused the signature"
    );
    assert_eq!(publishes(&records).len(), 0);
    let output = format!("{message} {:?} {}", lambda.lines(), lambda.stderr());
    assert_no_secret(&output);
    assert!(!output.contains("the-wrong-secret-value"));
}

/// Hostile answers: 1 MiB, garbage, a redirect (not followed), the same NextToken forever, and a
/// peer that waits 30 s (given up after the 5 s request timeout): each a failed run, none a hang.
#[tokio::test]
async fn hostile_answers_are_bounded() {
    let Some(standin) = StandIn::start(1) else {
        return;
    };
    standin.set_alarms(&[("attic", "ALARM", 20), ("office", "ALARM", 20)]);
    let cases = [
        ("/huge/", "over 262144 bytes"),
        ("/garbage/", "not a DescribeAlarmsResponse"),
        ("/redirect/", "refused (307): a redirect, not followed"),
        ("/loop/", "the same NextToken twice"),
        ("/slow/", "timed out"),
    ];
    for (path, expected) in cases {
        // A Runtime API of its own per case: the killed process's pending `next` must not take
        // the next case's event.
        let api = RuntimeApi::start().await;
        let lambda = start(&api, &env(&standin, path, SECRET));
        let started = Instant::now();
        let (kind, message) = error_of(&api.invoke(&scheduled_event()).await);
        assert_eq!(kind, "Reminders.Failed", "{path}");
        assert!(message.contains(expected), "{path}: {message}");
        assert!(
            started.elapsed() < Duration::from_secs(9),
            "{path} took {:?}",
            started.elapsed()
        );
        assert_no_secret(&format!("{message} {}", lambda.stderr()));
        drop(lambda);
    }
    let records = standin.drain();
    assert!(
        records.iter().all(|r| r["path"] != "/trap/"),
        "a redirect was followed"
    );
    assert_eq!(publishes(&records).len(), 0);
}

/// The role's configuration is checked at start (an init error naming the variable), and an event
/// that is not EventBridge's scheduled event (a Function URL request) does nothing.
#[tokio::test]
async fn only_a_scheduled_event_starts_a_run() {
    let Some(standin) = StandIn::start(100) else {
        return;
    };
    standin.set_alarms(&[("attic", "ALARM", 20)]);
    let api = RuntimeApi::start().await;
    let mut bad = env(&standin, "/", SECRET);
    bad.retain(|(k, _)| *k != "ISP_MONITOR_REMINDER_MINUTES");
    bad.push(("ISP_MONITOR_REMINDER_MINUTES", "7".to_owned()));
    let mut lambda = start(&api, &bad);
    assert_eq!(lambda.exit_code(Duration::from_secs(5)).await, Some(1));
    let errors = api.init_errors();
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].1["errorMessage"]
            .as_str()
            .unwrap()
            .contains("ISP_MONITOR_REMINDER_MINUTES must be one of 5, 10, 15, 30, 60"),
        "{errors:?}"
    );

    let _lambda = start(&api, &env(&standin, "/", SECRET));
    let url_event = support::lambda_runtime::UrlRequest::heartbeat(r#"{"device":"attic"}"#).event();
    let (kind, message) = error_of(&api.invoke(&url_event).await);
    assert_eq!(kind, "Reminders.NotScheduled");
    assert!(
        message.starts_with("not an EventBridge scheduled event"),
        "{message}"
    );
    assert!(standin.drain().is_empty(), "nothing was asked of AWS");
}

/// The heartbeat role (no ISP_MONITOR_ROLE) never reads alarms or reminds, whatever it is sent.
#[tokio::test]
async fn the_heartbeat_role_never_reminds() {
    let Some(standin) = StandIn::start(100) else {
        return;
    };
    standin.set_alarms(&[("attic", "ALARM", 20)]);
    let api = RuntimeApi::start().await;
    let mut heartbeat = env(&standin, "/", SECRET);
    heartbeat.retain(|(k, _)| *k != "ISP_MONITOR_ROLE");
    heartbeat.push((
        "ISP_MONITOR_FUNCTION_KEY",
        support::lambda_runtime::FUNCTION_KEY.to_owned(),
    ));
    let _lambda = start(&api, &heartbeat);
    let outcome = api.invoke(&scheduled_event()).await;
    assert!(matches!(outcome, Outcome::Error { .. }), "{outcome:?}");
    assert!(
        standin.drain().is_empty(),
        "the heartbeat role asked AWS something"
    );
}
