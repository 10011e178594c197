//! The report's four formats. Each is a pure function of the [`Report`]; times are UTC.
//!
//! - `table`: for a terminal, one block per device.
//! - `json`: the [`Report`] itself (schema `isp-monitor-report`, a `version` field), pretty-printed.
//! - `csv`: RFC 4180 (CRLF line ends, fields with `,` `"` CR or LF quoted, quotes doubled); one
//!   header and one row per record, its kind in the first column (`summary`, `outage`,
//!   `ip_change`, `day`), so that a spreadsheet or a parser reads it as one table.
//! - `html`: one self-contained page: inline CSS and SVG, no script, no font or image from
//!   elsewhere; a timeline of outages per device and daily uptime bars; `@page` sets A4.

use std::fmt::Write as _;
use std::str::FromStr;

use chrono::{DateTime, Utc};

use super::{DeviceReport, OutageRow, Report};
use crate::outage::Cause;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Table,
    Json,
    Csv,
    Html,
}

impl FromStr for Format {
    type Err = String;
    fn from_str(text: &str) -> Result<Format, String> {
        match text {
            "table" => Ok(Format::Table),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "html" => Ok(Format::Html),
            other => Err(format!(
                "--format {:?} is not one of table, json, csv, html",
                other.chars().take(40).collect::<String>()
            )),
        }
    }
}

/// The report in `format`.
pub fn render(report: &Report, format: Format) -> String {
    match format {
        Format::Table => table(report),
        Format::Json => {
            let mut text = serde_json::to_string_pretty(report).unwrap_or_default();
            text.push('\n');
            text
        }
        Format::Csv => csv(report),
        Format::Html => html(report),
    }
}

/// `2026-11-03 10:00:00`.
fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `45s`, `7m30s`, `2h05m`, `3d04h`.
pub fn duration(seconds: i64) -> String {
    let s = seconds.max(0);
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else if s < 86400 {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    } else {
        format!("{}d{:02}h", s / 86400, s % 86400 / 3600)
    }
}

fn pct(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v}%"))
}

fn ms(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_owned(), |v| format!("{v} ms"))
}

fn source_words(source: &str) -> &str {
    match source {
        "agent" => "the agent's local history",
        "azure" => "Azure Application Insights",
        "aws" => "AWS CloudWatch Logs",
        other => other,
    }
}

