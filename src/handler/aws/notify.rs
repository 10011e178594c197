//! The hook where an accepted outage report is handed on, so the owner gets an email per outage
//! with its cause (issue 16). The publisher is SNS (`crate::notify::sns`, interface C); this
//! trait is all the front end knows of it, so tests can count calls and the binary runs without
//! one when `ISP_MONITOR_SNS_TOPIC_ARN` is unset.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use crate::outage::OutageReport;

/// The environment variable naming the SNS topic (interface C). Unset: no notifier.
pub use crate::notify::sns::TOPIC_ENV as TOPIC_ARN_VAR;

/// The longest the front end spends notifying one heartbeat's outages, in total: the agent is
/// waiting for its answer, and the function has a short timeout. What is not notified in time is
/// logged as `notify_failed` (the outage itself is already in its `outage` line).
pub const NOTIFY_BUDGET: Duration = Duration::from_secs(6);

/// A boxed future, so the trait stays object-safe without another crate.
pub type NotifyFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Passes one accepted outage report on. Called once per report, after it is logged, before the
/// heartbeat's answer goes back (Lambda may freeze the process once it has the answer). An error
/// is one line saying what failed; it must never contain a secret.
pub trait OutageNotifier: Send + Sync {
    fn notify<'a>(&'a self, device: &'a str, outage: &'a OutageReport) -> NotifyFuture<'a>;
}
