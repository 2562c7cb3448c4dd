//! Test support: local fakes that speak the real wire protocols.
//!
//! * [`FakeSageMaker`]: the SageMaker runtime API (`InvokeEndpoint`,
//!   `InvokeEndpointWithResponseStream`) on loopback, with event-stream frames
//!   encoded by `aws-smithy-eventstream` (CRCs and all), SageMaker's error
//!   shapes and headers, the TGI / LMI / OpenAI container dialects, awkward
//!   payload-part splits, mid-stream errors, slow and endless streams, and a
//!   record of when each streaming connection closed.
//! * [`moto`]: starts `moto_server` (a local Secrets Manager) when installed.
//!
//! This is test support, never the product: `publish = false`.

mod http;
pub mod moto;
mod sagemaker;

pub use sagemaker::{
    ContainerDialect, Endpoint, FakeSageMaker, Fault, RecordedRequest, Reply, StreamRecord,
};
