//! Reminders while a device stays silent (issue 16; docs/aws.md "Alarms and emails"). CloudWatch
//! sends one email per change of alarm state and never repeats it (docs/platform.md §12), so the
//! `lambda` binary, started in its reminder role (`ISP_MONITOR_ROLE=reminders`) by an EventBridge
//! schedule every `ReminderMinutes`, lists this stack's silence alarms in ALARM with CloudWatch
//! `DescribeAlarms` and publishes one reminder per alarm that has been in ALARM for at least
//! `ReminderMinutes` (docs/platform.md §17).
//!
//! "In ALARM since" is the alarm's `StateTransitionedTimestamp`, which changes only when the state
//! value changes; `StateUpdatedTimestamp` also moves when the evaluation state changes, so it
//! could restart the count while the device is still silent (docs/platform.md §17).

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use serde_json::json;

use super::query_api::{self, CredentialSource, QueryClient, QueryError, one_line, xml_text};
use super::sns::{self, SnsPublisher};

/// `reminders` starts the binary in its reminder role; unset (or anything else), it is the
/// heartbeat endpoint.
pub const ROLE_ENV: &str = "ISP_MONITOR_ROLE";
pub const ROLE_REMINDERS: &str = "reminders";
/// The alarm names to look at: `<NamePrefix>-silent-` (aws/template.yaml).
pub const PREFIX_ENV: &str = "ISP_MONITOR_ALARM_PREFIX";
/// Minutes in ALARM before the first reminder, and the schedule's interval.
pub const MINUTES_ENV: &str = "ISP_MONITOR_REMINDER_MINUTES";
/// The alarms' `SilenceMinutes`, so the email can say since when the device is silent.
pub const SILENCE_ENV: &str = "ISP_MONITOR_SILENCE_MINUTES";
/// Overrides the CloudWatch endpoint (tests point it at a loopback stand-in); default
/// `https://monitoring.<region>.amazonaws.com/`.
pub const ENDPOINT_ENV: &str = "ISP_MONITOR_CLOUDWATCH_ENDPOINT";
/// CloudWatch's Query API version (docs/platform.md §17).
const API_VERSION: &str = "2010-08-01";
/// DescribeAlarms returns at most 100 alarms a page (MaxRecords 1–100).
pub const PAGE_SIZE: usize = 100;
/// At most this many pages (1,000 alarms) per run: a peer that keeps sending NextToken cannot
/// keep the function busy until its timeout.
pub const MAX_PAGES: usize = 10;
/// The reminder intervals the template allows (docs/alerts.md: 0 is off, not a schedule).
pub const ALLOWED_MINUTES: [u32; 5] = [5, 10, 15, 30, 60];

/// One silence alarm in ALARM, as DescribeAlarms describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilentAlarm {
    pub name: String,
    pub device: String,
    /// When the alarm went into ALARM (`StateTransitionedTimestamp`).
    pub since: DateTime<Utc>,
}

/// Reads this stack's silence alarms that are in ALARM.
#[derive(Debug, Clone)]
pub struct AlarmReader {
    api: QueryClient,
    prefix: String,
}

impl AlarmReader {
    pub fn new(
        partition: &str,
        region: &str,
        endpoint: Option<&str>,
        prefix: &str,
        credentials: CredentialSource,
    ) -> Result<AlarmReader, QueryError> {
        if prefix.is_empty() || prefix.len() > 255 {
            return Err(QueryError::Config(format!(
                "{PREFIX_ENV} must be 1-255 characters (<NamePrefix>-silent-)"
            )));
        }
        let api = QueryClient::new(
            endpoint,
            ENDPOINT_ENV,
            partition,
            region,
            "monitoring",
            API_VERSION,
            credentials,
        )?;
        Ok(AlarmReader {
            api,
            prefix: prefix.to_owned(),
        })
    }

    /// The same reader with other timeouts (tests).
    pub fn with_timeouts(
        mut self,
        connect: std::time::Duration,
        total: std::time::Duration,
    ) -> Result<AlarmReader, QueryError> {
        self.api = self.api.with_timeouts(connect, total)?;
        Ok(self)
    }