/// Columns padded to their widest cell, two spaces apart, no trailing blanks.
fn columns(head: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return "    (none)\n".to_owned();
    }
    let mut widths: Vec<usize> = head.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let head: Vec<String> = head.iter().map(|h| (*h).to_owned()).collect();
    for row in std::iter::once(&head).chain(rows) {
        let mut line = String::from("    ");
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            line.push_str(cell);
            line.push_str(&" ".repeat(pad + 2));
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn table(report: &Report) -> String {
    let mut out = format!(
        "ISP Monitor report {} to {} UTC, from {}; generated {} UTC\n",
        time(report.from),
        time(report.to),
        source_words(&report.source),
        time(report.generated_at)
    );
    if let Some(silence) = report.silence_minutes {
        let _ = writeln!(
            out,
            "A cloud gap is no heartbeat for more than {silence} minutes."
        );
    }
    for note in &report.notes {
        let _ = writeln!(out, "Note: {note}");
    }
    if report.devices.is_empty() {
        out.push_str("\nNo device was seen in this period.\n");
    }
    for device in &report.devices {
        out.push_str(&device_table(device));
    }
    out
}

fn device_table(d: &DeviceReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\nDevice {} (observed {} to {} UTC)",
        d.device,
        time(d.observed_from),
        time(d.observed_to)
    );
    let _ = writeln!(
        out,
        "  Uptime (ISP):   {} of {} observed",
        pct(d.uptime_pct),
        duration(d.observed_s)
    );
    let _ = writeln!(
        out,
        "  ISP downtime:   {} in {} outage(s), longest {}",
        duration(d.isp_downtime_s),
        d.isp_outages,
        duration(d.longest_isp_outage_s)
    );
    let _ = writeln!(
        out,
        "  All outages:    {} in {} outage(s), longest {}",
        duration(d.downtime_s),
        d.outages_total,
        duration(d.longest_outage_s)
    );
    let _ = writeln!(
        out,
        "  Not the ISP's doing: local network {}, agent offline {}, cloud side {}, undetermined {}",
        duration(d.not_isp.lan_s),
        duration(d.not_isp.agent_offline_s),
        duration(d.not_isp.cloud_side_s),
        duration(d.not_isp.undetermined_s)
    );
    out.push_str("  Outages\n");
    let rows: Vec<Vec<String>> = d
        .outages
        .iter()
        .map(|o| {
            vec![
                time(o.start),
                if o.ongoing {
                    "ongoing".to_owned()
                } else {
                    time(o.end)
                },
                duration(o.duration_s),
                o.cause.as_str().to_owned(),
                if o.isps { "yes" } else { "no" }.to_owned(),
                o.witness.as_str().to_owned(),
                o.cause_in_words.clone(),
            ]
        })
        .collect();
    out.push_str(&columns(
        &[
            "START (UTC)",
            "END (UTC)",
            "DURATION",
            "CAUSE",
            "ISP",
            "WITNESS",
            "WHAT FAILED",
        ],
        &rows,
    ));
    out.push_str("  Public IP changes\n");
    let rows: Vec<Vec<String>> = d
        .ip_changes
        .iter()
        .map(|c| vec![time(c.at), c.from.clone(), c.to.clone()])
        .collect();
    out.push_str(&columns(&["CHANGED (UTC)", "FROM", "TO"], &rows));
    out.push_str("  Daily\n");
    let rows: Vec<Vec<String>> = d
        .days
        .iter()
        .map(|day| {
            let q = day.quality.as_ref();
            vec![
                day.date.to_string(),
                pct(day.uptime_pct),
                duration(day.isp_downtime_s),
                q.map_or_else(|| "-".to_owned(), |q| format!("{}%", q.loss_pct)),
                ms(q.and_then(|q| q.rtt_p50_ms)),
                ms(q.and_then(|q| q.rtt_p95_ms)),
                ms(q.and_then(|q| q.dns_ms)),
            ]
        })
        .collect();
    out.push_str(&columns(
        &[
            "DATE", "UPTIME", "ISP DOWN", "LOSS", "RTT P50", "RTT P95", "DNS",
        ],
        &rows,
    ));
    out
}

// ------------------------------------------------------------------------------------------- CSV

/// The CSV header: every record kind uses the columns that apply to it and leaves the others empty.
pub const CSV_HEADER: [&str; 20] = [
    "record",
    "device",
    "start_utc",
    "end_utc",
    "duration_s",
    "cause",
    "cause_in_words",
    "counts_against_isp",
    "witness",
    "uptime_pct",
    "isp_downtime_s",
    "isp_outages",
    "not_isp_s",
    "probes",
    "lost",
    "loss_pct",
    "rtt_p50_ms",
    "rtt_p95_ms",
    "dns_ms",
    "detail",
];

/// One field per RFC 4180 §2: quoted when it holds a comma, a quote, CR or LF; quotes doubled.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

fn opt<T: ToString>(value: Option<T>) -> String {
    value.map(|v| v.to_string()).unwrap_or_default()
}

/// One CSV record: each named cell in its header column, every other column empty.
fn record(cells: &[(&str, String)]) -> Vec<String> {
    let mut row = vec![String::new(); CSV_HEADER.len()];
    for (name, value) in cells {
        let column = CSV_HEADER
            .iter()
            .position(|header| header == name)
            .unwrap_or_else(|| unreachable!("no CSV column {name}"));
        row[column].clone_from(value);
    }
    row
}

