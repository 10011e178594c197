//! The SNS publisher (src/notify/sns.rs) against a loopback SNS stand-in that checks every
//! signature with botocore's signer (tests/aws/sns_standin.py): AWS's own SDK code, not ours.
//! Needs tests/aws/.venv (tests/aws/install.sh); without it each test says so and passes,
//! except under CI, where it fails.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use isp_monitor::notify::sigv4::Credentials;
use isp_monitor::notify::{NotifyError, SnsPublisher};
use support::aws_standin::AwsStandIn;

const TOPIC: &str = "arn:aws:sns:eu-west-1:123456789012:ispmon-alerts";
const KEY_ID: &str = "AKIDSTANDINTEST1";
const SECRET: &str = "stand-in/secret+KEY=value0123456789";
const TOKEN: &str = "IQoJb3JpZ2luX2VjEStandInSessionToken//value==";

/// The SNS stand-in with this file's credentials (and, given one, a session token it requires).
fn start_standin(token: Option<&str>) -> Option<AwsStandIn> {
    let mut args = vec![
        "--access-key",
        KEY_ID,
        "--secret",
        SECRET,
        "--region",
        "eu-west-1",
        "--topic",
        TOPIC,
    ];
    if let Some(token) = token {
        args.extend(["--token", token]);
    }
    AwsStandIn::start(args)
}

fn credentials(secret: &str, token: Option<&str>) -> Credentials {
    Credentials {
        access_key_id: KEY_ID.to_owned(),
        secret_access_key: secret.to_owned(),
        session_token: token.map(str::to_owned),
    }
}

fn assert_no_secret(err: &NotifyError) {
    let text = format!("{err} {err:?}");
    for secret in [SECRET, TOKEN, KEY_ID] {
        assert!(!text.contains(secret), "a secret in the error: {text}");
    }
}

/// A publish with temporary credentials is signed exactly as botocore signs it, and its form
/// fields (non-ASCII message, subject made ASCII) arrive intact.
#[tokio::test]
async fn publish_is_signed_as_botocore_signs_it() {
    let Some(standin) = start_standin(Some(TOKEN)) else {
        return;
    };
    let publisher = SnsPublisher::new(
        TOPIC,
        Some(&standin.url("/")),
        credentials(SECRET, Some(TOKEN)),
    )
    .unwrap();
    let message =
        "attic was offline for 3 min 2 s.\nCause: your internet provider — ünïcode & symbols =+/%";
    let id = publisher
        .publish("ISP Monitor: büro offline", message)
        .await
        .expect("published");
    assert_eq!(id.len(), 36, "a MessageId: {id}");
    let record = standin.next_record();
    assert_eq!(record["verified"], true, "{record}");
    assert_eq!(record["params"]["Message"], message);
    assert_eq!(record["params"]["Subject"], "ISP Monitor: b?ro offline");
    assert_eq!(record["params"]["TopicArn"], TOPIC);
    let signed: Vec<&str> = record["signed_headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(
        signed,
        ["content-type", "host", "x-amz-date", "x-amz-security-token"]
    );
}

/// Long-term credentials (no token) sign too.
#[tokio::test]
async fn publish_without_a_session_token() {
    let Some(standin) = start_standin(None) else {
        return;
    };
    let publisher =
        SnsPublisher::new(TOPIC, Some(&standin.url("/")), credentials(SECRET, None)).unwrap();
    publisher
        .publish("subject", "message")
        .await
        .expect("published");
    assert_eq!(standin.next_record()["verified"], true);
}

/// The stand-in can fail: a wrong secret is refused (403 SignatureDoesNotMatch), and the error
/// keeps no secret even though the stand-in echoes the canonical request with the token in it.
#[tokio::test]
async fn a_wrong_signature_is_refused_and_the_error_shows_no_secret() {
    let Some(standin) = start_standin(Some(TOKEN)) else {
        return;
    };
    let publisher = SnsPublisher::new(
        TOPIC,
        Some(&standin.url("/")),
        credentials("not-the-secret-at-all", Some(TOKEN)),
    )
    .unwrap();
    let err = publisher.publish("s", "m").await.unwrap_err();
    assert!(
        matches!(err, NotifyError::Refused { status: 403, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("SignatureDoesNotMatch"), "{err}");
    assert!(
        err.to_string().contains("<redacted>"),
        "the echo was redacted: {err}"
    );
    assert_no_secret(&err);
    let record = standin.next_record();
    assert_eq!(record["verified"], false);
    assert_eq!(record["reason"], "signature does not match botocore's");
}

/// A redirect is not followed (the request carries a signed session token).
#[tokio::test]
async fn redirects_are_not_followed() {
    let Some(standin) = start_standin(Some(TOKEN)) else {
        return;
    };
    let publisher = SnsPublisher::new(
        TOPIC,
        Some(&standin.url("/redirect/")),
        credentials(SECRET, Some(TOKEN)),
    )
    .unwrap();
    let err = publisher.publish("s", "m").await.unwrap_err();
    assert!(
        matches!(err, NotifyError::Refused { status: 307, .. }),
        "{err}"
    );
    assert_eq!(standin.next_record()["path"], "/redirect/");
    assert!(
        standin.drain(Duration::from_millis(500)).is_empty(),
        "the redirect target was reached"
    );
}

/// A peer that does not answer is given up on at the publisher's timeout.
#[tokio::test]
async fn a_silent_peer_times_out() {
    let Some(standin) = start_standin(Some(TOKEN)) else {
        return;
    };
    let publisher = SnsPublisher::new(
        TOPIC,
        Some(&standin.url("/slow/")),
        credentials(SECRET, Some(TOKEN)),
    )
    .unwrap()
    .with_timeouts(Duration::from_secs(1), Duration::from_secs(1))
    .unwrap();
    let started = Instant::now();
    let err = publisher.publish("s", "m").await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, NotifyError::Transport(_)) && err.to_string().contains("timed out"),
        "{err}"
    );
    assert_no_secret(&err);
}

/// An answer over the bound is not read to its end.
#[tokio::test]
async fn an_oversized_answer_is_refused() {
    let Some(standin) = start_standin(Some(TOKEN)) else {
        return;
    };
    let publisher = SnsPublisher::new(
        TOPIC,
        Some(&standin.url("/huge/")),
        credentials(SECRET, Some(TOKEN)),
    )
    .unwrap();
    let err = publisher.publish("s", "m").await.unwrap_err();
    assert!(matches!(err, NotifyError::BadResponse(_)), "{err}");
    assert!(err.to_string().contains("over 16384 bytes"), "{err}");
}

/// Nothing listening: a clear transport error, quickly, and no secret in it.
#[tokio::test]
async fn no_peer_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let publisher = SnsPublisher::new(
        TOPIC,
        Some(&format!("http://127.0.0.1:{port}/")),
        credentials(SECRET, Some(TOKEN)),
    )
    .unwrap();
    let err = publisher.publish("s", "m").await.unwrap_err();
    assert!(matches!(err, NotifyError::Transport(_)), "{err}");
    assert_no_secret(&err);
    let _ = std::io::stdout().flush();
}
