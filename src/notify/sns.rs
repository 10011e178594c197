//! Publishing one message to an SNS topic: the Query API's `Publish` action as a SigV4-signed
//! form POST (docs/platform.md §12), with the function's own credentials from the environment.
//!
//! Hostile or broken peers: the request has a connect timeout and an overall timeout, the answer
//! is read up to [`MAX_RESPONSE_BYTES`], redirects are not followed (the request carries a signed
//! session token), plain HTTP is refused except to loopback (tests), and no error message contains
//! the secret key, the session token or the key id.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Url;

use super::sigv4::{self, Credentials, Scope};
use crate::outage::{Cause, OutageReport};

/// The topic outage emails go to; unset, the function sends none.
pub const TOPIC_ENV: &str = "ISP_MONITOR_SNS_TOPIC_ARN";
/// Overrides the endpoint (tests point it at a loopback stand-in); default the topic's regional
/// endpoint, `https://sns.<region>.amazonaws.com/`.
pub const ENDPOINT_ENV: &str = "ISP_MONITOR_SNS_ENDPOINT";

/// SNS answers a Publish in well under a second; a function whose whole invocation is bounded at
/// 10 s (aws/template.yaml) must give up on SNS long before that.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
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

/// Where the credentials come from: the environment at each publish (the Lambda runtime sets
/// them for the execution environment), or fixed ones (tests).
#[derive(Debug, Clone)]
enum CredentialSource {
    Environment,
    Fixed(Credentials),
}

