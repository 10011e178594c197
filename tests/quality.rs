//! Connection quality (issue 15, interface A): the real `handler` behind the host stand-in
//! validating the heartbeat's `quality` object in both of the host's modes and recording the
//! `quality_*` dimensions the ingestion stand-in receives.

mod support;

use std::time::Duration;

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
