//! Publishing one message to an SNS topic: the Query API's `Publish` action as a SigV4-signed
//! form POST (docs/platform.md §12), with the function's own credentials from the environment.
//!
//! The transport is the shared Query API call (`super::query_api`): a connect timeout and an
//! overall timeout, the answer read up to [`MAX_RESPONSE_BYTES`], no redirects followed (the
//! request carries a signed session token), plain HTTP refused except to loopback (tests), and no
//! error message contains the secret key, the session token or the key id.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::query_api::{self, CredentialSource, QueryClient, QueryError, one_line};
use super::sigv4::Credentials;
use crate::outage::{Cause, OutageReport};

/// The topic outage emails go to; unset, the function sends none.
pub const TOPIC_ENV: &str = "ISP_MONITOR_SNS_TOPIC_ARN";
/// Overrides the endpoint (tests point it at a loopback stand-in); default the topic's regional
/// endpoint, `https://sns.<region>.amazonaws.com/`.
pub const ENDPOINT_ENV: &str = "ISP_MONITOR_SNS_ENDPOINT";

/// SNS answers a Publish in well under a second; a function whose whole invocation is bounded at
/// 10 s (aws/template.yaml) must give up on SNS long before that.
pub const CONNECT_TIMEOUT: Duration = query_api::CONNECT_TIMEOUT;
pub const REQUEST_TIMEOUT: Duration = query_api::REQUEST_TIMEOUT;
/// A PublishResponse is a few hundred bytes, an ErrorResponse under a kilobyte.
pub const MAX_RESPONSE_BYTES: usize = 16 * 1024;
/// SNS limits: a subject under 100 characters of printable ASCII without line breaks, a message
/// of at most 256 KiB (docs/platform.md §12).
pub const MAX_SUBJECT_CHARS: usize = 99;
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024;
/// Query API version of SNS.
const API_VERSION: &str = "2010-03-31";

/// Why a message was not published. Messages are one line and never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotifyError {
    /// The configuration is incomplete or wrong: says which variable to fix.
    Config(String),
    /// No answer: connection refused, timeout, TLS failure.
    Transport(String),
    /// SNS (or whatever answered) refused: the status and SNS's error code and message.
    Refused { status: u16, detail: String },
    /// An answer that is not a PublishResponse.
    BadResponse(String),
}

impl std::fmt::Display for NotifyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotifyError::Config(m) => write!(f, "sns configuration: {m}"),
            NotifyError::Transport(m) => write!(f, "sns publish failed: {m}"),
            NotifyError::Refused { status, detail } => {
                write!(f, "sns refused the publish ({status}): {detail}")
            }
            NotifyError::BadResponse(m) => write!(f, "sns answered something unexpected: {m}"),
        }
    }
}

impl std::error::Error for NotifyError {}

impl From<QueryError> for NotifyError {
    fn from(e: QueryError) -> NotifyError {
        match e {
            QueryError::Config(m) => NotifyError::Config(m),
            QueryError::Transport(m) => NotifyError::Transport(m),
            QueryError::Refused { status, detail } => NotifyError::Refused { status, detail },
            QueryError::BadResponse(m) => NotifyError::BadResponse(m),
        }
    }
}

/// Publishes to one topic. Cheap to clone (the HTTP client is shared).
#[derive(Debug, Clone)]
pub struct SnsPublisher {
    api: QueryClient,
    topic_arn: String,
}

impl SnsPublisher {
    /// The publisher the function's environment describes, or `None` when no topic is set.
    pub fn from_env() -> Result<Option<SnsPublisher>, NotifyError> {
        let Some(topic) = non_empty_env(TOPIC_ENV) else {
            return Ok(None);
        };
        let endpoint = non_empty_env(ENDPOINT_ENV);
        // Fail now, not at the first outage, when the runtime gave no credentials.
        credentials_from(|name| std::env::var(name).ok())?;
        SnsPublisher::build(&topic, endpoint.as_deref(), CredentialSource::Environment).map(Some)
    }

    /// A publisher with fixed credentials (tests, or a caller with its own credential source).
    pub fn new(
        topic_arn: &str,
        endpoint: Option<&str>,
        credentials: Credentials,
    ) -> Result<SnsPublisher, NotifyError> {
        SnsPublisher::build(topic_arn, endpoint, CredentialSource::Fixed(credentials))
    }