    /// Every alarm named with the prefix that is in ALARM, all pages (at most [`MAX_PAGES`]).
    /// Requests are signed with the clock (AWS refuses a signature more than 15 minutes off).
    pub async fn in_alarm(&self) -> Result<Vec<SilentAlarm>, QueryError> {
        let page_size = PAGE_SIZE.to_string();
        let mut alarms = Vec::new();
        let mut token: Option<String> = None;
        for _ in 0..MAX_PAGES {
            let mut params = vec![
                ("AlarmNamePrefix", self.prefix.as_str()),
                ("StateValue", "ALARM"),
                ("AlarmTypes.member.1", "MetricAlarm"),
                ("MaxRecords", page_size.as_str()),
            ];
            if let Some(t) = &token {
                params.push(("NextToken", t.as_str()));
            }
            let text = self.api.call("DescribeAlarms", &params, Utc::now()).await?;
            let (page, next) = parse_page(&text)?;
            alarms.extend(
                page.into_iter()
                    .filter(|a| a.state == "ALARM" && a.name.starts_with(&self.prefix))
                    .map(|a| SilentAlarm {
                        device: a
                            .device
                            .unwrap_or_else(|| a.name[self.prefix.len()..].to_owned()),
                        name: a.name,
                        since: a.since,
                    }),
            );
            match next {
                Some(t) if Some(&t) == token.as_ref() => {
                    return Err(QueryError::BadResponse(
                        "DescribeAlarms returned the same NextToken twice".to_owned(),
                    ));
                }
                Some(t) => token = Some(t),
                None => return Ok(alarms),
            }
        }
        Err(QueryError::BadResponse(format!(
            "DescribeAlarms still had more after {MAX_PAGES} pages of {PAGE_SIZE}"
        )))
    }
}

/// One `<member>` of `<MetricAlarms>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlarmEntry {
    pub name: String,
    pub state: String,
    pub since: DateTime<Utc>,
    /// The value of the alarm's `Device` dimension.
    pub device: Option<String>,
}

/// A DescribeAlarms answer (`DescribeAlarmsResponse/DescribeAlarmsResult`): its metric alarms and
/// its NextToken. Anything that is not that shape is an error, never an empty list.
pub fn parse_page(xml: &str) -> Result<(Vec<AlarmEntry>, Option<String>), QueryError> {
    let bad = |m: &str| QueryError::BadResponse(m.to_owned());
    if !xml.contains("<DescribeAlarmsResponse") || !xml.contains("<DescribeAlarmsResult>") {
        return Err(bad("not a DescribeAlarmsResponse"));
    }
    let result =
        xml_text_raw(xml, "DescribeAlarmsResult").ok_or_else(|| bad("no DescribeAlarmsResult"))?;
    let metric_alarms = if result.contains("<MetricAlarms/>") {
        ""
    } else {
        xml_text_raw(result, "MetricAlarms").unwrap_or("")
    };
    let members = query_api::xml_children(metric_alarms, "member")
        .ok_or_else(|| bad("MetricAlarms members do not balance"))?;
    let mut out = Vec::with_capacity(members.len());
    for member in members {
        let name = xml_text(member, "AlarmName")
            .filter(|n| !n.is_empty())
            .ok_or_else(|| bad("an alarm without AlarmName"))?;
        let state =
            xml_text(member, "StateValue").ok_or_else(|| bad("an alarm without StateValue"))?;
        let since = xml_text(member, "StateTransitionedTimestamp")
            .ok_or_else(|| bad("an alarm without StateTransitionedTimestamp"))?;
        let since = DateTime::parse_from_rfc3339(&since)
            .map_err(|_| bad("a StateTransitionedTimestamp that is not a time"))?
            .with_timezone(&Utc);
        let device = xml_text_raw(member, "Dimensions")
            .and_then(|d| query_api::xml_children(d, "member"))
            .unwrap_or_default()
            .into_iter()
            .find(|d| xml_text(d, "Name").as_deref() == Some("Device"))
            .and_then(|d| xml_text(d, "Value"))
            .filter(|v| !v.is_empty());
        out.push(AlarmEntry {
            name: one_line(&name, 255),
            state,
            since,
            device: device.map(|d| one_line(&d, 255)),
        });
    }
    let next = xml_text(result, "NextToken").filter(|t| !t.is_empty());
    Ok((out, next))
}

