//! Cause classification: while heartbeats fail, the agent asks a few cheap questions and guesses
//! where the fault lies.
//!
//! - The endpoint answered with an error status: 401/403 (and other 4xx) and any redirect mean our
//!   configuration is wrong; 5xx means the cloud side failed, and 429 that the cloud side is
//!   throttling the agent. None is a network outage, and no probe is needed.
//! - The endpoint could not be reached: probe the configured gateway (LAN), TCP targets reached by
//!   IP address (the internet), and the endpoint's host name (DNS).
//!   No target answers: the gateway too → `lan`, otherwise → `isp`. Targets answer but the name does
//!   not resolve → `dns`. Everything answers but the endpoint does not → `cloud`.
//!
//! A target counts as reachable only when a TCP connection completes; a refusal counts as
//! unreachable, like a timeout, so that tests can stand in for a dead upstream with a closed port.

use std::future::Future;
use std::time::Duration;

use tokio::net::TcpStream;

use super::config::{AgentConfig, ProbeTarget};
use super::transport::AttemptFailure;
use crate::outage::Cause;

/// How long each probe may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

/// The two questions the probes ask of the network: the only side effects of classification, so
/// that tests can answer them with fakes. [`RealNetwork`] asks the operating system.
pub trait Network: Clone + Send + Sync + 'static {
    /// Whether `host` resolves to at least one address.
    fn resolves(&self, host: String, port: u16) -> impl Future<Output = bool> + Send;
    /// Whether a TCP connection to `target` completes.
    fn connects(&self, target: ProbeTarget) -> impl Future<Output = bool> + Send;
}

/// The system resolver and real TCP connections.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealNetwork;

impl Network for RealNetwork {
    async fn resolves(&self, host: String, port: u16) -> bool {
        match tokio::net::lookup_host((host.as_str(), port)).await {
            Ok(mut addresses) => addresses.next().is_some(),
            Err(_) => false,
        }
    }

