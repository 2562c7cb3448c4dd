//! The lean SageMaker transport: `InvokeEndpoint` and
//! `InvokeEndpointWithResponseStream` as plain HTTP requests signed by
//! [`super::sigv4`] (held to `aws-sigv4` and to the SDK by tests), sent by
//! the [`crate::backend::client`] of the worker that uses them. Credentials
//! come from the SDK's provider chain, cached here; the event stream is decoded by `sm-stream`'s frame layer (`event-frames`,
//! on `aws-smithy-eventstream`).
//!
//! The SDK client stays available (`aws.sagemaker_client = "sdk"`) for what
//! this path leaves to it: FIPS and dual-stack endpoints, endpoint rules of
//! other partitions, endpoints set in a shared-config profile. The
//! differential test in `tests/sagemaker_transport.rs` holds both to the same
//! signed requests and the same results.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use actix_web::http::StatusCode;
use aws_credential_types::Credentials;
use aws_credential_types::provider::{ProvideCredentials, SharedCredentialsProvider};
use aws_smithy_async::time::SharedTimeSource;
use bytes::Bytes;
use http::{Method, Uri};

use super::sigv4::{Identity, Scope, Signer};
use crate::backend::client::{self, Client, Response};
use crate::config::{AwsConfig, ModelConfig, SageMakerClient};
use crate::error::ApiError;

/// The SigV4 signing name of the SageMaker runtime.
const SIGNING_NAME: &str = "sagemaker";

/// The largest `InvokeEndpoint` answer read (SageMaker's own limit is 25 MB).
const MAX_BODY: usize = 32 * 1024 * 1024;

/// What every worker's transport shares: where, as whom, and what time it is.
#[derive(Debug)]
pub struct Shared {
    base: reqwest::Url,
    region: String,
    credentials: SharedCredentialsProvider,
    cached: Mutex<Option<Credentials>>,
    refresh: tokio::sync::Mutex<()>,
    time: SharedTimeSource,
    max_attempts: u32,
    connect_timeout: Duration,
    max_idle: usize,
    signer: Signer,
}

/// Idle connections to SageMaker kept at most, split over the workers.
const MAX_IDLE_CONNECTIONS: usize = 256;

impl Shared {
    /// The lean transport of `aws.sagemaker_client = "signed"` (the
    /// default), or `None` for the SDK: when asked for, or when this path
    /// cannot resolve the endpoint (logged).
    pub fn for_config(sdk: &aws_config::SdkConfig, aws: &AwsConfig) -> Option<Arc<Self>> {
        if aws.sagemaker_client == SageMakerClient::Sdk {
            return None;
        }
        let connect = Duration::from_secs(aws.connect_timeout_secs);
        match Self::from_sdk(sdk, aws.max_attempts, connect, MAX_IDLE_CONNECTIONS) {
            Ok(s) => Some(Arc::new(s)),
            Err(why) => {
                tracing::info!(why, "SageMaker is called through the AWS SDK");
                None
            }
        }
    }

    /// The lean transport's settings from the SDK's, or why it cannot serve
    /// them (the SDK client is then used).
    pub fn from_sdk(
        sdk: &aws_config::SdkConfig,
        max_attempts: u32,
        connect_timeout: Duration,
        max_idle: usize,
    ) -> Result<Self, String> {
        let region = sdk
            .region()
            .ok_or("no AWS region is configured")?
            .to_string();
        let credentials = sdk
            .credentials_provider()
            .ok_or("no AWS credentials provider is configured")?;
        let base = endpoint(sdk, &region)?;
        Ok(Self {
            base,
            region,
            credentials,
            cached: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
            time: sdk.time_source().unwrap_or_default(),
            max_attempts: max_attempts.max(1),
            connect_timeout,
            max_idle,
            signer: Signer::default(),
        })
    }

    /// Credentials, refreshed (one caller at a time) five minutes before
    /// they expire.
    async fn credentials(&self) -> Result<Credentials, ApiError> {
        let fresh = |c: &Credentials| {
            c.expiry().is_none_or(|e| {
                e.duration_since(self.time.now())
                    .is_ok_and(|left| left > Duration::from_secs(300))
            })
        };
        let cached = || lock(&self.cached).clone().filter(fresh);
        if let Some(c) = cached() {
            return Ok(c);
        }
        let _one = self.refresh.lock().await;
        if let Some(c) = cached() {
            return Ok(c);
        }
        let c = self.credentials.provide_credentials().await.map_err(|e| {
            tracing::warn!(error = %aws_smithy_types::error::display::DisplayErrorContext(&e), "AWS credentials could not be loaded");
            ApiError::unreachable(
                "No AWS credentials to call SageMaker; the gateway's log has the details under this response's x-request-id",
            )
        })?;
        *lock(&self.cached) = Some(c.clone());
        Ok(c)
    }
}

