//! The CloudWatch lines: what the Lambda function prints, one JSON object per line on stdout,
//! which Lambda sends to the function's CloudWatch Logs group (docs/platform.md §12). Every
//! heartbeat answer is exactly one line (the core writes none of its own on AWS):
//! - an accepted heartbeat: `event: heartbeat`, which is also a CloudWatch embedded metric format
//!   (EMF) document, so CloudWatch extracts the metric `ISPMonitor/Heartbeat` with the dimension
//!   `Device` from it, without any API call (docs/platform.md §12);
//! - each outage report it carried: `event: outage`, one line per outage;
//! - a refusal (4xx, wrong path and key refusals included): `event: refused`.
//!
//! docs/telemetry.md ("Telemetry on AWS") shows the exact shapes; queries and the alarm
//! simulation depend on these names. Nothing here ever sees the function key.
//!
//! Lines are written synchronously, whole, before the answer goes back: Lambda may freeze the
//! process as soon as it has the answer, so a line still queued in a thread could be lost.

use std::io::Write;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};

use crate::handler::core::Recorder;
use crate::heartbeat::Heartbeat;
use crate::outage::OutageReport;
use crate::telemetry::RequestRecord;

/// The EMF namespace and metric names (interface C): alarms and dashboards use these.
pub const NAMESPACE: &str = "ISPMonitor";
pub const DEVICE_DIMENSION: &str = "Device";
pub const HEARTBEAT_METRIC: &str = "Heartbeat";
/// Connection quality: the share of connect attempts lost (interface A, `Quality::loss_pct`).
pub const LOSS_METRIC: &str = "LossPct";
/// Connection quality: the 95th percentile connect time, when any attempt connected.
pub const RTT_P95_METRIC: &str = "RttP95Ms";

/// One metric of a heartbeat's EMF document: a root member named `name` holding `value`, declared
/// in `CloudWatchMetrics[0].Metrics` with its unit.
struct Metric {
    name: &'static str,
    unit: &'static str,
    value: Value,
}

/// The metrics an accepted heartbeat carries. Always `Heartbeat` (1, Count: one per heartbeat,
/// so the per-device Sum over a period counts heartbeats). A heartbeat that carries connection
/// quality adds `LossPct` (Percent) and, when any attempt connected, `RttP95Ms` (Milliseconds):
/// a heartbeat without quality adds neither, so an agent that does not measure never reads as a
/// perfect connection.
fn metrics(heartbeat: &Heartbeat) -> Vec<Metric> {
    let mut metrics = vec![Metric {
        name: HEARTBEAT_METRIC,
        unit: "Count",
        value: json!(1),
    }];
    if let Some(quality) = &heartbeat.quality {
        metrics.push(Metric {
            name: LOSS_METRIC,
            unit: "Percent",
            value: json!(quality.loss_pct()),
        });
        if let Some(p95) = quality.rtt_p95_ms {
            metrics.push(Metric {
                name: RTT_P95_METRIC,
                unit: "Milliseconds",
                value: json!(p95),
            });
        }
    }
    metrics
}

/// Writes the lines to stdout (on Lambda) or any writer (in tests).
pub struct CloudWatchLines {
    out: Mutex<Box<dyn Write + Send>>,
}

impl CloudWatchLines {
    pub fn stdout() -> CloudWatchLines {
        CloudWatchLines::to(std::io::stdout())
    }

    pub fn to(out: impl Write + Send + 'static) -> CloudWatchLines {
        CloudWatchLines {
            out: Mutex::new(Box::new(out)),
        }
    }