    async fn connects(&self, target: ProbeTarget) -> bool {
        TcpStream::connect((target.host.as_str(), target.port))
            .await
            .is_ok()
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

/// The cause an answer from the endpoint means, with no probing needed; `None` when the endpoint
/// gave no answer.
pub fn answered_cause(failure: &AttemptFailure) -> Option<(Cause, String)> {
    Some(match failure {
        AttemptFailure::Status { status: 429, .. } => (
            Cause::Cloud,
            format!("{failure}: the cloud side is throttling this agent"),
        ),
        AttemptFailure::Status { status, .. } if (500..600).contains(status) => {
            (Cause::Cloud, failure.to_string())
        }
        AttemptFailure::Status {
            status: 401 | 403, ..
        } => (Cause::Config, format!("{failure}: check HEARTBEAT_KEY")),
        AttemptFailure::Status { .. } => (Cause::Config, format!("{failure}: check HEARTBEAT_URL")),
        AttemptFailure::Redirect { .. } => (Cause::Config, failure.to_string()),
        AttemptFailure::Unreachable(_) => return None,
    })
}

/// Diagnoses one failed attempt; probes only when the endpoint gave no answer.
pub async fn diagnose(
    network: &impl Network,
    config: &AgentConfig,
    failure: &AttemptFailure,
) -> (Cause, String) {
    if let Some(answered) = answered_cause(failure) {
        return answered;
    }
    let findings = probe(network, config).await;
    (
        classify(&findings),
        format!("{failure}; {}", findings.summary()),
    )
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

/// Runs every probe at once, each bounded by [`PROBE_TIMEOUT`].
pub async fn probe(network: &impl Network, config: &AgentConfig) -> Findings {
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
        let lookup = tokio::time::timeout(PROBE_TIMEOUT, network.resolves(host.clone(), port));
        Some(lookup.await.unwrap_or(false))
    };
    let targets = async {
        let mut attempts = tokio::task::JoinSet::new();
        for target in config.probe_targets.clone() {
            let network = network.clone();
            attempts.spawn(async move {
                tokio::time::timeout(PROBE_TIMEOUT, network.connects(target))
                    .await
                    .unwrap_or(false)
            });
        }
        let mut reached = 0;
        while let Some(attempt) = attempts.join_next().await {
            reached += usize::from(attempt.unwrap_or(false));
        }
        reached
    };
    let gateway = async {
        match &config.gateway {
            Some(gateway) => Some(
                tokio::time::timeout(PROBE_TIMEOUT, network.connects(gateway.clone()))
                    .await
                    .unwrap_or(false),
            ),
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

    /// A network answering from a table; `None` never answers at all.
    #[derive(Clone)]
    struct FakeNetwork {
        resolves: Option<bool>,
        up: std::sync::Arc<Vec<(String, Option<bool>)>>,
    }

    impl Network for FakeNetwork {
        async fn resolves(&self, _host: String, _port: u16) -> bool {
            match self.resolves {
                Some(answer) => answer,
                None => std::future::pending().await,
            }
        }
        async fn connects(&self, target: ProbeTarget) -> bool {
            let answer = self
                .up
                .iter()
                .find(|(t, _)| *t == target.to_string())
                .and_then(|(_, a)| *a);
            match answer {
                Some(answer) => answer,
                None => std::future::pending().await,
            }
        }
    }

    fn config(gateway: Option<&str>) -> AgentConfig {
        let mut argv = vec![
            "heartbeat-agent",
            "--state-dir",
            "/nonexistent",
            "--url",
            "https://f.example/api/ping",
            "--probe-targets",
            "10.0.0.1:443,10.0.0.2:53,10.0.0.3:443",
        ];
        if let Some(gateway) = gateway {
            argv.extend(["--gateway", gateway]);
        }
        use clap::Parser;
        super::super::config::Options::try_parse_from(argv)
            .unwrap()
            .validate()
            .unwrap()
    }

    /// Each failure is diagnosed from what a fake network answers; a probe that never answers
    /// counts as a failure after the probe timeout (paused time: no real waiting).
    #[tokio::test(start_paused = true)]
    async fn diagnosis_with_fake_networks() {
        let unreachable = AttemptFailure::Unreachable("connection refused".into());
        let net = |resolves, up: &[(&str, Option<bool>)]| FakeNetwork {
            resolves,
            up: std::sync::Arc::new(up.iter().map(|(t, a)| (t.to_string(), *a)).collect()),
        };
        let all_up = [
            ("10.0.0.1:443", Some(true)),
            ("10.0.0.2:53", Some(true)),
            ("10.0.0.3:443", Some(true)),
        ];
        let cases: [(FakeNetwork, Option<&str>, Cause); 5] = [
            (net(Some(true), &all_up), None, Cause::Cloud),
            (net(Some(false), &all_up), None, Cause::Dns),
            (
                net(None, &[("10.0.0.1:443", Some(false))]),
                None,
                Cause::Isp,
            ),
            (
                net(Some(true), &[("192.168.1.1:80", Some(false))]),
                Some("192.168.1.1:80"),
                Cause::Lan,
            ),
            (
                net(Some(true), &[("192.168.1.1:80", Some(true))]),
                Some("192.168.1.1:80"),
                Cause::Isp,
            ),
        ];
        for (network, gateway, expected) in cases {
            let started = tokio::time::Instant::now();
            let (cause, detail) = diagnose(&network, &config(gateway), &unreachable).await;
            assert_eq!(cause, expected, "{detail}");
            assert!(
                started.elapsed() <= PROBE_TIMEOUT,
                "bounded by the probe timeout"
            );
        }
        let throttled = AttemptFailure::Status {
            status: 429,
            retry_after: Some(Duration::from_secs(120)),
        };
        let (cause, detail) = diagnose(&net(None, &[]), &config(None), &throttled).await;
        assert_eq!(cause, Cause::Cloud);
        assert_eq!(
            detail,
            "endpoint answered 429 (Retry-After 120 s): the cloud side is throttling this agent"
        );
        let moved = AttemptFailure::Redirect {
            status: 301,
            location: Some("https://f.example/api/ping".into()),
        };
        assert_eq!(
            diagnose(&net(None, &[]), &config(None), &moved).await.0,
            Cause::Config
        );
    }

    /// The real probes against loopback: a listening port is reached, a closed one is not.
    #[tokio::test]
    async fn real_probes_on_loopback() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = ProbeTarget {
            host: "127.0.0.1".into(),
            port: listener.local_addr().unwrap().port(),
        };
        let closed_port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let closed = ProbeTarget {
            host: "127.0.0.1".into(),
            port: closed_port,
        };
        assert!(RealNetwork.connects(open).await);
        assert!(!RealNetwork.connects(closed).await);
        assert!(RealNetwork.resolves("localhost".into(), 80).await);
        assert!(
            !RealNetwork
                .resolves("isp-monitor-test.invalid".into(), 80)
                .await
        );
    }
}
