//! One signed call to an AWS Query API (SNS `Publish`, CloudWatch `DescribeAlarms`): a form POST
//! with `Action`, the action's parameters and `Version`, signed with SigV4 (docs/platform.md §12,
//! §17), its XML answer read bounded.
//!
//! Hostile or broken peers: a connect timeout and an overall timeout, the answer read up to
//! [`MAX_RESPONSE_BYTES`], no redirect followed (the request carries a signed session token),
//! plain HTTP refused except to loopback (tests). An error answer becomes one line with AWS's
//! error code and message; no error message contains the secret key, the session token or the
//! key id.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::Url;

use super::sigv4::{self, Credentials, Scope};

/// AWS answers these calls in well under a second; a function whose whole invocation is bounded
/// at 10 s (aws/template.yaml) must give up long before that.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// A PublishResponse is a few hundred bytes, an ErrorResponse under a kilobyte, a page of
/// DescribeAlarms (at most 100 alarms of about 2 KB each) under 256 KiB.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Why a call failed. Messages are one line and never contain a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryError {
    /// The configuration is incomplete or wrong: says which variable to fix.
    Config(String),
    /// No answer: connection refused, timeout, TLS failure.
    Transport(String),
    /// AWS (or whatever answered) refused: the status and AWS's error code and message.
    Refused { status: u16, detail: String },
    /// An answer that is not what the action returns.
    BadResponse(String),
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::Config(m) => write!(f, "configuration: {m}"),
            QueryError::Transport(m) => write!(f, "no answer: {m}"),
            QueryError::Refused { status, detail } => write!(f, "refused ({status}): {detail}"),
            QueryError::BadResponse(m) => write!(f, "unexpected answer: {m}"),
        }
    }
}

impl std::error::Error for QueryError {}

/// Where the credentials come from: the environment at each call (the Lambda runtime sets them
/// for the execution environment), or fixed ones (tests).
#[derive(Debug, Clone)]
pub enum CredentialSource {
    Environment,
    Fixed(Credentials),
}

impl CredentialSource {
    fn get(&self) -> Result<Credentials, QueryError> {
        match self {
            CredentialSource::Fixed(c) => Ok(c.clone()),
            CredentialSource::Environment => credentials_from(|name| std::env::var(name).ok()),
        }
    }
}

/// One service's Query API endpoint. Cheap to clone (the HTTP client is shared).
#[derive(Debug, Clone)]
pub struct QueryClient {
    client: reqwest::Client,
    endpoint: Url,
    /// The `Host` header as reqwest sends it (with `:port` when not the default).
    host: String,
    region: String,
    /// The SigV4 service name (`sns`, `monitoring`).
    service: &'static str,
    /// The API version every call sends (`2010-03-31` for SNS, `2010-08-01` for CloudWatch).
    version: &'static str,
    credentials: CredentialSource,
    max_response: usize,
}