/// Publishes to one topic. Cheap to clone (the HTTP client is shared).
#[derive(Debug, Clone)]
pub struct SnsPublisher {
    client: reqwest::Client,
    endpoint: Url,
    /// The `Host` header as reqwest sends it (with `:port` when not the default).
    host: String,
    topic_arn: String,
    region: String,
    credentials: CredentialSource,
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
        let default_endpoint;
        let endpoint = match endpoint {
            Some(e) => e,
            None => {
                let suffix = if partition == "aws-cn" {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                default_endpoint = format!("https://sns.{region}.{suffix}/");
                &default_endpoint
            }
        };
        let endpoint = Url::parse(endpoint)
            .map_err(|e| NotifyError::Config(format!("{ENDPOINT_ENV} is not a URL ({e})")))?;
        let host = endpoint
            .host_str()
            .ok_or_else(|| NotifyError::Config(format!("{ENDPOINT_ENV} has no host")))?
            .to_owned();
        match endpoint.scheme() {
            "https" => {}
            "http" if is_loopback(&host) => {}
            "http" => {
                return Err(NotifyError::Config(format!(
                    "{ENDPOINT_ENV} must be https:// (plain http only to loopback, for tests)"
                )));
            }
            other => {
                return Err(NotifyError::Config(format!(
                    "{ENDPOINT_ENV} has scheme {other}; use https://"
                )));
            }
        }
        if endpoint.query().is_some() || !endpoint.username().is_empty() {
            return Err(NotifyError::Config(format!(
                "{ENDPOINT_ENV} must have no query and no user"
            )));
        }
        let host = match endpoint.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(endpoint.scheme() == "https")
            .build()
            .map_err(|e| NotifyError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(SnsPublisher {
            client,
            endpoint,
            host,
            topic_arn: topic_arn.to_owned(),
            region,
            credentials,
        })
    }

    /// The same publisher with other timeouts (tests use short ones; a caller with a tighter
    /// budget than the function's may too). The HTTP client is rebuilt.
    pub fn with_timeouts(
        mut self,
        connect: Duration,
        total: Duration,
    ) -> Result<SnsPublisher, NotifyError> {
        self.client = reqwest::Client::builder()
            .connect_timeout(connect)
            .timeout(total)
            .redirect(reqwest::redirect::Policy::none())
            .https_only(self.endpoint.scheme() == "https")
            .build()
            .map_err(|e| NotifyError::Config(format!("cannot build the HTTP client: {e}")))?;
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
        let credentials = match &self.credentials {
            CredentialSource::Fixed(c) => c.clone(),
            CredentialSource::Environment => credentials_from(|name| std::env::var(name).ok())?,
        };
        let subject = sns_subject(subject);
        let mut body = format!(
            "Action=Publish&TopicArn={}&Message={}",
            sigv4::form_encode(&self.topic_arn),
            sigv4::form_encode(message)
        );
        if !subject.is_empty() {
            body.push_str("&Subject=");
            body.push_str(&sigv4::form_encode(&subject));
        }
        body.push_str("&Version=");
        body.push_str(API_VERSION);

        const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
        let signed = sigv4::sign(
            &sigv4::Request {
                method: "POST",
                host: &self.host,
                path: self.endpoint.path(),
                headers: &[("content-type", CONTENT_TYPE)],
                body: body.as_bytes(),
            },
            &credentials,
            Scope {
                region: &self.region,
                service: "sns",
            },
            now,
        );
        let mut request = self
            .client
            .post(self.endpoint.clone())
            .header("content-type", CONTENT_TYPE)
            .body(body);
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let secrets = credentials.secrets();
        let response = request
            .send()
            .await
            .map_err(|e| redact_error(NotifyError::Transport(describe(&e)), &secrets))?;
        let status = response.status();
        let text = read_bounded(response)
            .await
            .map_err(|e| redact_error(e, &secrets))?;
        if status.is_redirection() {
            return Err(NotifyError::Refused {
                status: status.as_u16(),
                detail: "a redirect, not followed".to_owned(),
            });
        }
        if !status.is_success() {
            let code = xml_text(&text, "Code").unwrap_or_default();
            let message = xml_text(&text, "Message").unwrap_or_default();
            let detail = match (code.is_empty(), message.is_empty()) {
                (true, true) => "no error code in the answer".to_owned(),
                (false, true) => code,
                (true, false) => message,
                (false, false) => format!("{code}: {message}"),
            };
            return Err(NotifyError::Refused {
                status: status.as_u16(),
                // Redacted before it is cut short, so no part of a secret can survive the cut.
                detail: one_line(&redact(&detail, &secrets), 500),
            });
        }
        match xml_text(&text, "MessageId") {
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
    let need = |name: &str| {
        get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            NotifyError::Config(format!(
                "{name} is not set (the Lambda runtime sets it from the function's role)"
            ))
        })
    };
    Ok(Credentials {
        access_key_id: need("AWS_ACCESS_KEY_ID")?,
        secret_access_key: need("AWS_SECRET_ACCESS_KEY")?,
        session_token: get("AWS_SESSION_TOKEN").filter(|v| !v.is_empty()),
    })
}

/// `arn:PARTITION:sns:REGION:ACCOUNT:NAME` → (partition, region).
fn parse_topic_arn(arn: &str) -> Result<(String, String), NotifyError> {
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

fn is_loopback(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

async fn read_bounded(mut response: reqwest::Response) -> Result<String, NotifyError> {
    if response
        .content_length()
        .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
    {
        return Err(NotifyError::BadResponse(format!(
            "an answer over {MAX_RESPONSE_BYTES} bytes"
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| NotifyError::Transport(describe(&e)))?
    {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(NotifyError::BadResponse(format!(
                "an answer over {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// A reqwest error with its causes (reqwest's own text names the URL, which holds no secret: the
/// signature is in a header); [`redact_error`] makes it one short line.
fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = format!("{kind}: {e}");
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// Secrets removed first, then cut to one short line (cutting first could leave part of one).
fn redact_error(e: NotifyError, secrets: &[&str]) -> NotifyError {
    let clean = |m: &str| one_line(&redact(m, secrets), 300);
    match e {
        NotifyError::Transport(m) => NotifyError::Transport(clean(&m)),
        NotifyError::BadResponse(m) => NotifyError::BadResponse(clean(&m)),
        other => other,
    }
}

/// `text` with every occurrence of each secret replaced. An error text from a peer could echo
/// the request (a canonical request holds the session token).
fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(text.to_owned(), |t, s| t.replace(s, "<redacted>"))
}

/// The text of the first `<tag>…</tag>`, entities for `&`, `<`, `>`, quotes decoded.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(
        xml[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&")
            .trim()
            .to_owned(),
    )
}

/// Control characters removed, at most `max` characters.
fn one_line(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect()
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
        assert_eq!(p.endpoint.as_str(), "https://sns.eu-west-1.amazonaws.com/");
        assert_eq!(p.host, "sns.eu-west-1.amazonaws.com");
        let cn =
            SnsPublisher::new("arn:aws-cn:sns:cn-north-1:123456789012:t", None, creds()).unwrap();
        assert_eq!(
            cn.endpoint.as_str(),
            "https://sns.cn-north-1.amazonaws.com.cn/"
        );
    }

    /// Plain HTTP only to loopback; a bad ARN or URL names the variable to fix.
    #[test]
    fn configuration_errors_say_what_to_fix() {
        let loopback = SnsPublisher::new(ARN, Some("http://127.0.0.1:9999/"), creds()).unwrap();
        assert_eq!(loopback.host, "127.0.0.1:9999");
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

    /// Secrets echoed by a peer are replaced; short strings are left alone.
    #[test]
    fn redaction_removes_every_secret() {
        let c = creds();
        let text = "bad: session-token-value and secret/with+chars and AKIDTESTKEYID";
        let out = redact(text, &c.secrets());
        assert_eq!(out, "bad: <redacted> and <redacted> and <redacted>");
    }

    /// An ErrorResponse's code and message, with XML entities decoded.
    #[test]
    fn xml_fields_are_read() {
        let xml = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidParameter</Code>\
                   <Message>Invalid parameter: Subject &amp; more</Message></Error></ErrorResponse>";
        assert_eq!(xml_text(xml, "Code").unwrap(), "InvalidParameter");
        assert_eq!(
            xml_text(xml, "Message").unwrap(),
            "Invalid parameter: Subject & more"
        );
        assert_eq!(xml_text(xml, "MessageId"), None);
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
