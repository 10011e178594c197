//! Notifications the function sends itself: an email per reported outage, published to the
//! stack's SNS topic (docs/aws.md, "Alarms and emails").
//!
//! - [`sigv4`]: AWS Signature Version 4 for one request.
//! - [`query_api`]: one signed Query API call (bounded, timed out, no redirects), shared by:
//! - [`sns`]: the SNS `Publish` call and the outage email text;
//! - [`reminders`]: CloudWatch `DescribeAlarms` and the reminder emails while a device stays
//!   silent (the function's reminder role, docs/platform.md §17).
//! - [`outage`]: that publisher as the Lambda front end's outage hook.

pub mod outage;
pub mod query_api;
pub mod reminders;
pub mod sigv4;
pub mod sns;

pub use outage::SnsOutageNotifier;
pub use sns::{NotifyError, SnsPublisher, outage_email};
