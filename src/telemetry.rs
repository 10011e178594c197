//! Request telemetry to Application Insights: the exporter pipeline, the names every query relies
//! on (documented in `docs/telemetry.md`), and the flush on shutdown.
//!
//! Spans are built with the OpenTelemetry API directly rather than through `tracing`: the request
//! row's kind, timing, status and attributes are all explicit here, and no log filter can disable
//! them by accident (docs/platform.md §3: an `EnvFilter` at `warn` silences tracing-made spans).

use std::borrow::Cow;
use std::time::{Duration, SystemTime};

use opentelemetry::trace::{Span, SpanKind, Status, Tracer, TracerProvider};
use opentelemetry::{KeyValue, Value};
use opentelemetry_application_insights::Exporter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider,
};

use crate::heartbeat::Heartbeat;

/// The request name of every heartbeat row; the Functions host uses the same name for its own row.
pub const REQUEST_NAME: &str = "Ping";
/// `customDimensions.emitter` on every row we write: the marker that tells our rows from the host's.
pub const EMITTER: &str = "isp-monitor-handler";
/// The `customEvents` name of a reported outage.
pub const OUTAGE_EVENT_NAME: &str = "Outage";
/// The environment variable Azure sets for Application Insights.
pub const CONNECTION_STRING_VAR: &str = "APPLICATIONINSIGHTS_CONNECTION_STRING";

/// Longest attribute value we hand the exporter, in bytes. The exporter cuts values at 8192 bytes
/// without regard to character boundaries and panics on a multi-byte character, killing its export
/// thread (docs/platform.md §3); every value is cut here first, at a boundary, well below that.
pub const MAX_ATTRIBUTE_BYTES: usize = 2048;
/// How long shutdown waits for pending telemetry before the process exits anyway.
pub const SHUTDOWN_FLUSH_TIMEOUT: Duration = Duration::from_secs(4);
/// Per-upload HTTP timeout, so a hanging ingestion endpoint cannot hold the export thread forever.
const UPLOAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Spans waiting for export; beyond this new spans are dropped, which keeps memory bounded when
/// ingestion is slow or down (the SDK default, stated here because the memory bound relies on it).
const MAX_QUEUE_SIZE: usize = 2048;
/// Spans per upload, and the longest a span waits before upload (see the batch config below).
const EXPORT_BATCH_SIZE: usize = 64;
const EXPORT_DELAY: Duration = Duration::from_millis(250);

/// Everything one request row records. Built once per request by the heartbeat core.
#[derive(Debug)]
pub struct RequestRecord<'a> {
    pub start: SystemTime,
    pub end: SystemTime,
    pub status: u16,
    /// The app's own site and the path: never the query string, which can carry the function key
    /// (`?code=`), nor the client's `Host`.
    pub url: &'a str,
    pub client_ip: Option<std::net::IpAddr>,
    /// The platform's request id (`customDimensions.invocation_id`).
    pub request_id: &'a str,
    pub user_agent: &'a str,
    /// Which front end delivered the request (`customDimensions.host_mode`).
    pub front_end: &'static str,
    /// The accepted heartbeat, or what is known of a refused request.
    pub heartbeat: Result<&'a Heartbeat, Refused<'a>>,
}

/// What is known of a refused request: the device its `X-Device` header named (sanitized), and
/// the reason it was refused.
#[derive(Debug)]
pub struct Refused<'a> {
    pub device: &'a str,
    pub reason: &'a str,
}

/// The telemetry pipeline, or nothing when it is switched off.
pub struct Telemetry {
    pipeline: Option<(SdkTracerProvider, SdkTracer)>,
}

/// Why telemetry could not be switched on.
#[derive(Debug)]
pub struct TelemetryConfigError(String);

impl std::fmt::Display for TelemetryConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Telemetry {
    /// Telemetry that records nothing.
    pub fn disabled() -> Telemetry {
        Telemetry { pipeline: None }
    }