impl QueryClient {
    /// A client for `endpoint` (or, when `None`, `https://<endpoint_prefix>.<region>.<suffix>/`),
    /// where `endpoint_var` is the variable a wrong endpoint is blamed on.
    pub fn new(
        endpoint: Option<&str>,
        endpoint_var: &str,
        partition: &str,
        region: &str,
        service: &'static str,
        version: &'static str,
        credentials: CredentialSource,
    ) -> Result<QueryClient, QueryError> {
        let default_endpoint;
        let endpoint = match endpoint {
            Some(e) => e,
            None => {
                let suffix = if partition == "aws-cn" {
                    "amazonaws.com.cn"
                } else {
                    "amazonaws.com"
                };
                default_endpoint = format!("https://{service}.{region}.{suffix}/");
                &default_endpoint
            }
        };
        let endpoint = Url::parse(endpoint)
            .map_err(|e| QueryError::Config(format!("{endpoint_var} is not a URL ({e})")))?;
        let host = endpoint
            .host_str()
            .ok_or_else(|| QueryError::Config(format!("{endpoint_var} has no host")))?
            .to_owned();
        match endpoint.scheme() {
            "https" => {}
            "http" if is_loopback(&host) => {}
            "http" => {
                return Err(QueryError::Config(format!(
                    "{endpoint_var} must be https:// (plain http only to loopback, for tests)"
                )));
            }
            other => {
                return Err(QueryError::Config(format!(
                    "{endpoint_var} has scheme {other}; use https://"
                )));
            }
        }
        if endpoint.query().is_some() || !endpoint.username().is_empty() {
            return Err(QueryError::Config(format!(
                "{endpoint_var} must have no query and no user"
            )));
        }
        let host = match endpoint.port() {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        let client = http_client(&endpoint, CONNECT_TIMEOUT, REQUEST_TIMEOUT)?;
        Ok(QueryClient {
            client,
            endpoint,
            host,
            region: region.to_owned(),
            service,
            version,
            credentials,
            max_response: MAX_RESPONSE_BYTES,
        })
    }

    /// The same client with other timeouts (tests use short ones). The HTTP client is rebuilt.
    pub fn with_timeouts(
        mut self,
        connect: Duration,
        total: Duration,
    ) -> Result<QueryClient, QueryError> {
        self.client = http_client(&self.endpoint, connect, total)?;
        Ok(self)
    }

    /// The same client reading answers up to `bytes` (at most [`MAX_RESPONSE_BYTES`]).
    pub fn with_max_response(mut self, bytes: usize) -> QueryClient {
        self.max_response = bytes.min(MAX_RESPONSE_BYTES);
        self
    }

    pub fn endpoint(&self) -> &Url {
        &self.endpoint
    }

    /// The `Host` header the requests carry.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Calls `action` with `params` (names and values, encoded here), signed as of `now`. Returns
    /// the body of a 2xx answer; anything else is an error.
    pub async fn call(
        &self,
        action: &str,
        params: &[(&str, &str)],
        now: DateTime<Utc>,
    ) -> Result<String, QueryError> {
        let credentials = self.credentials.get()?;
        let mut body = format!("Action={}", sigv4::form_encode(action));
        for (name, value) in params {
            body.push('&');
            body.push_str(&sigv4::form_encode(name));
            body.push('=');
            body.push_str(&sigv4::form_encode(value));
        }
        body.push_str("&Version=");
        body.push_str(self.version);

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
                service: self.service,
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
            .map_err(|e| redact_error(QueryError::Transport(describe(&e)), &secrets))?;
        let status = response.status();
        let text = read_bounded(response, self.max_response)
            .await
            .map_err(|e| redact_error(e, &secrets))?;
        if status.is_redirection() {
            return Err(QueryError::Refused {
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
            return Err(QueryError::Refused {
                status: status.as_u16(),
                // Redacted before it is cut short, so no part of a secret can survive the cut.
                detail: one_line(&redact(&detail, &secrets), 500),
            });
        }
        Ok(text)
    }
}

fn http_client(
    endpoint: &Url,
    connect: Duration,
    total: Duration,
) -> Result<reqwest::Client, QueryError> {
    reqwest::Client::builder()
        .connect_timeout(connect)
        .timeout(total)
        .redirect(reqwest::redirect::Policy::none())
        .https_only(endpoint.scheme() == "https")
        .build()
        .map_err(|e| QueryError::Config(format!("cannot build the HTTP client: {e}")))
}

/// The function's credentials, as the Lambda runtime sets them.
pub fn credentials_from(get: impl Fn(&str) -> Option<String>) -> Result<Credentials, QueryError> {
    let need = |name: &str| {
        get(name).filter(|v| !v.is_empty()).ok_or_else(|| {
            QueryError::Config(format!(
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

pub fn is_loopback(host: &str) -> bool {
    if host == "localhost" {
        return true;
    }
    host.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

async fn read_bounded(mut response: reqwest::Response, max: usize) -> Result<String, QueryError> {
    if response.content_length().is_some_and(|n| n > max as u64) {
        return Err(QueryError::BadResponse(format!(
            "an answer over {max} bytes"
        )));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| QueryError::Transport(describe(&e)))?
    {
        if body.len() + chunk.len() > max {
            return Err(QueryError::BadResponse(format!(
                "an answer over {max} bytes"
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
fn redact_error(e: QueryError, secrets: &[&str]) -> QueryError {
    let clean = |m: &str| one_line(&redact(m, secrets), 300);
    match e {
        QueryError::Transport(m) => QueryError::Transport(clean(&m)),
        QueryError::BadResponse(m) => QueryError::BadResponse(clean(&m)),
        other => other,
    }
}

/// `text` with every occurrence of each secret replaced. An error text from a peer could echo
/// the request (a canonical request holds the session token).
pub fn redact(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(text.to_owned(), |t, s| t.replace(s, "<redacted>"))
}

/// The text of the first `<tag>…</tag>` in `xml`, entities for `&`, `<`, `>`, quotes decoded.
pub fn xml_text(xml: &str, tag: &str) -> Option<String> {
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

/// The inner texts of the `<tag>…</tag>` elements directly inside `xml` at its top level (an
/// element of the same name nested deeper, such as a dimension's `<member>` inside an alarm's
/// `<member>`, stays part of its parent). `None` when the tags do not balance.
pub fn xml_children<'a>(xml: &'a str, tag: &str) -> Option<Vec<&'a str>> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let find = |pattern: &str, from: usize| xml[from..].find(pattern).map(|i| i + from);
    let mut out = Vec::new();
    let mut depth = 0usize;
    let mut start = 0usize;
    // Each search runs once per tag found, from where the last one of its kind ended: linear in
    // the answer's length, whatever a peer nests.
    let mut next_open = find(&open, 0);
    let mut next_close = find(&close, 0);
    loop {
        match (next_open, next_close) {
            (Some(o), Some(c)) if o < c => {
                if depth == 0 {
                    start = o + open.len();
                }
                depth += 1;
                next_open = find(&open, o + open.len());
            }
            (_, Some(c)) => {
                if depth == 0 {
                    return None;
                }
                depth -= 1;
                if depth == 0 {
                    out.push(&xml[start..c]);
                }
                next_close = find(&close, c + close.len());
            }
            (Some(_), None) => return None,
            (None, None) => return if depth == 0 { Some(out) } else { None },
        }
    }
}

/// Control characters removed, at most `max` characters.
pub fn one_line(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDTESTKEYID".to_owned(),
            secret_access_key: "secret/with+chars".to_owned(),
            session_token: Some("session-token-value".to_owned()),
        }
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

    /// Top-level members only; nested members stay inside; unbalanced tags are refused.
    #[test]
    fn xml_children_keep_nesting() {
        let xml = "<member><A>1</A><D><member>x</member></D></member><member><A>2</A></member>";
        let children = xml_children(xml, "member").unwrap();
        assert_eq!(
            children,
            vec!["<A>1</A><D><member>x</member></D>", "<A>2</A>"]
        );
        assert_eq!(xml_children("<member>a", "member"), None);
        assert_eq!(xml_children("a</member>", "member"), None);
        assert_eq!(xml_children("none", "member"), Some(vec![]));
    }

    /// A peer's deepest nesting within the size bound is read in linear time.
    #[test]
    fn xml_children_is_linear() {
        let n = MAX_RESPONSE_BYTES / 20;
        let xml = format!("{}{}", "<member>".repeat(n), "</member>".repeat(n));
        let started = std::time::Instant::now();
        assert_eq!(xml_children(&xml, "member").map(|c| c.len()), Some(1));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    /// Default endpoints are regional; China regions use amazonaws.com.cn; plain HTTP only to
    /// loopback, with the variable to fix named.
    #[test]
    fn endpoints_are_checked() {
        let c = || CredentialSource::Fixed(creds());
        let cw = QueryClient::new(None, "X", "aws", "eu-west-1", "monitoring", "v", c()).unwrap();
        assert_eq!(
            cw.endpoint().as_str(),
            "https://monitoring.eu-west-1.amazonaws.com/"
        );
        let cn = QueryClient::new(None, "X", "aws-cn", "cn-north-1", "sns", "v", c()).unwrap();
        assert_eq!(
            cn.endpoint().as_str(),
            "https://sns.cn-north-1.amazonaws.com.cn/"
        );
        let err = QueryClient::new(
            Some("http://example.com/"),
            "MY_VAR",
            "aws",
            "r",
            "s",
            "v",
            c(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("MY_VAR must be https://"), "{err}");
    }
}
