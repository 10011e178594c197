//! The SNS publisher behind the Lambda front end's outage hook
//! ([`OutageNotifier`](crate::handler::aws::notify::OutageNotifier)): one email per accepted
//! outage report, its cause in the words every notification uses (interface B).

use crate::handler::aws::notify::{NotifyFuture, OutageNotifier};
use crate::outage::OutageReport;

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
            let (subject, message) = outage_email(device, outage, outage.cause.in_words());
            self.publisher
                .publish(&subject, &message)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }
}