    /// Builds the pipeline from a connection string and the `WEBSITE_*` variables.
    ///
    /// Must be called outside the tokio runtime: the batch processor runs on its own thread with a
    /// blocking HTTP client, and an async client there panics with "no reactor running"
    /// (docs/platform.md §3).
    pub fn from_connection_string(
        connection_string: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Telemetry, TelemetryConfigError> {
        check_connection_string(connection_string)?;
        // rustls with the platform verifier: the system's roots, and `SSL_CERT_FILE` when set
        // (rustls-native-certs), so a corporate or test CA needs no code change.
        let client = reqwest::blocking::Client::builder()
            .timeout(UPLOAD_TIMEOUT)
            .build()
            .map_err(|err| TelemetryConfigError(format!("cannot build the HTTPS client: {err}")))?;
        let exporter =
            Exporter::new_from_connection_string(connection_string, client).map_err(|err| {
                TelemetryConfigError(format!("{CONNECTION_STRING_VAR} is malformed: {err}"))
            })?;
        let processor = BatchSpanProcessor::builder(exporter)
            .with_batch_config(
                BatchConfigBuilder::default()
                    .with_max_queue_size(MAX_QUEUE_SIZE)
                    // Small, frequent batches: the export thread serializes and gzips each batch
                    // in one go, and a big burst of that on a 2-core machine delays the requests
                    // sharing its core (p99 at 1,000/s: 4.3 ms with 512-span batches every second).
                    .with_max_export_batch_size(EXPORT_BATCH_SIZE)
                    .with_scheduled_delay(EXPORT_DELAY)
                    .build(),
            )
            .build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_resource(resource(&env))
            .build();
        let tracer = provider.tracer("isp-monitor");
        Ok(Telemetry {
            pipeline: Some((provider, tracer)),
        })
    }

    /// Reads `APPLICATIONINSIGHTS_CONNECTION_STRING` and logs, in one line, whether telemetry is on.
    /// A missing or malformed value leaves telemetry off; serving is never affected.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Telemetry {
        match env(CONNECTION_STRING_VAR).filter(|value| !value.trim().is_empty()) {
            None => {
                tracing::info!("telemetry off: {CONNECTION_STRING_VAR} is not set");
                Telemetry::disabled()
            }
            Some(connection_string) => {
                match Telemetry::from_connection_string(&connection_string, &env) {
                    Ok(telemetry) => {
                        tracing::info!(
                            "telemetry on: sending request telemetry to Application Insights"
                        );
                        telemetry
                    }
                    Err(err) => {
                        tracing::error!("telemetry off: {err}");
                        Telemetry::disabled()
                    }
                }
            }
        }
    }

    /// Records one request row, plus one `Outage` event per reported outage. Never blocks: the
    /// span goes onto the batch processor's bounded queue.
    pub fn record(&self, record: &RequestRecord<'_>) {
        let Some((_, tracer)) = &self.pipeline else {
            return;
        };
        let mut span = tracer
            .span_builder(REQUEST_NAME)
            .with_kind(SpanKind::Server)
            .with_start_time(record.start)
            .with_attributes(request_attributes(record))
            .start(tracer);
        match &record.heartbeat {
            Ok(heartbeat) => {
                for outage in &heartbeat.outages {
                    span.add_event(
                        // The exporter turns a span event of this name into a `customEvents` row.
                        "ai.custom",
                        vec![
                            KeyValue::new("ai.customEvent.name", OUTAGE_EVENT_NAME),
                            KeyValue::new("emitter", EMITTER),
                            KeyValue::new("device", bounded(&heartbeat.device)),
                            KeyValue::new("outage_id", bounded(&outage.id)),
                            KeyValue::new(
                                "start",
                                outage
                                    .start
                                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                            ),
                            KeyValue::new(
                                "end",
                                outage
                                    .end
                                    .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                            ),
                            KeyValue::new("duration_s", outage.duration_seconds()),
                            KeyValue::new("cause", outage.cause.as_str()),
                            KeyValue::new("detail", bounded(&outage.detail)),
                        ],
                    );
                }
            }
            Err(refused) => {
                span.set_status(Status::error(bounded_str(refused.reason).into_owned()))
            }
        }
        span.end_with_timestamp(record.end);
    }

