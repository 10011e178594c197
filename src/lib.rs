//! ISP Monitor: tells you when your home internet goes down, for how long, and why.
//!
//! A heartbeat agent on a home machine sends a heartbeat every minute to an Azure Function (this
//! crate's custom handler), which records each one as request telemetry in Application Insights;
//! log-search alerts there notice when a device goes silent. When the agent cannot reach the
//! function it keeps an outage journal, guesses the cause, and reports the outage once it is back.
//!
//! # Layout
//! - [`heartbeat`]: the heartbeat both sides share: payload, limits, validation, refusal reasons.
//! - [`outage`]: an outage report (id, start, end, cause) and its validation.
//! - [`handler`]: the heartbeat receiver: a host-neutral core (request in; answer, log line and
//!   telemetry row out), the Azure Functions front end (both host modes, client IP, invocation
//!   id) as a thin adapter to it, and the bounded HTTP server.
//! - [`telemetry`]: the Application Insights pipeline and the names queries depend on.
//! - [`report`]: the outage report of a period (uptime, every outage with its cause and witness,
//!   IP changes, daily quality) from either witness, rendered as table, JSON, CSV or HTML.
//! - [`agent`]: the heartbeat agent: options, the send loop, the outage journal, cause probes;
//!   split into transport, schedule, state (journal changes), journal, output.
//!
//! The binaries `handler` and `heartbeat-agent` only wire these together.

pub mod agent;
pub mod handler;
pub mod heartbeat;
pub mod outage;
pub mod report;
pub mod telemetry;

/// This machine's name: the agent's default device name and the handler's local role instance.
pub fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .or_else(|| {
            let output = std::process::Command::new("hostname").output().ok()?;
            String::from_utf8(output.stdout).ok()
        })
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "unknown-host".to_owned())
}

/// Completes on SIGINT or SIGTERM: how a terminal, tmux, systemd, launchd and the Functions host
/// ask either binary to stop.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
