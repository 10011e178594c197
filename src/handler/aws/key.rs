//! The function key. A Function URL with auth type `NONE` lets anyone call the function
//! (docs/platform.md §12), so the function itself checks the key, the same key clients already
//! send to Azure: the `x-functions-key` header, else the `code` query parameter (as the Functions
//! host reads them, docs/platform.md §1).

use std::fmt;

/// The environment variable that holds the key (interface C; set by aws/template.yaml).
pub const FUNCTION_KEY_VAR: &str = "ISP_MONITOR_FUNCTION_KEY";
/// The header a client sends the key in, as for Azure.
pub const KEY_HEADER: &str = "x-functions-key";
/// The query parameter a client may send the key in instead (a URL copied with its key).
pub const KEY_QUERY: &str = "code";
/// Shortest key accepted: a guessable key on a public URL is no key.
pub const MIN_KEY_CHARS: usize = 16;
/// Longest key accepted (and longest candidate compared).
pub const MAX_KEY_CHARS: usize = 512;

/// The configured key. Its `Debug` never shows it.
#[derive(Clone)]
pub struct FunctionKey(Vec<u8>);

impl fmt::Debug for FunctionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FunctionKey({} bytes)", self.0.len())
    }
}

/// Why a request was not let in: the one-line reason of its 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyRefusal {
    Missing,
    Wrong,
}

impl fmt::Display for KeyRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyRefusal::Missing => {
                "missing function key: send it in the x-functions-key header or as ?code="
            }
            KeyRefusal::Wrong => "the function key is not valid",
        })
    }
}

impl FunctionKey {
    /// The key from the environment, or what to fix. The message never contains the key.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<FunctionKey, String> {
        let Some(value) = env(FUNCTION_KEY_VAR) else {
            return Err(format!(
                "{FUNCTION_KEY_VAR} is not set; the function refuses to run without a key \
                 (its URL is public). Set it to the key the agent sends as HEARTBEAT_KEY"
            ));
        };
        let key = value.trim();
        let chars = key.chars().count();
        if chars < MIN_KEY_CHARS {
            return Err(format!(
                "{FUNCTION_KEY_VAR} is {chars} characters; use at least {MIN_KEY_CHARS} \
                 (a random key, as deploy_aws.sh makes)"
            ));
        }
        if chars > MAX_KEY_CHARS {
            return Err(format!(
                "{FUNCTION_KEY_VAR} is {chars} characters; the limit is {MAX_KEY_CHARS}"
            ));
        }
        if !key.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "{FUNCTION_KEY_VAR} must be printable ASCII without spaces (it travels in a header and a URL)"
            ));
        }
        Ok(FunctionKey(key.as_bytes().to_vec()))
    }

    /// Checks what a client sent: the header when it sent one (as the Functions host does), else
    /// the query parameter.
    pub fn check(&self, header: Option<&str>, query: Option<&str>) -> Result<(), KeyRefusal> {
        let Some(candidate) = header.or(query) else {
            return Err(KeyRefusal::Missing);
        };
        if candidate.is_empty() {
            return Err(KeyRefusal::Missing);
        }
        if self.matches(candidate.as_bytes()) {
            Ok(())
        } else {
            Err(KeyRefusal::Wrong)
        }
    }

    /// Constant-time comparison: the time taken depends on the configured key's length only,
    /// never on how much of the candidate is right or how long it is.
    fn matches(&self, candidate: &[u8]) -> bool {
        let expected = &self.0;
        let mut difference = u8::from(candidate.len() != expected.len());
        for (index, byte) in expected.iter().enumerate() {
            let other = candidate.get(index).copied().unwrap_or(0);
            difference |= byte ^ other;
        }
        std::hint::black_box(difference) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> FunctionKey {
        FunctionKey(b"0123456789abcdef-key".to_vec())
    }

    /// The header wins over the query, as on Azure; empty is missing; near misses are wrong.
    #[test]
    fn header_then_query() {
        let key = key();
        assert_eq!(key.check(Some("0123456789abcdef-key"), None), Ok(()));
        assert_eq!(key.check(None, Some("0123456789abcdef-key")), Ok(()));
        assert_eq!(
            key.check(Some("nope"), Some("0123456789abcdef-key")),
            Err(KeyRefusal::Wrong)
        );
        assert_eq!(key.check(None, None), Err(KeyRefusal::Missing));
        assert_eq!(key.check(Some(""), None), Err(KeyRefusal::Missing));
        for near in [
            "0123456789abcdef-ke",
            "0123456789abcdef-key!",
            "0123456789abcdef-kez",
        ] {
            assert_eq!(
                key.check(Some(near), None),
                Err(KeyRefusal::Wrong),
                "{near}"
            );
        }
    }

    /// Missing, short, long or odd keys are configuration errors that never echo the value.
    #[test]
    fn configuration_errors_name_the_fix_not_the_key() {
        let env = |value: Option<&'static str>| move |_: &str| value.map(str::to_owned);
        assert!(
            FunctionKey::from_env(env(None))
                .unwrap_err()
                .contains("is not set")
        );
        let short = FunctionKey::from_env(env(Some("s3cret"))).unwrap_err();
        assert!(
            short.contains("6 characters") && !short.contains("s3cret"),
            "{short}"
        );
        let spaced = FunctionKey::from_env(env(Some("0123456789 abcdefgh"))).unwrap_err();
        assert!(!spaced.contains("0123456789"), "{spaced}");
        let ok = FunctionKey::from_env(env(Some(" 0123456789abcdef-key\n"))).unwrap();
        assert_eq!(ok.check(Some("0123456789abcdef-key"), None), Ok(()));
        assert_eq!(format!("{ok:?}"), "FunctionKey(20 bytes)");
    }
}