    fn build(
        topic_arn: &str,
        endpoint: Option<&str>,
        credentials: CredentialSource,
    ) -> Result<SnsPublisher, NotifyError> {
        let (partition, region) = parse_topic_arn(topic_arn)?;
        let api = QueryClient::new(
            endpoint,
            ENDPOINT_ENV,
            &partition,
            &region,
            "sns",
            API_VERSION,
            credentials,
        )?
        .with_max_response(MAX_RESPONSE_BYTES);
        Ok(SnsPublisher {
            api,
            topic_arn: topic_arn.to_owned(),
        })
    }

    /// The same publisher with other timeouts (tests use short ones; a caller with a tighter
    /// budget than the function's may too). The HTTP client is rebuilt.
    pub fn with_timeouts(
        mut self,
        connect: Duration,
        total: Duration,
    ) -> Result<SnsPublisher, NotifyError> {
        self.api = self.api.with_timeouts(connect, total)?;
        Ok(self)
    }

    pub fn topic_arn(&self) -> &str {
        &self.topic_arn
    }

    /// Publishes `message` with `subject` (made fit for SNS: printable ASCII, under 100
    /// characters). Returns SNS's MessageId.
    pub async fn publish(&self, subject: &str, message: &str) -> Result<String, NotifyError> {
        self.publish_at(subject, message, Utc::now()).await
    }

    /// As [`publish`](Self::publish), signed as of `now`.
    pub async fn publish_at(
        &self,
        subject: &str,
        message: &str,
        now: DateTime<Utc>,
    ) -> Result<String, NotifyError> {
        if message.is_empty() {
            return Err(NotifyError::Config("the message is empty".to_owned()));
        }
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(NotifyError::Config(format!(
                "the message is {} bytes; SNS takes at most {MAX_MESSAGE_BYTES}",
                message.len()
            )));
        }
        let subject = sns_subject(subject);
        let mut params = vec![("TopicArn", self.topic_arn.as_str()), ("Message", message)];
        if !subject.is_empty() {
            params.push(("Subject", subject.as_str()));
        }
        let text = self.api.call("Publish", &params, now).await?;
        match query_api::xml_text(&text, "MessageId") {
            Some(id) if !id.is_empty() => Ok(one_line(&id, 100)),
            _ => Err(NotifyError::BadResponse(
                "no MessageId in a success answer".to_owned(),
            )),
        }
    }
}

/// The subject and message of the email for one reported outage; `cause_words` is the cause in
/// the words every notification uses (interface B: `Cause::in_words()`).
pub fn outage_email(device: &str, report: &OutageReport, cause_words: &str) -> (String, String) {
    let minutes = report.duration_seconds() / 60;
    let seconds = report.duration_seconds() % 60;
    let duration = if minutes > 0 {
        format!("{minutes} min {seconds} s")
    } else {
        format!("{seconds} s")
    };
    let counted = matches!(report.cause, Cause::Isp | Cause::Dns);
    let subject = format!("ISP Monitor: {device} was offline for {duration}");
    let mut message = format!(
        "{device} was offline for {duration}, from {} to {} (UTC, the agent's own clock).\n\
         Cause: {cause_words}.\n\
         Counted as the internet provider's downtime: {}.\n",
        report.start.format("%Y-%m-%d %H:%M:%S"),
        report.end.format("%Y-%m-%d %H:%M:%S"),
        if counted {
            "yes"
        } else {
            "no (not the ISP's doing)"
        },
    );
    if !report.detail.is_empty() {
        message.push_str(&format!("What the agent saw: {}\n", report.detail));
    }
    message.push_str(&format!(
        "Outage id: {}\n\nThe agent reported this once it was back online.\n",
        report.id
    ));
    (subject, message)
}

/// A subject SNS accepts: printable ASCII (anything else becomes `?`), at most
/// [`MAX_SUBJECT_CHARS`] characters.
pub fn sns_subject(subject: &str) -> String {
    subject
        .chars()
        .map(|c| if (' '..='~').contains(&c) { c } else { '?' })
        .take(MAX_SUBJECT_CHARS)
        .collect::<String>()
        .trim()
        .to_owned()
}

fn non_empty_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The function's credentials, as the Lambda runtime sets them.
fn credentials_from(get: impl Fn(&str) -> Option<String>) -> Result<Credentials, NotifyError> {
    Ok(query_api::credentials_from(get)?)
}

