//! Notifications the function sends itself: an email per reported outage, published to the
//! stack's SNS topic (docs/aws.md, "Alarms and emails").
//!
//! - [`sigv4`]: AWS Signature Version 4 for one request.
//! - [`sns`]: the SNS `Publish` call (bounded, timed out, no redirects) and the outage email text.

pub mod sigv4;
pub mod sns;

pub use sns::{NotifyError, SnsPublisher, outage_email};
