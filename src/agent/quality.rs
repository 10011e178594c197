//! Connection quality while up (issue 15): after each delivered heartbeat the agent makes a few
//! TCP connections to each probe target and resolves the endpoint's host name, and the next
//! heartbeat carries what it saw as a [`Quality`] (interface A).
//!
//! - **TCP connect, no raw sockets**: an ICMP ping needs root (or a setuid helper); a TCP
//!   handshake needs nothing, and its time is one round trip to the target plus the target's
//!   accept. Each connection is closed as soon as it is made.
//! - **A closed port, a refusal or a timeout is a lost attempt**, as in the outage probes
//!   ([`super::probe`]): a target that stops answering is what a user calls packet loss.
//! - **Bounded by the interval**: the whole measurement ends within [`Plan::budget`], three
//!   quarters of the heartbeat interval, so it has always finished when the next heartbeat goes.
//!   A target's attempts are one after another (they would otherwise queue behind each other)
//!   and the targets are measured at once, so each attempt gets the quality timeout cut to
//!   `budget / attempts` when the interval is too short for it: every attempt is made, each with
//!   the same timeout (the loss figures of one interval are comparable), and `probes` is always
//!   `attempts × targets`. With the defaults (60 s, 3 attempts, 3 s) nothing is cut.
//! - **Only while up**: the loop starts a measurement after a heartbeat was delivered and drops it
//!   when one fails; the outage probes never measure quality (docs/agent.md).
//! - Median and 95th percentile are nearest-rank over the attempts that connected, pooled over the
//!   targets, in milliseconds rounded to 0.01 ms.

use std::time::Duration;

use tokio::time::Instant;

use super::config::{AgentConfig, ProbeTarget};
use super::probe::Network;
use crate::heartbeat::{MAX_QUALITY_MS, Quality};

/// What one measurement does; made once from the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub targets: Vec<ProbeTarget>,
    /// Connect attempts per target (at most; fewer when the budget runs out).
    pub attempts_per_target: u32,
    /// The longest one attempt (or the name resolution) may take.
    pub timeout: Duration,
    /// The longest the whole measurement may take.
    pub budget: Duration,
    /// The endpoint's host name and port, to resolve; `None` when the endpoint is an IP address.
    pub resolve: Option<(String, u16)>,
}

impl Plan {
    /// The plan for `config`, or `None` when quality is switched off.
    pub fn from_config(config: &AgentConfig) -> Option<Plan> {
        if !config.quality.enabled {
            return None;
        }
        let host = config
            .url
            .host_str()
            .unwrap_or("")
            .trim_matches(['[', ']'])
            .to_owned();
        let port = config.url.port_or_known_default().unwrap_or(443);
        Some(Plan {
            targets: config.probe_targets.clone(),
            attempts_per_target: config.quality.count,
            timeout: config.quality.timeout,
            budget: config.interval * 3 / 4,
            resolve: (host.parse::<std::net::IpAddr>().is_err() && !host.is_empty())
                .then_some((host, port)),
        })
    }

    /// The timeout each attempt really gets: the configured one, cut so that a target's attempts
    /// all fit in the budget.
    pub fn attempt_timeout(&self) -> Duration {
        self.timeout
            .min(self.budget / self.attempts_per_target.max(1))
    }
}