/// `arn:PARTITION:sns:REGION:ACCOUNT:NAME` → (partition, region).
pub fn parse_topic_arn(arn: &str) -> Result<(String, String), NotifyError> {
    let parts: Vec<&str> = arn.split(':').collect();
    let valid = parts.len() == 6
        && parts[0] == "arn"
        && parts[1].starts_with("aws")
        && parts[2] == "sns"
        && !parts[3].is_empty()
        && parts[3]
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && parts[4].len() == 12
        && parts[4].chars().all(|c| c.is_ascii_digit())
        && !parts[5].is_empty();
    if !valid {
        return Err(NotifyError::Config(format!(
            "{TOPIC_ENV} is not an SNS topic ARN (arn:aws:sns:REGION:ACCOUNT:NAME)"
        )));
    }
    Ok((parts[1].to_owned(), parts[3].to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:sns:eu-west-1:123456789012:ispmon-alerts";

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDTESTKEYID".to_owned(),
            secret_access_key: "secret/with+chars".to_owned(),
            session_token: Some("session-token-value".to_owned()),
        }
    }

    /// The default endpoint is the topic's regional one; China regions use amazonaws.com.cn.
    #[test]
    fn default_endpoint_follows_the_topic_region() {
        let p = SnsPublisher::new(ARN, None, creds()).unwrap();
        assert_eq!(
            p.api.endpoint().as_str(),
            "https://sns.eu-west-1.amazonaws.com/"
        );
        assert_eq!(p.api.host(), "sns.eu-west-1.amazonaws.com");
        let cn =
            SnsPublisher::new("arn:aws-cn:sns:cn-north-1:123456789012:t", None, creds()).unwrap();
        assert_eq!(
            cn.api.endpoint().as_str(),
            "https://sns.cn-north-1.amazonaws.com.cn/"
        );
    }

    /// Plain HTTP only to loopback; a bad ARN or URL names the variable to fix.
    #[test]
    fn configuration_errors_say_what_to_fix() {
        let loopback = SnsPublisher::new(ARN, Some("http://127.0.0.1:9999/"), creds()).unwrap();
        assert_eq!(loopback.api.host(), "127.0.0.1:9999");
        assert!(SnsPublisher::new(ARN, Some("http://[::1]:9/"), creds()).is_ok());
        let err = SnsPublisher::new(ARN, Some("http://sns.example.com/"), creds()).unwrap_err();
        assert!(err.to_string().contains("must be https://"), "{err}");
        let err =
            SnsPublisher::new("arn:aws:sqs:eu-west-1:123456789012:q", None, creds()).unwrap_err();
        assert!(err.to_string().contains(TOPIC_ENV), "{err}");
        let err = SnsPublisher::new(ARN, Some("not a url"), creds()).unwrap_err();
        assert!(err.to_string().contains(ENDPOINT_ENV), "{err}");
    }

    /// Missing credentials name the variable; the error never shows a value.
    #[test]
    fn missing_credentials_are_named() {
        let err = credentials_from(|name| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKIDX".to_owned()),
            _ => None,
        })
        .unwrap_err();
        assert!(err.to_string().contains("AWS_SECRET_ACCESS_KEY"), "{err}");
        assert!(!err.to_string().contains("AKIDX"));
    }

    /// Subjects become printable ASCII under 100 characters.
    #[test]
    fn subjects_fit_sns_limits() {
        assert_eq!(sns_subject("büro\nline"), "b?ro?line");
        assert_eq!(sns_subject(&"x".repeat(300)).len(), MAX_SUBJECT_CHARS);
    }

    /// The outage email: device, duration, UTC times, the cause in words, whether it counts.
    #[test]
    fn outage_email_says_what_happened() {
        let report = OutageReport {
            id: "o-1".to_owned(),
            start: "2026-12-01T10:00:00Z".parse().unwrap(),
            end: "2026-12-01T10:12:30Z".parse().unwrap(),
            cause: Cause::Lan,
            detail: "gateway 192.168.1.1 did not answer".to_owned(),
        };
        let (subject, message) = outage_email(
            "attic",
            &report,
            "your local network (the router did not answer)",
        );
        assert_eq!(subject, "ISP Monitor: attic was offline for 12 min 30 s");
        assert!(message.starts_with(
            "attic was offline for 12 min 30 s, from 2026-12-01 10:00:00 to 2026-12-01 10:12:30"
        ));
        assert!(message.contains("Cause: your local network (the router did not answer).\n"));
        assert!(message.contains("downtime: no (not the ISP's doing)"));
        assert!(message.contains("What the agent saw: gateway 192.168.1.1 did not answer\n"));
        let isp = OutageReport {
            cause: Cause::Isp,
            ..report
        };
        assert!(
            outage_email("attic", &isp, "x")
                .1
                .contains("downtime: yes.")
        );
    }
}
