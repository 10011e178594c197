//! Cause classification: while heartbeats fail, the agent asks a few cheap questions and guesses
//! where the fault lies.
//!
//! - The endpoint answered with an error status: 401/403 (and other 4xx) mean our configuration is
//!   wrong, 5xx means the cloud side failed. Neither is a network outage, and no probe is needed.
//! - The endpoint could not be reached: probe the configured gateway (LAN), TCP targets reached by
//!   IP address (the internet), and the endpoint's host name (DNS).
//!   No target answers: the gateway too → `lan`, otherwise → `isp`. Targets answer but the name does
//!   not resolve → `dns`. Everything answers but the endpoint does not → `cloud`.
//!
//! A target counts as reachable only when a TCP connection completes; a refusal counts as
//! unreachable, like a timeout, so that tests can stand in for a dead upstream with a closed port.

use std::time::Duration;

use tokio::net::TcpStream;

use super::config::{AgentConfig, ProbeTarget};
use crate::outage::Cause;

/// How long each probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// Why one heartbeat attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptFailure {
    /// The endpoint answered, with this non-2xx status.
    Status(u16),
    /// No answer: connection refused or reset, name not resolved, timeout.
    Unreachable(String),
}

impl std::fmt::Display for AttemptFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttemptFailure::Status(status) => write!(f, "endpoint answered {status}"),
            AttemptFailure::Unreachable(why) => write!(f, "endpoint unreachable: {why}"),
        }
    }
}

/// What the probes saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Findings {
    /// `None` when the endpoint is addressed by IP, so there is no name to resolve.
    pub dns_resolves: Option<bool>,
    pub targets_reached: usize,
    pub targets_total: usize,
    /// `None` when no gateway is configured.
    pub gateway_reached: Option<bool>,
}

impl Findings {
    pub fn summary(&self) -> String {
        let mut parts = vec![format!(
            "{}/{} internet targets reached",
            self.targets_reached, self.targets_total
        )];
        match self.dns_resolves {
            Some(true) => parts.push("endpoint name resolves".to_owned()),
            Some(false) => parts.push("endpoint name does not resolve".to_owned()),
            None => {}
        }
        match self.gateway_reached {
            Some(true) => parts.push("gateway reached".to_owned()),
            Some(false) => parts.push("gateway unreachable".to_owned()),
            None => {}
        }
        parts.join(", ")
    }
}

/// Diagnoses one failed attempt; probes only when the endpoint gave no answer.
pub async fn diagnose(config: &AgentConfig, failure: &AttemptFailure) -> (Cause, String) {
    match failure {
        AttemptFailure::Status(status) if (500..600).contains(status) => {
            (Cause::Cloud, format!("endpoint answered {status}"))
        }
        AttemptFailure::Status(status @ (401 | 403)) => (
            Cause::Config,
            format!("endpoint answered {status}: check HEARTBEAT_KEY"),
        ),
        AttemptFailure::Status(status) => (
            Cause::Config,
            format!("endpoint answered {status}: check HEARTBEAT_URL"),
        ),
        AttemptFailure::Unreachable(why) => {
            let findings = probe(config).await;
            (
                classify(&findings),
                format!("{why}; {}", findings.summary()),
            )
        }
    }
}

/// The rules in the module documentation, as a pure function of what the probes saw.
pub fn classify(findings: &Findings) -> Cause {
    if findings.targets_reached == 0 {
        if findings.gateway_reached == Some(false) {
            Cause::Lan
        } else {
            Cause::Isp
        }
    } else if findings.dns_resolves == Some(false) {
        Cause::Dns
    } else {
        Cause::Cloud
    }
}

/// Runs every probe at once.
pub async fn probe(config: &AgentConfig) -> Findings {
    let host = config
        .url
        .host_str()
        .unwrap_or("")
        .trim_matches(['[', ']'])
        .to_owned();
    let port = config.url.port_or_known_default().unwrap_or(443);
    let dns = async {
        if host.parse::<std::net::IpAddr>().is_ok() {
            return None;
        }
        let lookup = tokio::time::timeout(
            PROBE_TIMEOUT,
            tokio::net::lookup_host((host.as_str(), port)),
        )
        .await;
        Some(match lookup {
            Ok(Ok(mut addresses)) => addresses.next().is_some(),
            _ => false,
        })
    };
    let targets = async {
        let mut attempts = tokio::task::JoinSet::new();
        for target in config.probe_targets.clone() {
            attempts.spawn(async move { reachable(&target).await });
        }
        let mut reached = 0;
        while let Some(attempt) = attempts.join_next().await {
            reached += usize::from(attempt.unwrap_or(false));
        }
        reached
    };
    let gateway = async {
        match &config.gateway {
            Some(gateway) => Some(reachable(gateway).await),
            None => None,
        }
    };
    let (dns_resolves, targets_reached, gateway_reached) = tokio::join!(dns, targets, gateway);
    Findings {
        dns_resolves,
        targets_reached,
        targets_total: config.probe_targets.len(),
        gateway_reached,
    }
}

/// Whether a TCP connection to `target` completes within the probe timeout.
async fn reachable(target: &ProbeTarget) -> bool {
    let connect = TcpStream::connect((target.host.as_str(), target.port));
    matches!(
        tokio::time::timeout(PROBE_TIMEOUT, connect).await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn findings(dns: Option<bool>, reached: usize, gateway: Option<bool>) -> Findings {
        Findings {
            dns_resolves: dns,
            targets_reached: reached,
            targets_total: 3,
            gateway_reached: gateway,
        }
    }

    /// The classification table.
    #[test]
    fn classification_rules() {
        assert_eq!(classify(&findings(Some(true), 0, None)), Cause::Isp);
        assert_eq!(classify(&findings(Some(false), 0, Some(true))), Cause::Isp);
        assert_eq!(classify(&findings(Some(false), 0, Some(false))), Cause::Lan);
        assert_eq!(classify(&findings(Some(false), 2, None)), Cause::Dns);
        assert_eq!(classify(&findings(Some(true), 1, None)), Cause::Cloud);
        assert_eq!(classify(&findings(None, 3, Some(true))), Cause::Cloud);
    }
}