fn csv(report: &Report) -> String {
    let mut out = String::new();
    let mut line = |cells: Vec<String>| {
        let cells: Vec<String> = cells.iter().map(|c| field(c)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    };
    line(CSV_HEADER.iter().map(|h| (*h).to_owned()).collect());
    let rfc = |at: DateTime<Utc>| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    for d in &report.devices {
        let not_isp = d.not_isp.lan_s
            + d.not_isp.agent_offline_s
            + d.not_isp.cloud_side_s
            + d.not_isp.undetermined_s;
        line(record(&[
            ("record", "summary".into()),
            ("device", d.device.clone()),
            ("start_utc", rfc(d.observed_from)),
            ("end_utc", rfc(d.observed_to)),
            ("duration_s", d.observed_s.to_string()),
            ("uptime_pct", opt(d.uptime_pct)),
            ("isp_downtime_s", d.isp_downtime_s.to_string()),
            ("isp_outages", d.isp_outages.to_string()),
            ("not_isp_s", not_isp.to_string()),
            (
                "detail",
                format!(
                    "lan {}s, agent offline {}s, cloud side {}s, undetermined {}s",
                    d.not_isp.lan_s,
                    d.not_isp.agent_offline_s,
                    d.not_isp.cloud_side_s,
                    d.not_isp.undetermined_s
                ),
            ),
        ]));
        for o in &d.outages {
            let (isp_s, not_isp_s) = if o.isps {
                (o.duration_s, 0)
            } else {
                (0, o.duration_s)
            };
            line(record(&[
                ("record", "outage".into()),
                ("device", d.device.clone()),
                ("start_utc", rfc(o.start)),
                (
                    "end_utc",
                    if o.ongoing { String::new() } else { rfc(o.end) },
                ),
                ("duration_s", o.duration_s.to_string()),
                ("cause", o.cause.as_str().into()),
                ("cause_in_words", o.cause_in_words.clone()),
                (
                    "counts_against_isp",
                    if o.isps { "yes" } else { "no" }.into(),
                ),
                ("witness", o.witness.as_str().into()),
                ("isp_downtime_s", isp_s.to_string()),
                ("not_isp_s", not_isp_s.to_string()),
                ("detail", o.detail.clone()),
            ]));
        }
        for c in &d.ip_changes {
            line(record(&[
                ("record", "ip_change".into()),
                ("device", d.device.clone()),
                ("start_utc", rfc(c.at)),
                ("detail", format!("{} -> {}", c.from, c.to)),
            ]));
        }
        for day in &d.days {
            let q = day.quality.as_ref();
            line(record(&[
                ("record", "day".into()),
                ("device", d.device.clone()),
                ("start_utc", day.date.to_string()),
                ("duration_s", day.observed_s.to_string()),
                ("uptime_pct", opt(day.uptime_pct)),
                ("isp_downtime_s", day.isp_downtime_s.to_string()),
                ("probes", opt(q.map(|q| q.probes))),
                ("lost", opt(q.map(|q| q.lost))),
                ("loss_pct", opt(q.map(|q| q.loss_pct))),
                ("rtt_p50_ms", opt(q.and_then(|q| q.rtt_p50_ms))),
                ("rtt_p95_ms", opt(q.and_then(|q| q.rtt_p95_ms))),
                ("dns_ms", opt(q.and_then(|q| q.dns_ms))),
            ]));
        }
    }
    out
}

// ------------------------------------------------------------------------------------------ HTML

/// Text for HTML element content and quoted attributes.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// The colour of a cause's class on the timeline (and its CSS class).
fn class(cause: Cause) -> &'static str {
    match cause {
        Cause::Isp | Cause::Dns => "isp",
        Cause::Lan => "lan",
        Cause::AgentOffline => "offline",
        Cause::Cloud | Cause::Config => "cloud",
        Cause::Unknown => "unknown",
    }
}

