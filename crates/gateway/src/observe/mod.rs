//! What the gateway tells about itself: metrics, request records, alerts,
//! and the redaction every text from elsewhere passes first.

pub mod alerts;
pub mod metrics;
pub mod outcome;
pub mod records;
pub mod redact;