    /// Flushes pending telemetry, waiting at most [`SHUTDOWN_FLUSH_TIMEOUT`]. Blocks: call it from
    /// `spawn_blocking` or outside the runtime, after the server has stopped.
    pub fn shutdown(&self) {
        if let Some((provider, _)) = &self.pipeline
            && let Err(err) = provider.shutdown_with_timeout(SHUTDOWN_FLUSH_TIMEOUT)
        {
            tracing::warn!("telemetry flush incomplete at shutdown: {err}");
        }
    }
}

/// The row's attributes. Each heartbeat field is one line here; a refused request records its
/// fields as empty, so every row has the same keys.
fn request_attributes(record: &RequestRecord<'_>) -> Vec<KeyValue> {
    let beat = record.heartbeat.as_ref().ok();
    let count = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
    let client_ip = record.client_ip.map(|ip| ip.to_string());
    let client_ip_text = client_ip.as_deref().unwrap_or("unknown");
    let device = match &record.heartbeat {
        Ok(beat) => beat.device.as_str(),
        Err(refused) => refused.device,
    };
    let mut attributes = vec![
        KeyValue::new("emitter", EMITTER),
        KeyValue::new("device", bounded(device)),
        KeyValue::new("note", bounded(beat.map_or("", |b| &b.note))),
        KeyValue::new(
            "agent_version",
            bounded(beat.and_then(|b| b.agent_version.as_deref()).unwrap_or("")),
        ),
        KeyValue::new("seq", count(beat.and_then(|b| b.seq))),
        KeyValue::new("rtt_ms", count(beat.and_then(|b| b.rtt_ms))),
        KeyValue::new("outages", beat.map_or(0, |b| b.outages.len() as i64)),
        KeyValue::new("client_ip", client_ip_text.to_owned()),
        KeyValue::new("invocation_id", bounded(record.request_id)),
        KeyValue::new("host_mode", record.front_end),
        KeyValue::new("user_agent", bounded(record.user_agent)),
        // `requests.resultCode` and `requests.url`. The method is deliberately not recorded as
        // `http.request.method`: the exporter would rename the row "POST /…" instead of "Ping".
        KeyValue::new("http.response.status_code", i64::from(record.status)),
        KeyValue::new("url.full", bounded(record.url)),
        // `requests.source`; `client_IP` only reads the literal `ai.location.ip` tag.
        KeyValue::new("client.address", client_ip_text.to_owned()),
    ];
    if let Some(ip) = client_ip {
        attributes.push(KeyValue::new("ai.location.ip", ip));
    }
    if let Err(refused) = &record.heartbeat {
        attributes.push(KeyValue::new("error", bounded(refused.reason)));
    }
    if let Some(quality) = beat.and_then(|b| b.quality.as_ref()) {
        attributes.extend(quality_attributes(quality));
    }
    attributes
}

/// The `quality_*` keys (interface A, docs/telemetry.md), only on rows whose heartbeat carried
/// quality: a row without them is an agent that does not measure, not a perfect connection. A
/// null figure is recorded as empty, as the other optional counts are.
fn quality_attributes(quality: &crate::heartbeat::Quality) -> [KeyValue; 6] {
    let ms = |value: Option<f64>| value.map(|ms| ms.to_string()).unwrap_or_default();
    [
        KeyValue::new("quality_probes", i64::from(quality.probes)),
        KeyValue::new("quality_lost", i64::from(quality.lost)),
        KeyValue::new("quality_loss_pct", quality.loss_pct().to_string()),
        KeyValue::new("quality_rtt_p50_ms", ms(quality.rtt_p50_ms)),
        KeyValue::new("quality_rtt_p95_ms", ms(quality.rtt_p95_ms)),
        KeyValue::new("quality_dns_ms", ms(quality.dns_ms)),
    ]
}