    /// Writes one line in a single write, so concurrent lines never interleave.
    pub fn write(&self, line: &Value) {
        let mut bytes = line.to_string().into_bytes();
        bytes.push(b'\n');
        let mut out = match self.out.lock() {
            Ok(out) => out,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Nothing useful can be done when stdout is gone; the answer still goes back.
        let _ = out.write_all(&bytes).and_then(|()| out.flush());
    }

    /// A refusal line: status, one-line reason, and what is known of the sender.
    pub fn refused(
        &self,
        status: u16,
        error: &str,
        device: &str,
        client_ip: &str,
        request_id: &str,
    ) {
        self.write(&json!({
            "event": "refused",
            "status": status,
            "error": error,
            DEVICE_DIMENSION: device,
            "client_ip": client_ip,
            "request_id": request_id,
        }));
    }

    /// An outage report the notifier could not pass on (it is still in its `outage` line).
    pub fn notify_failed(&self, device: &str, outage_id: &str, error: &str, request_id: &str) {
        self.write(&json!({
            "event": "notify_failed",
            DEVICE_DIMENSION: device,
            "outage_id": outage_id,
            "error": error,
            "request_id": request_id,
        }));
    }
}

/// The accepted heartbeat's line: its fields, and the EMF document around its metrics.
pub fn heartbeat_line(record: &RequestRecord<'_>, heartbeat: &Heartbeat) -> Value {
    let metrics = metrics(heartbeat);
    let declared: Vec<Value> = metrics
        .iter()
        .map(|metric| json!({"Name": metric.name, "Unit": metric.unit}))
        .collect();
    let mut line = Map::new();
    line.insert(
        "_aws".to_owned(),
        json!({
            "Timestamp": millis(record.start),
            "CloudWatchMetrics": [{
                "Namespace": NAMESPACE,
                "Dimensions": [[DEVICE_DIMENSION]],
                "Metrics": declared,
            }],
        }),
    );
    line.insert("event".to_owned(), json!("heartbeat"));
    line.insert(DEVICE_DIMENSION.to_owned(), json!(heartbeat.device));
    for metric in metrics {
        line.insert(metric.name.to_owned(), metric.value);
    }
    quality_fields(&mut line, heartbeat);
    line.insert("client_ip".to_owned(), json!(ip_text(record)));
    if let Some(seq) = heartbeat.seq {
        line.insert("seq".to_owned(), json!(seq));
    }
    if let Some(rtt_ms) = heartbeat.rtt_ms {
        line.insert("rtt_ms".to_owned(), json!(rtt_ms));
    }
    if let Some(version) = &heartbeat.agent_version {
        line.insert("agent_version".to_owned(), json!(version));
    }
    line.insert("note".to_owned(), json!(heartbeat.note));
    line.insert("outages".to_owned(), json!(heartbeat.outages.len()));
    line.insert("request_id".to_owned(), json!(record.request_id));
    Value::Object(line)
}

/// The quality figures as plain fields of the line (not metrics: no cost but the bytes), under
/// the names of the Azure `customDimensions` (docs/telemetry.md): `quality_probes` and
/// `quality_lost` whenever the heartbeat carried quality; `quality_rtt_p50_ms` and
/// `quality_rtt_p95_ms` only when both were measured (any attempt connected), `quality_dns_ms`
/// only when the name resolved. Where Azure writes an empty value the line has no field, which
/// Logs Insights' `count(f)`, `sum(f)` and `avg(f)` leave out (queries/report-aws/quality.logsinsights,
/// docs/platform.md §16). `quality_loss_pct` is not repeated: it is the `LossPct` metric.
fn quality_fields(line: &mut Map<String, Value>, heartbeat: &Heartbeat) {
    let Some(quality) = &heartbeat.quality else {
        return;
    };
    line.insert("quality_probes".to_owned(), json!(quality.probes));
    line.insert("quality_lost".to_owned(), json!(quality.lost));
    if let (Some(p50), Some(p95)) = (quality.rtt_p50_ms, quality.rtt_p95_ms) {
        line.insert("quality_rtt_p50_ms".to_owned(), json!(p50));
        line.insert("quality_rtt_p95_ms".to_owned(), json!(p95));
    }
    if let Some(dns) = quality.dns_ms {
        line.insert("quality_dns_ms".to_owned(), json!(dns));
    }
}

/// One reported outage's line.
pub fn outage_line(device: &str, outage: &OutageReport, request_id: &str) -> Value {
    let rfc3339 = |time: &chrono::DateTime<chrono::Utc>| {
        time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    json!({
        "event": "outage",
        DEVICE_DIMENSION: device,
        "outage_id": outage.id,
        "start": rfc3339(&outage.start),
        "end": rfc3339(&outage.end),
        "duration_s": outage.duration_seconds(),
        "cause": outage.cause.as_str(),
        "detail": outage.detail,
        "request_id": request_id,
    })
}

impl Recorder for CloudWatchLines {
    fn record(&self, record: &RequestRecord<'_>) {
        match &record.heartbeat {
            Ok(heartbeat) => {
                self.write(&heartbeat_line(record, heartbeat));
                for outage in &heartbeat.outages {
                    self.write(&outage_line(&heartbeat.device, outage, record.request_id));
                }
            }
            Err(refused) => self.refused(
                record.status,
                refused.reason,
                refused.device,
                &ip_text(record),
                record.request_id,
            ),
        }
    }

    fn replaces_log_lines(&self) -> bool {
        true
    }

    fn not_found(&self, reason: &str) {
        self.write(&json!({"event": "refused", "status": 404, "error": reason}));
    }
}

fn ip_text(record: &RequestRecord<'_>) -> String {
    record
        .client_ip
        .map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())
}

/// Milliseconds since the Unix epoch: EMF's `Timestamp` (docs/platform.md §12).
fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}