/// The raw inner text of the first `<tag>…</tag>` (the last closing tag of that name, so nested
/// elements of other names stay whole).
fn xml_text_raw<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = xml.rfind(&close)?;
    (end >= start).then(|| &xml[start..end])
}

/// The subject and message of one reminder. `silence_minutes` is the alarms' SilenceMinutes:
/// the device has been silent since about that long before the alarm went off.
pub fn reminder_email(
    alarm: &SilentAlarm,
    now: DateTime<Utc>,
    silence_minutes: u32,
    every_minutes: u32,
) -> (String, String) {
    let silent_since = alarm.since - ChronoDuration::minutes(i64::from(silence_minutes));
    let silent_for = duration_words((now - silent_since).num_seconds().max(0));
    let device = &alarm.device;
    let subject = format!("ISP Monitor: {device} is still silent ({silent_for})");
    let message = format!(
        "{device} has sent no heartbeat for about {silent_for}, since about {} (UTC).\n\
         Its alarm {} has been in ALARM since {} (UTC).\n\
         You get this reminder every {every_minutes} minutes while it stays silent. When its \
         heartbeats return, CloudWatch sends an OK email, and the agent's outage report follows \
         with the cause.\n",
        silent_since.format("%Y-%m-%d %H:%M"),
        alarm.name,
        alarm.since.format("%Y-%m-%d %H:%M:%S"),
    );
    (subject, message)
}

/// `45 min`, `2 h 5 min`, `3 d 4 h`.
fn duration_words(seconds: i64) -> String {
    let minutes = seconds / 60;
    match minutes {
        m if m < 60 => format!("{m} min"),
        m if m < 24 * 60 => format!("{} h {} min", m / 60, m % 60),
        m => format!("{} d {} h", m / (24 * 60), (m / 60) % 24),
    }
}

/// What one scheduled run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunReport {
    /// Alarms in ALARM.
    pub in_alarm: usize,
    /// Devices reminded.
    pub sent: Vec<String>,
}

/// The reminder role: the alarm reader and the topic.
#[derive(Debug, Clone)]
pub struct Reminders {
    reader: AlarmReader,
    publisher: SnsPublisher,
    every_minutes: u32,
    silence_minutes: u32,
}

impl Reminders {
    pub fn new(
        reader: AlarmReader,
        publisher: SnsPublisher,
        every_minutes: u32,
        silence_minutes: u32,
    ) -> Reminders {
        Reminders {
            reader,
            publisher,
            every_minutes,
            silence_minutes,
        }
    }

