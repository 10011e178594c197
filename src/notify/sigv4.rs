//! AWS Signature Version 4 for one request (docs/platform.md §12): the canonical request, the
//! string to sign, the derived signing key and the `Authorization` header.
//!
//! Only what a Query API POST needs: a path, no query string, a few headers, a body. Checked
//! against AWS's published example (below) and, over loopback, against botocore's own signer
//! (tests/aws/sns_standin.py, run by tests/sns.rs).

use std::fmt;

use aws_lc_rs::{digest, hmac};
use chrono::{DateTime, Utc};

/// The algorithm name that starts the string to sign and the `Authorization` header.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The credentials a request is signed with. `Debug` never shows the secret or the token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Present for temporary credentials (a Lambda function's role); sent as
    /// `x-amz-security-token` and signed.
    pub session_token: Option<String>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Credentials {
    /// The strings that must never appear in output: the secret, the token and the key id (the
    /// id is not secret on its own, but there is no reason to print it either).
    pub fn secrets(&self) -> Vec<&str> {
        let mut secrets = vec![self.secret_access_key.as_str(), self.access_key_id.as_str()];
        if let Some(token) = &self.session_token {
            secrets.push(token);
        }
        secrets.retain(|s| !s.is_empty());
        secrets
    }
}

/// What is signed: the request as it will be sent.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    /// The `Host` header as sent: the host, and `:port` when it is not the scheme's default.
    pub host: &'a str,
    /// The absolute path, already URI-encoded (for SNS, `/`).
    pub path: &'a str,
    /// Headers other than `host`, `x-amz-date` and `x-amz-security-token` (those are added).
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// Where a signature is valid: region and service (`sns`).
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    pub region: &'a str,
    pub service: &'a str,
}

/// The headers to add to the request: `x-amz-date`, `x-amz-security-token` (temporary
/// credentials only) and `authorization`, in that order.
pub fn sign(
    request: &Request<'_>,
    credentials: &Credentials,
    scope: Scope<'_>,
    now: DateTime<Utc>,
) -> Vec<(&'static str, String)> {
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let date = &amz_date[..8];
    let mut headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| (name.to_ascii_lowercase(), canonical_value(value)))
        .collect();
    headers.push(("host".to_owned(), canonical_value(request.host)));
    headers.push(("x-amz-date".to_owned(), amz_date.clone()));
    if let Some(token) = &credentials.session_token {
        headers.push(("x-amz-security-token".to_owned(), canonical_value(token)));
    }
    headers.sort();
    let signed_headers = headers
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let canonical_request = format!(
        "{}\n{}\n\n{}\n{}\n{}",
        request.method,
        request.path,
        canonical_headers,
        signed_headers,
        hex_sha256(request.body)
    );
    let credential_scope = format!("{date}/{}/{}/aws4_request", scope.region, scope.service);
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{credential_scope}\n{}",
        hex_sha256(canonical_request.as_bytes())
    );
    let key = signing_key(&credentials.secret_access_key, date, scope);
    let signature = hex(hmac::sign(&key, string_to_sign.as_bytes()).as_ref());
    let authorization = format!(
        "{ALGORITHM} Credential={}/{credential_scope}, SignedHeaders={signed_headers}, Signature={signature}",
        credentials.access_key_id
    );
    let mut out = vec![("x-amz-date", amz_date)];
    if let Some(token) = &credentials.session_token {
        out.push(("x-amz-security-token", token.clone()));
    }
    out.push(("authorization", authorization));
    out
}

/// The key of one day, region and service: HMAC-SHA256 chained from `"AWS4" + secret`.
fn signing_key(secret: &str, date: &str, scope: Scope<'_>) -> hmac::Key {
    let mut key = format!("AWS4{secret}").into_bytes();
    for part in [date, scope.region, scope.service, "aws4_request"] {
        let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), part.as_bytes());
        key = tag.as_ref().to_vec();
    }
    hmac::Key::new(hmac::HMAC_SHA256, &key)
}