/// The SageMaker runtime's URL: `AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`, the
/// configured endpoint URL, or the regional endpoint of the aws and aws-cn
/// partitions.
fn endpoint(sdk: &aws_config::SdkConfig, region: &str) -> Result<reqwest::Url, String> {
    let ignore = std::env::var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_ok_and(|v| v.eq_ignore_ascii_case("true"));
    let configured = (!ignore)
        .then(|| std::env::var("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME").ok())
        .flatten()
        .or_else(|| sdk.endpoint_url().map(str::to_owned));
    let url = match configured {
        Some(u) => u,
        None => {
            if sdk.use_fips() == Some(true) || sdk.use_dual_stack() == Some(true) {
                return Err("FIPS and dual-stack endpoints are resolved by the SDK".into());
            }
            let ok = region
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-');
            let suffix = if !ok {
                return Err(format!("unusual region name {region:?}"));
            } else if region.starts_with("cn-") {
                "amazonaws.com.cn"
            } else if region.starts_with("us-iso") || region.starts_with("eu-isoe") {
                return Err("isolated partitions are resolved by the SDK".into());
            } else {
                "amazonaws.com"
            };
            format!("https://runtime.sagemaker.{region}.{suffix}")
        }
    };
    let url = reqwest::Url::parse(&url).map_err(|e| format!("endpoint URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err("the endpoint URL must be http(s) with a host".into());
    }
    if url.query().is_some() {
        return Err("an endpoint URL with a query is resolved by the SDK".into());
    }
    Ok(url)
}

/// One worker's transport.
#[derive(Debug, Clone)]
pub struct Signed {
    http: Client,
    shared: Arc<Shared>,
}

/// A request about to be signed and sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prepared {
    /// The full URL.
    pub url: reqwest::Url,
    /// Headers, lower-case names, in the order they are sent (signing adds
    /// `x-amz-date`, `x-amz-security-token` and `authorization`).
    pub headers: Vec<(&'static str, String)>,
}

impl Signed {
    /// A transport with its own connection pool.
    pub fn new(shared: Arc<Shared>, workers: usize) -> Result<Self, client::Error> {
        // Retries are this transport's own (the SDK's standard mode).
        let http = Client::new(client::Settings::share(
            shared.connect_timeout,
            shared.max_idle,
            workers,
        ))?;
        Ok(Self { http, shared })
    }

    /// The request of a model's call: `stream` picks the operation.
    pub fn prepare(&self, m: &ModelConfig, stream: bool, body_len: usize) -> Prepared {
        let mut url = self.shared.base.clone();
        if let Ok(mut segs) = url.path_segments_mut() {
            segs.pop_if_empty()
                .push("endpoints")
                .push(m.endpoint_name());
            segs.push(if stream {
                "invocations-response-stream"
            } else {
                "invocations"
            });
        }
        let mut headers = vec![
            ("content-type", m.content_type.clone()),
            // The streaming operation names its Accept
            // `X-Amzn-SageMaker-Accept` (found by the differential test).
            (
                if stream {
                    "x-amzn-sagemaker-accept"
                } else {
                    "accept"
                },
                "application/json".to_owned(),
            ),
            ("content-length", body_len.to_string()),
        ];
        let optional = [
            ("x-amzn-sagemaker-custom-attributes", &m.custom_attributes),
            ("x-amzn-sagemaker-target-variant", &m.target_variant),
            (
                "x-amzn-sagemaker-inference-component",
                &m.inference_component,
            ),
        ];
        headers.extend(
            optional
                .into_iter()
                .filter_map(|(n, v)| v.as_ref().map(|v| (n, v.clone()))),
        );
        Prepared { url, headers }
    }

    /// Sends a signed call, retrying what the SDK's standard retry mode
    /// retries (connection failures, throttling, 500/502/503/504) up to
    /// `aws.max_attempts`. Returns a 2xx response; any other answer becomes
    /// its error.
    pub async fn send(
        &self,
        m: &ModelConfig,
        stream: bool,
        body: Vec<u8>,
    ) -> Result<Response, ApiError> {
        let body = Bytes::from(body);
        let prepared = self.prepare(m, stream, body.len());
        let uri = Uri::try_from(prepared.url.as_str()).map_err(|e| {
            ApiError::internal(format!("The SageMaker request's URL is not valid: {e}"))
        })?;
        let mut attempt = 1;
        loop {
            let creds = self.shared.credentials().await?;
            let time = self.shared.time.now();
            let auth = self
                .shared
                .sign_headers(&prepared, &body, &creds, time)
                .map_err(|e| {
                    ApiError::internal(format!("Could not sign the SageMaker request: {e}"))
                })?;
            let mut req = self.http.request(Method::POST, uri.clone());
            for (n, v) in prepared.headers.iter().chain(&auth) {
                req = req.header(*n, v.as_str());
            }
            let (err, retry) = match req.body(body.clone().into()).send().await {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) => {
                    let e = error_response(resp).await;
                    let retry = e.0;
                    (e.1, retry)
                }
                Err(e) => {
                    tracing::warn!(service = "SageMaker", error = %crate::error::error_chain(&e), "AWS call failed before the service answered");
                    (
                        crate::backend::aws::unreachable("SageMaker", e.is_timeout()),
                        true,
                    )
                }
            };
            if !retry || attempt >= self.shared.max_attempts {
                return Err(err);
            }
            tokio::time::sleep(backoff(attempt)).await;
            attempt += 1;
        }
    }
}