/// One measurement: every target's attempts and the name resolution, all within the budget.
pub async fn measure(network: impl Network, plan: Plan) -> Quality {
    let timeout = plan.attempt_timeout();
    let dns = async {
        let (host, port) = plan.resolve.clone()?;
        let at = Instant::now();
        let lookup = network.resolves(host, port);
        match tokio::time::timeout(plan.timeout.min(plan.budget), lookup).await {
            Ok(true) => Some(milliseconds(at.elapsed())),
            _ => None,
        }
    };
    let connects = async {
        let mut per_target = tokio::task::JoinSet::new();
        for target in plan.targets.clone() {
            let network = network.clone();
            let attempts = plan.attempts_per_target;
            per_target.spawn(async move {
                let mut times = Vec::new();
                for _ in 0..attempts {
                    let at = Instant::now();
                    let connected = tokio::time::timeout(timeout, network.connects(target.clone()))
                        .await
                        .unwrap_or(false);
                    if connected {
                        times.push(at.elapsed());
                    }
                }
                (attempts, times)
            });
        }
        let (mut probes, mut times) = (0u32, Vec::new());
        while let Some(result) = per_target.join_next().await {
            // A target's task cannot panic; if it did, its attempts are simply not counted.
            if let Ok((made, connected)) = result {
                probes += made;
                times.extend(connected);
            }
        }
        (probes, times)
    };
    let (dns_ms, (probes, times)) = tokio::join!(dns, connects);
    summarize(probes, times, dns_ms)
}

/// The figures of a measurement: `probes` attempts made, `times` of those that connected.
pub fn summarize(probes: u32, mut times: Vec<Duration>, dns_ms: Option<f64>) -> Quality {
    // A configuration always has a target and an attempt; this keeps the figures valid anyway.
    let probes = probes.max(1);
    times.sort();
    let lost = probes.saturating_sub(times.len() as u32);
    let rank = |q: f64| {
        let n = times.len();
        (n > 0).then(|| milliseconds(times[((q * n as f64).ceil() as usize).clamp(1, n) - 1]))
    };
    Quality {
        probes,
        lost,
        rtt_p50_ms: rank(0.50),
        rtt_p95_ms: rank(0.95),
        dns_ms,
    }
}

/// A duration in milliseconds, rounded to 0.01 ms and at most the limit the handler accepts.
fn milliseconds(duration: Duration) -> f64 {
    ((duration.as_secs_f64() * 100_000.0).round() / 100.0).min(MAX_QUALITY_MS)
}