/// Cuts a value to [`MAX_ATTRIBUTE_BYTES`] at a character boundary.
pub(crate) fn bounded(text: &str) -> Value {
    Value::String(bounded_str(text).into_owned().into())
}

fn bounded_str(text: &str) -> Cow<'_, str> {
    if text.len() <= MAX_ATTRIBUTE_BYTES {
        return Cow::Borrowed(text);
    }
    let mut cut = MAX_ATTRIBUTE_BYTES;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    Cow::Borrowed(&text[..cut])
}

/// Cloud role name and instance: the function app and the instance that served the request.
fn resource(env: &impl Fn(&str) -> Option<String>) -> Resource {
    let role = env("WEBSITE_SITE_NAME").unwrap_or_else(|| "isp-monitor-local".to_owned());
    let instance = env("WEBSITE_INSTANCE_ID")
        .or_else(|| env("COMPUTERNAME"))
        .or_else(|| env("HOSTNAME"))
        .unwrap_or_else(crate::hostname);
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", role),
            KeyValue::new("service.instance.id", instance),
        ])
        .build()
}

/// Checks the parts the exporter's own parser accepts too loosely, so a typo is reported by name
/// instead of silently sending telemetry nowhere.
fn check_connection_string(connection_string: &str) -> Result<(), TelemetryConfigError> {
    let malformed = |what: String| {
        TelemetryConfigError(format!("{CONNECTION_STRING_VAR} is malformed: {what}"))
    };
    let mut has_key = false;
    let parts: Vec<&str> = connection_string
        .split(';')
        .filter(|part| !part.trim().is_empty())
        .collect();
    for (index, part) in parts.iter().enumerate() {
        // The part itself is never shown, not even in part: it may be a bare key.
        let Some((name, value)) = part.split_once('=') else {
            return Err(malformed(format!(
                "part {} of {} is not Name=Value",
                index + 1,
                parts.len()
            )));
        };
        match name.trim().to_ascii_lowercase().as_str() {
            "instrumentationkey" if !value.trim().is_empty() => has_key = true,
            "ingestionendpoint"
                if !(value.starts_with("https://") || value.starts_with("http://")) =>
            {
                return Err(malformed(
                    "IngestionEndpoint must start with https://".to_owned(),
                ));
            }
            _ => {}
        }
    }
    if !has_key {
        return Err(malformed("InstrumentationKey is missing".to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A multi-byte character straddling the limit is dropped whole, never split.
    #[test]
    fn bounded_cuts_at_a_character_boundary() {
        let text = format!("{}€€", "a".repeat(MAX_ATTRIBUTE_BYTES - 1));
        let Value::String(cut) = bounded(&text) else {
            unreachable!()
        };
        assert_eq!(cut.as_str().len(), MAX_ATTRIBUTE_BYTES - 1);
        assert_eq!(bounded("short"), Value::from("short"));
    }

    /// A malformed connection string names the problem and does not echo the key.
    #[test]
    fn malformed_connection_strings_are_named() {
        let err = check_connection_string("IngestionEndpoint=https://x/").unwrap_err();
        assert!(
            err.to_string().ends_with("InstrumentationKey is missing"),
            "{err}"
        );
        let err = check_connection_string("InstrumentationKey=abc;IngestionEndpoint=ftp://x")
            .unwrap_err();
        assert!(
            err.to_string()
                .contains("IngestionEndpoint must start with https://"),
            "{err}"
        );
        // A string that is only a key (no `Name=`) is not echoed, not even its first characters.
        let key = "8c1e4b2a-93d7-4f60-b5a1-0e7c2d9f3a14";
        let err = check_connection_string(key).unwrap_err().to_string();
        for piece in key.as_bytes().windows(4) {
            let piece = std::str::from_utf8(piece).unwrap();
            assert!(!err.contains(piece), "{err} shows {piece:?}");
        }
        assert!(
            check_connection_string("InstrumentationKey=abc;IngestionEndpoint=https://x/").is_ok()
        );
    }
}