    /// The reminder role as the function's environment describes it (aws/template.yaml):
    /// `ISP_MONITOR_SNS_TOPIC_ARN`, `ISP_MONITOR_ALARM_PREFIX`, `ISP_MONITOR_REMINDER_MINUTES`,
    /// optionally `ISP_MONITOR_SILENCE_MINUTES` and the two endpoints, the role's credentials.
    /// An error says which variable to fix.
    pub fn from_env() -> Result<Reminders, String> {
        let get = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let publisher = SnsPublisher::from_env()
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("{} is not set", sns::TOPIC_ENV))?;
        let (partition, region) =
            sns::parse_topic_arn(publisher.topic_arn()).map_err(|e| e.to_string())?;
        let every = get(MINUTES_ENV)
            .and_then(|v| v.trim().parse::<u32>().ok())
            .filter(|m| ALLOWED_MINUTES.contains(m))
            .ok_or_else(|| format!("{MINUTES_ENV} must be one of 5, 10, 15, 30, 60"))?;
        let silence = match get(SILENCE_ENV) {
            None => 0,
            Some(v) => v
                .trim()
                .parse::<u32>()
                .ok()
                .filter(|m| *m <= 24 * 60)
                .ok_or_else(|| format!("{SILENCE_ENV} must be a number of minutes"))?,
        };
        let prefix = get(PREFIX_ENV).ok_or_else(|| format!("{PREFIX_ENV} is not set"))?;
        let reader = AlarmReader::new(
            &partition,
            &region,
            get(ENDPOINT_ENV).as_deref(),
            &prefix,
            CredentialSource::Environment,
        )
        .map_err(|e| format!("cloudwatch {e}"))?;
        Ok(Reminders::new(reader, publisher, every, silence))
    }

    /// One scheduled run as of `now` (the tick's time; only the age of each alarm is measured
    /// against it, requests are signed with the clock): one reminder per alarm in ALARM for at least the interval.
    /// Prints one JSON line per reminder and one for the run. An error (the alarms could not be
    /// read, or a reminder could not be published) is one line without a secret; the reminders
    /// published before it stay published.
    pub async fn run(&self, now: DateTime<Utc>) -> Result<RunReport, String> {
        let alarms = self
            .reader
            .in_alarm()
            .await
            .map_err(|e| format!("cloudwatch DescribeAlarms {e}"))?;
        let due = ChronoDuration::minutes(i64::from(self.every_minutes));
        let mut sent = Vec::new();
        let mut failed = Vec::new();
        for alarm in &alarms {
            if now - alarm.since < due {
                continue;
            }
            let (subject, message) =
                reminder_email(alarm, now, self.silence_minutes, self.every_minutes);
            match self.publisher.publish(&subject, &message).await {
                Ok(_) => {
                    println!(
                        "{}",
                        json!({
                            "event": "reminder",
                            "device": alarm.device,
                            "alarm": alarm.name,
                            "in_alarm_since": alarm.since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                            "minutes_in_alarm": (now - alarm.since).num_minutes(),
                        })
                    );
                    sent.push(alarm.device.clone());
                }
                Err(e) => failed.push(format!("{}: {e}", alarm.device)),
            }
        }
        println!(
            "{}",
            json!({
                "event": "reminders",
                "in_alarm": alarms.len(),
                "sent": sent.len(),
                "failed": failed.len(),
            })
        );
        if let Some(first) = failed.first() {
            return Err(one_line(
                &format!(
                    "{} of {} reminders not sent; {first}",
                    failed.len(),
                    failed.len() + sent.len()
                ),
                600,
            ));
        }
        Ok(RunReport {
            in_alarm: alarms.len(),
            sent,
        })
    }
}

/// Only an EventBridge scheduled event (`source` `aws.events`, `detail-type` `Scheduled Event`,
/// docs/platform.md §17) starts a run; anything else is refused with one line. Only EventBridge
/// may invoke the reminder function (its resource policy), so this is a second lock.
pub fn check_scheduled_event(event: &serde_json::Value) -> Result<(), String> {
    let field = |name: &str| event.get(name).and_then(|v| v.as_str());
    if field("source") == Some("aws.events") && field("detail-type") == Some("Scheduled Event") {
        Ok(())
    } else {
        Err("not an EventBridge scheduled event (source aws.events, detail-type Scheduled Event); nothing done".to_owned())
    }
}

