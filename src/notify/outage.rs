//! The SNS publisher behind the Lambda front end's outage hook
//! ([`OutageNotifier`](crate::handler::aws::notify::OutageNotifier)): one email per accepted
//! outage report, its cause in the words every notification uses (interface B).

use crate::handler::aws::notify::{NotifyFuture, OutageNotifier};
use crate::outage::{Cause, OutageReport};

use super::sns::{NotifyError, SnsPublisher, outage_email};

/// Publishes each outage it is handed to the stack's topic.
#[derive(Debug, Clone)]
pub struct SnsOutageNotifier {
    publisher: SnsPublisher,
}

impl SnsOutageNotifier {
    pub fn new(publisher: SnsPublisher) -> SnsOutageNotifier {
        SnsOutageNotifier { publisher }
    }

    /// The notifier the function's environment describes (`ISP_MONITOR_SNS_TOPIC_ARN`,
    /// `ISP_MONITOR_SNS_ENDPOINT`, the role's credentials), or `None` when no topic is set.
    pub fn from_env() -> Result<Option<SnsOutageNotifier>, NotifyError> {
        Ok(SnsPublisher::from_env()?.map(SnsOutageNotifier::new))
    }
}

impl OutageNotifier for SnsOutageNotifier {
    fn notify<'a>(&'a self, device: &'a str, outage: &'a OutageReport) -> NotifyFuture<'a> {
        Box::pin(async move {
            let (subject, message) = outage_email(device, outage, cause_words(outage.cause));
            self.publisher
                .publish(&subject, &message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}

/// Interface B's words for each cause. `Cause::in_words()` (src/outage.rs, h-report) is the one
/// owner of these; this table stands in until it is merged, and must then be replaced by it.
fn cause_words(cause: Cause) -> &'static str {
    match cause {
        Cause::Isp => "your internet provider (DNS and internet targets unreachable)",
        Cause::Dns => {
            "name resolution (internet targets answered, the endpoint's name did not resolve)"
        }
        Cause::Lan => "your local network (the router did not answer)",
        Cause::Cloud => "the monitoring endpoint (the internet worked, the endpoint did not)",
        Cause::Config => "the agent's configuration (the endpoint refused its key)",
        Cause::AgentOffline => {
            "the agent was not running (nobody observed: not counted against the ISP)"
        }
        Cause::Unknown => "undetermined (the probes gave no consistent answer)",
    }
}
