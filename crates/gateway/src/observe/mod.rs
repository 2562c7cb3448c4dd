//! What the gateway tells about itself: metrics, request records, alerts,
//! and the redaction every text from elsewhere passes first.

pub(crate) mod alerts;
pub mod logformat;
pub mod logwriter;
pub(crate) mod metrics;
pub(crate) mod outcome;
pub mod records;
pub(crate) mod redact;