/// The time a scheduled event was due (its `time` field, EventBridge's documented
/// `2015-10-08T16:53:06Z` form), else `fallback`. The run measures "in ALARM for at least the
/// interval" against it, so a late delivery does not shift the ticks.
pub fn event_time(event: &serde_json::Value, fallback: DateTime<Utc>) -> DateTime<Utc> {
    event
        .get("time")
        .and_then(|t| t.as_str())
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(fallback)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = r#"<DescribeAlarmsResponse xmlns="http://monitoring.amazonaws.com/doc/2010-08-01/">
  <DescribeAlarmsResult>
    <MetricAlarms>
      <member>
        <AlarmName>ispmon-silent-attic</AlarmName>
        <StateValue>ALARM</StateValue>
        <StateUpdatedTimestamp>2026-12-01T10:20:00.000Z</StateUpdatedTimestamp>
        <StateTransitionedTimestamp>2026-12-01T10:00:00.000Z</StateTransitionedTimestamp>
        <Dimensions><member><Name>Device</Name><Value>attic &amp; loft</Value></member></Dimensions>
      </member>
      <member>
        <AlarmName>ispmon-silent-office</AlarmName>
        <StateValue>ALARM</StateValue>
        <StateTransitionedTimestamp>2026-12-01T10:05:00Z</StateTransitionedTimestamp>
        <Dimensions/>
      </member>
    </MetricAlarms>
    <NextToken>page-2</NextToken>
  </DescribeAlarmsResult>
  <ResponseMetadata><RequestId>r</RequestId></ResponseMetadata>
</DescribeAlarmsResponse>"#;

    /// The documented shape: alarms, their device dimension, the transition time, NextToken.
    #[test]
    fn a_page_is_read() {
        let (alarms, next) = parse_page(PAGE).unwrap();
        assert_eq!(next.as_deref(), Some("page-2"));
        assert_eq!(alarms.len(), 2);
        assert_eq!(alarms[0].device.as_deref(), Some("attic & loft"));
        // StateTransitionedTimestamp, not StateUpdatedTimestamp.
        assert_eq!(alarms[0].since.to_rfc3339(), "2026-12-01T10:00:00+00:00");
        assert_eq!(alarms[1].device, None);
        let empty = "<DescribeAlarmsResponse><DescribeAlarmsResult><MetricAlarms/>\
                     <CompositeAlarms/></DescribeAlarmsResult></DescribeAlarmsResponse>";
        assert_eq!(parse_page(empty).unwrap(), (vec![], None));
    }

    /// Garbage is an error, not "no alarms".
    #[test]
    fn garbage_is_refused() {
        for bad in [
            "",
            "<html>hello</html>",
            "<DescribeAlarmsResponse><DescribeAlarmsResult><MetricAlarms><member><AlarmName>x",
            "<DescribeAlarmsResponse><DescribeAlarmsResult><MetricAlarms><member><AlarmName>x</AlarmName>\
             <StateValue>ALARM</StateValue><StateTransitionedTimestamp>yesterday</StateTransitionedTimestamp>\
             </member></MetricAlarms></DescribeAlarmsResult></DescribeAlarmsResponse>",
        ] {
            assert!(parse_page(bad).is_err(), "{bad}");
        }
    }

    /// The reminder says who, since when, for how long, and that an OK email follows.
    #[test]
    fn the_reminder_says_what_is_going_on() {
        let alarm = SilentAlarm {
            name: "ispmon-silent-attic".to_owned(),
            device: "attic".to_owned(),
            since: "2026-12-01T10:00:00Z".parse().unwrap(),
        };
        let now = "2026-12-01T10:40:00Z".parse().unwrap();
        let (subject, message) = reminder_email(&alarm, now, 5, 15);
        assert_eq!(subject, "ISP Monitor: attic is still silent (45 min)");
        assert!(message.starts_with(
            "attic has sent no heartbeat for about 45 min, since about 2026-12-01 09:55 (UTC).\n"
        ));
        assert!(message.contains("in ALARM since 2026-12-01 10:00:00"));
        assert!(message.contains("every 15 minutes"));
        assert!(message.contains("OK email"));
        assert_eq!(duration_words(3 * 3600 + 300), "3 h 5 min");
        assert_eq!(duration_words(2 * 86400 + 3600 * 4), "2 d 4 h");
    }

    /// The event's own time when it has one.
    #[test]
    fn event_time_is_the_schedule_tick() {
        let fallback: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        let event = json!({"detail-type": "Scheduled Event", "time": "2015-10-08T16:53:06Z"});
        assert_eq!(
            event_time(&event, fallback).to_rfc3339(),
            "2015-10-08T16:53:06+00:00"
        );
        assert_eq!(event_time(&json!({}), fallback), fallback);
    }
}