/// One line for `--verbose`: what the measurement saw.
pub fn summary(quality: &Quality) -> String {
    let ms = |value: Option<f64>| value.map_or_else(|| "none".to_owned(), |ms| format!("{ms} ms"));
    format!(
        "quality: {} of {} connect attempts lost ({} %), median {}, p95 {}, dns {}",
        quality.lost,
        quality.probes,
        quality.loss_pct(),
        ms(quality.rtt_p50_ms),
        ms(quality.rtt_p95_ms),
        ms(quality.dns_ms),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// A network whose targets answer after a fixed delay (`Some(true)`), refuse after it
    /// (`Some(false)`) or never answer (`None`); names resolve after `dns`.
    #[derive(Clone)]
    struct Timed {
        targets: Arc<Vec<(u16, Duration, Option<bool>)>>,
        dns: Option<Duration>,
    }

    impl Network for Timed {
        async fn resolves(&self, _host: String, _port: u16) -> bool {
            match self.dns {
                Some(delay) => {
                    tokio::time::sleep(delay).await;
                    true
                }
                None => false,
            }
        }
        async fn connects(&self, target: ProbeTarget) -> bool {
            let (_, delay, answer) = *self.targets.iter().find(|t| t.0 == target.port).unwrap();
            tokio::time::sleep(delay).await;
            match answer {
                Some(answer) => answer,
                None => std::future::pending().await,
            }
        }
    }

    fn plan(ports: &[u16], attempts: u32, timeout_ms: u64, budget_ms: u64) -> Plan {
        Plan {
            targets: ports
                .iter()
                .map(|&port| ProbeTarget {
                    host: "10.0.0.1".into(),
                    port,
                })
                .collect(),
            attempts_per_target: attempts,
            timeout: Duration::from_millis(timeout_ms),
            budget: Duration::from_millis(budget_ms),
            resolve: Some(("f.example".into(), 443)),
        }
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    /// Nearest-rank median and p95 over the attempts that connected; lost ones are counted, not
    /// timed; in virtual time the figures are exact.
    #[tokio::test(start_paused = true)]
    async fn figures_from_a_timed_network() {
        let network = Timed {
            targets: Arc::new(vec![
                (1, MS(10), Some(true)),
                (2, MS(30), Some(true)),
                (3, MS(1), Some(false)),
            ]),
            dns: Some(MS(4)),
        };
        let started = Instant::now();
        let quality = measure(network, plan(&[1, 2, 3], 3, 1000, 45_000)).await;
        assert_eq!(
            quality,
            Quality {
                probes: 9,
                lost: 3,
                rtt_p50_ms: Some(10.0),
                rtt_p95_ms: Some(30.0),
                dns_ms: Some(4.0),
            }
        );
        assert_eq!(
            started.elapsed(),
            MS(90),
            "a target's attempts run one after another"
        );
    }

    /// A target that never answers costs one timeout per attempt, and the timeout is cut so that
    /// all its attempts fit in the budget: the measurement ends within the budget with every
    /// attempt made. A name that does not resolve, or resolves too slowly, is null.
    #[tokio::test(start_paused = true)]
    async fn the_budget_bounds_a_black_hole() {
        let network = Timed {
            targets: Arc::new(vec![(1, MS(5), Some(true)), (2, MS(0), None)]),
            dns: Some(MS(5000)),
        };
        let started = Instant::now();
        let quality = measure(network, plan(&[1, 2], 3, 1000, 4500)).await;
        assert_eq!(
            started.elapsed(),
            MS(3000),
            "three full timeouts fit in 4.5 s"
        );
        assert_eq!((quality.probes, quality.lost), (6, 3));
        assert_eq!(quality.rtt_p95_ms, Some(5.0));
        assert_eq!(quality.dns_ms, None, "resolution slower than the timeout");

        // Timeouts too long for the budget are cut to a third of it each: still in time.
        let network = Timed {
            targets: Arc::new(vec![(2, MS(0), None)]),
            dns: None,
        };
        let started = Instant::now();
        let quality = measure(network, plan(&[2], 3, 10_000, 750)).await;
        assert_eq!(started.elapsed(), MS(750));
        assert_eq!(
            quality,
            Quality {
                probes: 3,
                lost: 3,
                rtt_p50_ms: None,
                rtt_p95_ms: None,
                dns_ms: None
            }
        );
    }

    /// Percentile ranks on small samples, and every result passes the handler's own validation.
    #[test]
    fn nearest_rank_percentiles() {
        let times = |ms: &[u64]| ms.iter().map(|&m| MS(m)).collect::<Vec<_>>();
        let q = summarize(20, times(&(1..=20).collect::<Vec<_>>()), None);
        assert_eq!((q.rtt_p50_ms, q.rtt_p95_ms), (Some(10.0), Some(19.0)));
        let q = summarize(2, times(&[7, 3]), Some(0.004));
        assert_eq!(
            (q.rtt_p50_ms, q.rtt_p95_ms, q.lost),
            (Some(3.0), Some(7.0), 0)
        );
        let q = summarize(1, times(&[120_000]), None);
        assert_eq!(
            q.rtt_p95_ms,
            Some(MAX_QUALITY_MS),
            "capped at the handler's limit"
        );
        assert_eq!(
            summarize(0, vec![], None).probes,
            1,
            "never an invalid count"
        );
        for quality in [
            summarize(9, times(&[1, 2, 3]), Some(1.25)),
            summarize(3, vec![], None),
            summarize(1, vec![Duration::from_micros(37)], Some(0.0)),
        ] {
            let mut beat = crate::heartbeat::Heartbeat::new("d");
            beat.quality = Some(quality);
            let body = serde_json::to_vec(&beat).unwrap();
            let parsed = crate::heartbeat::Heartbeat::parse(&body, None, chrono::Utc::now());
            assert_eq!(parsed.unwrap().quality, Some(quality));
        }
        assert_eq!(milliseconds(Duration::from_micros(37)), 0.04);
    }
}