const CSS: &str = "@page{size:A4;margin:12mm}
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;font-size:10pt;color:#111;margin:0 auto;max-width:190mm}
h1{font-size:15pt;margin:0 0 2mm}h2{font-size:12pt;margin:6mm 0 2mm;border-bottom:1px solid #999}
h3{font-size:10pt;margin:4mm 0 1mm}
table{border-collapse:collapse;width:100%;margin:1mm 0 3mm}th,td{border:1px solid #bbb;padding:1px 4px;text-align:left;vertical-align:top}
th{background:#eee}td.n{text-align:right;white-space:nowrap}.outages td:nth-child(-n+3){white-space:nowrap}
.device{page-break-inside:avoid;break-inside:avoid-page}
.summary td{border:none;padding:0 8px 0 0}
svg{display:block;width:100%;height:auto}
.isp{fill:#c62828}.lan{fill:#ef6c00}.offline{fill:#9e9e9e}.cloud{fill:#1565c0}.unknown{fill:#6a1b9a}
.up{fill:#2e7d32}.none{fill:#e0e0e0}.axis{fill:#f4f4f4;stroke:#999}
.legend span{display:inline-block;width:9px;height:9px;margin:0 3px 0 10px}
.legend .isp{background:#c62828}.legend .lan{background:#ef6c00}.legend .offline{background:#9e9e9e}
.legend .cloud{background:#1565c0}.legend .unknown{background:#6a1b9a}
tr.isprow td{background:#fdecea}
@media print{a{color:inherit}}";

fn html(report: &Report) -> String {
    let mut out = String::new();
    let title = format!(
        "ISP Monitor report {} to {} UTC",
        report.from.format("%Y-%m-%d"),
        report.to.format("%Y-%m-%d")
    );
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"generator\" content=\"isp-monitor {}\"><title>{}</title><style>{CSS}</style></head>\n<body>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&title)
    );
    let _ = writeln!(
        out,
        "<h1>{}</h1>\n<p>From {} to {} UTC, from {}. Generated {} UTC.{}</p>",
        esc(&title),
        esc(&time(report.from)),
        esc(&time(report.to)),
        esc(source_words(&report.source)),
        esc(&time(report.generated_at)),
        report.silence_minutes.map_or_else(String::new, |m| format!(
            " A cloud gap is no heartbeat for more than {m} minutes."
        ))
    );
    for note in &report.notes {
        let _ = writeln!(out, "<p class=\"note\">Note: {}</p>", esc(note));
    }
    out.push_str(
        "<p class=\"legend\">Timeline:<span class=\"isp\"></span>internet provider (counts against the ISP)\
         <span class=\"lan\"></span>local network<span class=\"offline\"></span>agent offline\
         <span class=\"cloud\"></span>cloud side<span class=\"unknown\"></span>undetermined</p>\n",
    );
    if report.devices.is_empty() {
        out.push_str("<p>No device was seen in this period.</p>\n");
    }
    for device in &report.devices {
        device_html(&mut out, report, device);
    }
    out.push_str("</body></html>\n");
    out
}

fn timeline(out: &mut String, report: &Report, d: &DeviceReport) {
    const W: f64 = 700.0;
    let span = (report.to - report.from).num_milliseconds().max(1) as f64;
    let x =
        |at: DateTime<Utc>| ((at - report.from).num_milliseconds() as f64 / span * W).clamp(0.0, W);
    let _ = write!(
        out,
        "<svg class=\"timeline\" viewBox=\"0 0 {W} 40\" role=\"img\" aria-label=\"outages of {}\">\
         <rect class=\"axis\" x=\"0\" y=\"4\" width=\"{W}\" height=\"20\"/>",
        esc(&d.device)
    );
    let (ox, ow) = (x(d.observed_from), x(d.observed_to) - x(d.observed_from));
    let _ = write!(
        out,
        "<rect class=\"up\" x=\"{ox:.2}\" y=\"4\" width=\"{ow:.2}\" height=\"20\" opacity=\"0.25\"/>"
    );
    for o in &d.outages {
        // At least a pixel wide, so a short outage still shows on paper.
        let (left, width) = (x(o.start), (x(o.end) - x(o.start)).max(1.0));
        let _ = write!(
            out,
            "<rect class=\"{}\" x=\"{left:.2}\" y=\"4\" width=\"{width:.2}\" height=\"20\"><title>{} {} ({})</title></rect>",
            class(o.cause),
            esc(&time(o.start)),
            esc(o.cause.as_str()),
            esc(&duration(o.duration_s))
        );
    }
    let _ = write!(
        out,
        "<text x=\"0\" y=\"36\" font-size=\"9\">{}</text><text x=\"{W}\" y=\"36\" font-size=\"9\" text-anchor=\"end\">{}</text></svg>",
        esc(&time(report.from)),
        esc(&time(report.to))
    );
}

fn daily_bars(out: &mut String, d: &DeviceReport) {
    if d.days.is_empty() {
        return;
    }
    const W: f64 = 700.0;
    const H: f64 = 60.0;
    let step = W / d.days.len() as f64;
    let _ = write!(
        out,
        "<svg class=\"daily\" viewBox=\"0 0 {W} {}\" role=\"img\" aria-label=\"daily uptime of {}\">",
        H + 12.0,
        esc(&d.device)
    );
    for (i, day) in d.days.iter().enumerate() {
        let left = i as f64 * step + 1.0;
        let width = (step - 2.0).max(0.5);
        match day.uptime_pct {
            Some(pct) => {
                let height = H * pct / 100.0;
                let _ = write!(
                    out,
                    "<rect class=\"isp\" x=\"{left:.2}\" y=\"0\" width=\"{width:.2}\" height=\"{H}\" opacity=\"0.35\"/>\
                     <rect class=\"up\" x=\"{left:.2}\" y=\"{:.2}\" width=\"{width:.2}\" height=\"{height:.2}\"><title>{} {pct}%</title></rect>",
                    H - height,
                    day.date
                );
            }
            None => {
                let _ = write!(
                    out,
                    "<rect class=\"none\" x=\"{left:.2}\" y=\"0\" width=\"{width:.2}\" height=\"{H}\"><title>{} not observed</title></rect>",
                    day.date
                );
            }
        }
    }
    let first = d
        .days
        .first()
        .map(|d| d.date.to_string())
        .unwrap_or_default();
    let last = d
        .days
        .last()
        .map(|d| d.date.to_string())
        .unwrap_or_default();
    let _ = write!(
        out,
        "<text x=\"0\" y=\"{y}\" font-size=\"9\">{first}</text><text x=\"{W}\" y=\"{y}\" font-size=\"9\" text-anchor=\"end\">{last}</text></svg>",
        y = H + 10.0
    );
}

fn outage_row(out: &mut String, o: &OutageRow) {
    let _ = writeln!(
        out,
        "<tr class=\"outage{}\" data-cause=\"{}\" data-witness=\"{}\"><td>{}</td><td>{}</td><td class=\"n\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        if o.isps { " isprow" } else { "" },
        o.cause.as_str(),
        o.witness.as_str(),
        esc(&time(o.start)),
        if o.ongoing {
            "ongoing".to_owned()
        } else {
            esc(&time(o.end))
        },
        esc(&duration(o.duration_s)),
        esc(&o.cause_in_words),
        if o.isps { "yes" } else { "no" },
        o.witness.as_str()
    );
}

fn device_html(out: &mut String, report: &Report, d: &DeviceReport) {
    let _ = writeln!(
        out,
        "<section class=\"device\" data-device=\"{0}\"><h2>{0}</h2>",
        esc(&d.device)
    );
    let _ = writeln!(
        out,
        "<table class=\"summary\"><tr><td>Uptime (ISP)</td><td class=\"uptime\">{}</td><td>Observed</td><td>{} to {} UTC ({})</td></tr>\
         <tr><td>ISP downtime</td><td>{} in {} outage(s), longest {}</td><td>All outages</td><td>{} in {}, longest {}</td></tr>\
         <tr><td>Not the ISP's doing</td><td colspan=\"3\">local network {}, agent offline {}, cloud side {}, undetermined {}</td></tr></table>",
        esc(&pct(d.uptime_pct)),
        esc(&time(d.observed_from)),
        esc(&time(d.observed_to)),
        esc(&duration(d.observed_s)),
        esc(&duration(d.isp_downtime_s)),
        d.isp_outages,
        esc(&duration(d.longest_isp_outage_s)),
        esc(&duration(d.downtime_s)),
        d.outages_total,
        esc(&duration(d.longest_outage_s)),
        esc(&duration(d.not_isp.lan_s)),
        esc(&duration(d.not_isp.agent_offline_s)),
        esc(&duration(d.not_isp.cloud_side_s)),
        esc(&duration(d.not_isp.undetermined_s)),
    );
    out.push_str("<h3>Timeline</h3>\n");
    timeline(out, report, d);
    out.push('\n');
    out.push_str("<h3>Daily uptime</h3>\n");
    daily_bars(out, d);
    out.push('\n');
    out.push_str(
        "<h3>Outages</h3>\n<table class=\"outages\"><thead><tr><th>Start (UTC)</th><th>End (UTC)</th><th>Duration</th><th>What failed</th><th>ISP</th><th>Witness</th></tr></thead><tbody>\n",
    );
    for o in &d.outages {
        outage_row(out, o);
    }
    if d.outages.is_empty() {
        out.push_str("<tr><td colspan=\"6\">No outage.</td></tr>\n");
    }
    out.push_str("</tbody></table>\n<h3>Public IP changes</h3>\n");
    if d.ip_changes.is_empty() {
        out.push_str("<p>None seen.</p>\n");
    } else {
        out.push_str(
            "<table class=\"ip-changes\"><tr><th>Changed (UTC)</th><th>From</th><th>To</th></tr>\n",
        );
        for c in &d.ip_changes {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&time(c.at)),
                esc(&c.from),
                esc(&c.to)
            );
        }
        out.push_str("</table>\n");
    }
    if d.days.iter().any(|day| day.quality.is_some()) {
        out.push_str("<h3>Daily latency and loss</h3>\n<table class=\"quality\"><tr><th>Date</th><th>Uptime</th><th>Loss</th><th>RTT p50</th><th>RTT p95</th><th>DNS</th></tr>\n");
        for day in &d.days {
            if let Some(q) = &day.quality {
                let _ = writeln!(
                    out,
                    "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}%</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                    day.date,
                    esc(&pct(day.uptime_pct)),
                    q.loss_pct,
                    esc(&ms(q.rtt_p50_ms)),
                    esc(&ms(q.rtt_p95_ms)),
                    esc(&ms(q.dns_ms))
                );
            }
        }
        out.push_str("</table>\n");
    }
    out.push_str("</section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report::compute(&crate::report::tests::month())
    }

    #[test]
    fn durations_read_like_the_scripts() {
        assert_eq!(duration(45), "45s");
        assert_eq!(duration(450), "7m30s");
        assert_eq!(duration(7500), "2h05m");
        assert_eq!(duration(3 * 86400 + 4 * 3600), "3d04h");
    }

    /// A field with a comma, a quote or a line break is quoted per RFC 4180; rows end in CRLF.
    #[test]
    fn csv_quotes_what_needs_quoting() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\"\nnow"), "\"say \"\"hi\"\"\nnow\"");
        let text = csv(&sample());
        assert!(text.ends_with("\r\n"));
        assert!(text.starts_with("record,device,start_utc,"));
        assert!(text.contains(
            "outage,den,2026-11-03T10:00:00Z,2026-11-03T12:00:00Z,7200,isp,your internet provider (DNS and internet targets unreachable),yes,agent"
        ));
    }

    /// The page is one file: no script, no external reference; hostile device names are escaped.
    #[test]
    fn html_is_self_contained_and_escaped() {
        let mut report = sample();
        report.devices[0].device = "<script>alert(1)</script>".into();
        let page = html(&report);
        assert!(page.starts_with("<!DOCTYPE html>"));
        assert!(page.contains("@page{size:A4"));
        assert!(!page.contains("<script"));
        assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("url("));
        assert!(page.contains("&lt;script&gt;"));
        assert_eq!(page.matches("<tr class=\"outage").count(), 3);
    }

    #[test]
    fn formats_parse() {
        assert_eq!("csv".parse::<Format>(), Ok(Format::Csv));
        assert_eq!(
            "pdf".parse::<Format>().unwrap_err(),
            "--format \"pdf\" is not one of table, json, csv, html"
        );
    }
}
