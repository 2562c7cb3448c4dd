//! What the AWS backends share: the mapping of SDK failures that happen
//! before a service answers (timeouts, connections, request construction).

use actix_web::http::StatusCode;
use aws_sdk_sagemakerruntime::error::{ProvideErrorMetadata, SdkError};

use crate::error::ApiError;

/// Where a transport failure's details are: the log, never the answer.
const SEE_LOG: &str = "the gateway's log has the details under this response's x-request-id";

/// A service that could not be reached (502), or not within the connect
/// timeout (504); the details are logged by the caller, not answered.
pub(crate) fn unreachable(service: &str, timeout: bool) -> ApiError {
    if timeout {
        let mut e = ApiError::unreachable(format!("Timed out connecting to {service}; {SEE_LOG}"));
        e.status = StatusCode::GATEWAY_TIMEOUT;
        e
    } else {
        ApiError::unreachable(format!("Could not reach {service}; {SEE_LOG}"))
    }
}

/// The error of a call that failed before the service answered (timeout,
/// connection, request construction), for any AWS service; `None` for a
/// service error.
pub(crate) fn transport_error<E, R>(e: &SdkError<E, R>, service: &str) -> Option<ApiError>
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    if !matches!(e, SdkError::ServiceError(_)) {
        tracing::warn!(service, error = %aws_sdk_sagemakerruntime::error::DisplayErrorContext(e), "AWS call failed before the service answered");
    }
    Some(match e {
        SdkError::TimeoutError(_) => {
            ApiError::upstream_timeout(format!("Timed out calling {service}"))
        }
        SdkError::DispatchFailure(d) => unreachable(service, d.is_timeout()),
        SdkError::ConstructionFailure(_) => {
            ApiError::internal(format!("Could not build the {service} request; {SEE_LOG}"))
        }
        SdkError::ResponseError(_) => ApiError::upstream(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!("{service} sent an unreadable answer; {SEE_LOG}"),
        )
        .code("upstream_error"),
        _ => return None,
    })
}

/// The AWS SDK's HTTPS client: hyper with rustls on `ring`, the crypto the
/// gateway's own upstream client uses, so the binary carries one TLS stack
/// (the SDK's default would add aws-lc: 2.5 MB of code and tables, and its
/// C build). Trusts the system's root certificates and honours
/// `HTTPS_PROXY` / `NO_PROXY`, as the SDK's default client does. Each call
/// makes a client with its own connection pools: a worker's calls are then
/// driven by that worker's runtime.
pub(crate) fn https_client() -> aws_sdk_sagemakerruntime::config::SharedHttpClient {
    use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
    use aws_smithy_http_client::{Builder, ConnectorBuilder, proxy::ProxyConfig};
    Builder::new().build_with_connector_fn(|settings, components| {
        let mut b = ConnectorBuilder::default().tls_provider(Provider::Rustls(CryptoMode::Ring));
        b.set_connector_settings(settings.cloned());
        if let Some(c) = components {
            b.set_sleep_impl(c.sleep_impl());
        }
        b.set_proxy_config(Some(ProxyConfig::from_env()));
        b.build()
    })
}

/// `sdk` with an HTTP client of its own (see [`https_client`]): what a
/// worker builds its AWS clients from.
pub(crate) fn with_own_client(sdk: &aws_config::SdkConfig) -> aws_config::SdkConfig {
    sdk.to_builder().http_client(https_client()).build()
}

/// An AWS SDK client built from the AWS configuration the first time a
/// call needs it. Building one sets up the SDK's runtime and HTTP client
/// (the system's root certificates read and parsed, a TLS configuration):
/// work and memory a gateway that serves no SageMaker or Bedrock model
/// never needs, and which at start was a sixth of the code it touched.
/// Clones share the client.
pub struct OnDemand<C>(std::sync::Arc<Inner<C>>);

struct Inner<C> {
    sdk: aws_config::SdkConfig,
    make: fn(&aws_config::SdkConfig) -> C,
    client: std::sync::OnceLock<C>,
}

impl<C> Clone for OnDemand<C> {
    fn clone(&self) -> Self {
        Self(std::sync::Arc::clone(&self.0))
    }
}

impl<C> OnDemand<C> {
    /// A client `make` builds from `sdk` when first asked for.
    pub fn new(sdk: &aws_config::SdkConfig, make: fn(&aws_config::SdkConfig) -> C) -> Self {
        Self(std::sync::Arc::new(Inner {
            sdk: sdk.clone(),
            make,
            client: std::sync::OnceLock::new(),
        }))
    }

    /// The client, built now if it was not yet.
    pub fn get(&self) -> &C {
        let i = &*self.0;
        i.client.get_or_init(|| (i.make)(&i.sdk))
    }

    /// Whether the client was built.
    pub fn is_built(&self) -> bool {
        self.0.client.get().is_some()
    }

    /// The AWS configuration it is (or will be) built from.
    pub fn sdk(&self) -> &aws_config::SdkConfig {
        &self.0.sdk
    }
}

impl<C> std::fmt::Debug for OnDemand<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnDemand")
            .field("built", &self.is_built())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::OnDemand;
    use std::sync::atomic::{AtomicUsize, Ordering};

    static BUILT: AtomicUsize = AtomicUsize::new(0);

    fn make(sdk: &aws_config::SdkConfig) -> aws_sdk_sagemakerruntime::Client {
        BUILT.fetch_add(1, Ordering::SeqCst);
        aws_sdk_sagemakerruntime::Client::new(sdk)
    }

    #[test]
    fn a_client_is_built_once_on_first_use_and_shared_by_clones() {
        let sdk = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("eu-west-1"))
            .build();
        let lazy = OnDemand::new(&sdk, make);
        let twin = lazy.clone();
        assert!(!lazy.is_built());
        assert_eq!(BUILT.load(Ordering::SeqCst), 0, "nothing built up front");
        let region = lazy.get().config().region().map(ToString::to_string);
        assert_eq!(region.as_deref(), Some("eu-west-1"));
        assert!(twin.is_built(), "the clone sees the same client");
        twin.get();
        assert_eq!(BUILT.load(Ordering::SeqCst), 1);
        // Another one (a worker's own) builds its own.
        let other = OnDemand::new(lazy.sdk(), make);
        other.get();
        assert_eq!(BUILT.load(Ordering::SeqCst), 2);
    }
}