/// The SDK's standard back-off: a random fraction of 2^(attempt-1) seconds,
/// at most 20 s.
fn backoff(attempt: u32) -> Duration {
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let jitter = f64::from(nanos % 1_000_000) / 1_000_000.0;
    let cap = 2f64.powi(attempt.saturating_sub(1).min(5) as i32).min(20.0);
    Duration::from_secs_f64(jitter * cap)
}

impl Shared {
    /// The SigV4 headers of a prepared request (`x-amz-date`,
    /// `x-amz-security-token` when the credentials have a session token,
    /// `authorization`), exactly as the SDK computes them: every header sent
    /// is signed but `user-agent`, `x-amzn-trace-id`, `transfer-encoding`
    /// and `authorization`; the payload hash is not sent as a header.
    pub fn sign_headers(
        &self,
        prepared: &Prepared,
        body: &[u8],
        creds: &Credentials,
        time: SystemTime,
    ) -> Result<Vec<(&'static str, String)>, String> {
        sign_with(
            &self.signer,
            &prepared.url,
            prepared.headers.iter().map(|(n, v)| (*n, v.as_str())),
            body,
            creds,
            &self.region,
            time,
        )
    }
}

/// [`Shared::sign_headers`] over any header list, with a signer of its own
/// (the differential test re-signs the SDK's own requests with it).
pub fn sign_raw<'a>(
    url: &'a str,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    body: &'a [u8],
    creds: &Credentials,
    region: &'a str,
    time: SystemTime,
) -> Result<Vec<(&'static str, String)>, String> {
    let url = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
    sign_with(&Signer::default(), &url, headers, body, creds, region, time)
}

fn sign_with<'a>(
    signer: &Signer,
    url: &reqwest::Url,
    headers: impl Iterator<Item = (&'a str, &'a str)>,
    body: &[u8],
    creds: &Credentials,
    region: &str,
    time: SystemTime,
) -> Result<Vec<(&'static str, String)>, String> {
    let id = Identity {
        access_key: creds.access_key_id(),
        secret: creds.secret_access_key(),
        session_token: creds.session_token(),
    };
    let scope = Scope {
        region,
        service: SIGNING_NAME,
        time,
    };
    signer.sign(url, headers, body, id, scope)
}

/// A non-2xx answer as the SDK reads it (the error type from
/// `x-amzn-errortype` or the body's `__type`/`code`), mapped as the SDK path
/// maps it. The flag says whether the SDK's standard mode retries it.
async fn error_response(resp: Response) -> (bool, ApiError) {
    let status = resp.status().as_u16();
    let header_type = resp
        .headers()
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.split(':').next().unwrap_or(v).to_owned());
    let body = read_limited(resp, 64 * 1024).await.unwrap_or_default();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| json.get(*n).and_then(|v| v.as_str()))
            .map(str::to_owned)
    };
    let code = header_type
        .or_else(|| field(&["__type", "code", "Code"]))
        .map(|c| c.rsplit('#').next().unwrap_or(&c).to_owned());
    let message = field(&["message", "Message", "errorMessage"]);
    let retry = matches!(status, 500 | 502 | 503 | 504)
        || code.as_deref().is_some_and(|c| {
            matches!(
                c,
                "ThrottlingException"
                    | "Throttling"
                    | "TooManyRequestsException"
                    | "RequestLimitExceeded"
                    | "ProvisionedThroughputExceededException"
                    | "RequestThrottled"
                    | "SlowDown"
                    | "RequestTimeout"
                    | "RequestTimeoutException"
            )
        });
    let err = match code.as_deref() {
        Some("ModelError") => super::model_error(
            json.get("OriginalStatusCode")
                .and_then(|v| v.as_i64())
                .and_then(|v| i32::try_from(v).ok()),
            json.get("OriginalMessage").and_then(|v| v.as_str()),
            message.as_deref(),
        ),
        code => super::map_code(
            code.unwrap_or("Unknown"),
            message.unwrap_or_else(|| "no message".into()),
        ),
    };
    (retry, err)
}

/// A whole `InvokeEndpoint` answer, bounded.
pub async fn body(resp: Response) -> Result<Bytes, ApiError> {
    read_limited(resp, MAX_BODY).await.map_err(|e| {
        ApiError::upstream(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!("The SageMaker answer could not be read: {e}"),
        )
        .code("upstream_error")
    })
}

/// A response body up to `limit` bytes.
async fn read_limited(mut resp: Response, limit: usize) -> Result<Bytes, String> {
    let mut buf = bytes::BytesMut::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| crate::error::error_chain(&e))?
    {
        if buf.len() + chunk.len() > limit {
            return Err(format!("longer than {limit} bytes"));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
