//! Notifications the function sends itself: an email per reported outage, published to the
//! stack's SNS topic (docs/aws.md, "Alarms and emails").
//!
//! - [`sigv4`]: AWS Signature Version 4 for one request.
//! - [`sns`]: the SNS `Publish` call (bounded, timed out, no redirects) and the outage email text.
//! - [`outage`]: that publisher as the Lambda front end's outage hook.

pub mod outage;
pub mod sigv4;
pub mod sns;

pub use outage::SnsOutageNotifier;
pub use sns::{NotifyError, SnsPublisher, outage_email};