/// A header value as canonicalised: surrounding spaces trimmed, inner runs of spaces one space.
fn canonical_value(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn hex_sha256(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// `application/x-www-form-urlencoded` value encoding as the AWS Query API reads it: every byte
/// but the unreserved characters of RFC 3986 percent-encoded, upper-case hex.
pub fn form_encode(value: &str) -> String {
    use std::fmt::Write;
    value
        .bytes()
        .fold(String::with_capacity(value.len()), |mut s, b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                s.push(b as char);
            } else {
                let _ = write!(s, "%{b:02X}");
            }
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    /// AWS's published example credentials (IAM user guide, "Signature Version 4 signing process":
    /// the ListUsers example); not a real key.
    fn example_credentials() -> Credentials {
        Credentials {
            access_key_id: "AKIDEXAMPLE".to_owned(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_owned(),
            session_token: None,
        }
    }

    /// The derived key of AWS's documented example (20150830, us-east-1, iam).
    #[test]
    fn signing_key_matches_the_documented_example() {
        let scope = Scope {
            region: "us-east-1",
            service: "iam",
        };
        let key = signing_key(&example_credentials().secret_access_key, "20150830", scope);
        // The key itself is opaque in aws-lc-rs; the documented key signs "" to this tag.
        let documented = "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9";
        let documented_bytes: Vec<u8> = (0..documented.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&documented[i..i + 2], 16).unwrap())
            .collect();
        let expected = hmac::sign(
            &hmac::Key::new(hmac::HMAC_SHA256, &documented_bytes),
            b"probe",
        );
        assert_eq!(hmac::sign(&key, b"probe").as_ref(), expected.as_ref());
    }

    /// A GET with no body signs to the signature AWS documents for its ListUsers example, so
    /// canonical request, string to sign and key derivation all agree with AWS's.
    #[test]
    fn signature_matches_the_documented_example() {
        // The example signs GET /?Action=ListUsers&Version=2010-05-08; our signer takes no query,
        // so the canonical request is built the same way with the query in place.
        let now = Utc.with_ymd_and_hms(2015, 8, 30, 12, 36, 0).unwrap();
        let headers = [(
            "Content-Type",
            "application/x-www-form-urlencoded; charset=utf-8",
        )];
        let canonical_request = format!(
            "GET\n/\nAction=ListUsers&Version=2010-05-08\ncontent-type:{}\nhost:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n{}",
            headers[0].1,
            hex_sha256(b"")
        );
        assert_eq!(
            hex_sha256(canonical_request.as_bytes()),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let scope = Scope {
            region: "us-east-1",
            service: "iam",
        };
        let string_to_sign = format!(
            "{ALGORITHM}\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n{}",
            hex_sha256(canonical_request.as_bytes())
        );
        let key = signing_key(&example_credentials().secret_access_key, "20150830", scope);
        assert_eq!(
            hex(hmac::sign(&key, string_to_sign.as_bytes()).as_ref()),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
        // And `sign` builds that canonical request's header part the same way.
        let signed = sign(
            &Request {
                method: "GET",
                host: "iam.amazonaws.com",
                path: "/",
                headers: &headers,
                body: b"",
            },
            &example_credentials(),
            scope,
            now,
        );
        let authorization = &signed.last().unwrap().1;
        assert!(authorization.starts_with(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="
        ));
    }

    /// Temporary credentials add a signed `x-amz-security-token`; `Debug` hides secret and token.
    #[test]
    fn session_token_is_sent_signed_and_never_printed() {
        let credentials = Credentials {
            session_token: Some("TOKEN-SECRET-VALUE".to_owned()),
            ..example_credentials()
        };
        let now = Utc.with_ymd_and_hms(2026, 12, 1, 14, 0, 0).unwrap();
        let signed = sign(
            &Request {
                method: "POST",
                host: "sns.eu-west-1.amazonaws.com",
                path: "/",
                headers: &[],
                body: b"Action=Publish",
            },
            &credentials,
            Scope {
                region: "eu-west-1",
                service: "sns",
            },
            now,
        );
        let names: Vec<_> = signed.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            ["x-amz-date", "x-amz-security-token", "authorization"]
        );
        assert!(
            signed[2]
                .1
                .contains("SignedHeaders=host;x-amz-date;x-amz-security-token,")
        );
        let debug = format!("{credentials:?}");
        assert!(!debug.contains("TOKEN-SECRET-VALUE") && !debug.contains("EXAMPLEKEY"));
    }

    /// Form values: unreserved characters stay, everything else (UTF-8 bytes too) is %XX.
    #[test]
    fn form_encoding_is_rfc3986_unreserved() {
        assert_eq!(form_encode("a-Z_0.~"), "a-Z_0.~");
        assert_eq!(form_encode("a b&c=d+é\n"), "a%20b%26c%3Dd%2B%C3%A9%0A");
        assert_eq!(
            form_encode("arn:aws:sns:eu-west-1:1:t"),
            "arn%3Aaws%3Asns%3Aeu-west-1%3A1%3At"
        );
    }
}
