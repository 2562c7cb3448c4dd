//! The lean signed SageMaker transport against `aws-sdk-sagemakerruntime`:
//! the same inputs through both, against the fake SageMaker runtime, must
//! give the same signed requests (method, path, canonical headers, body,
//! signature) and the same results, errors and exception events included.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_smithy_async::time::StaticTimeSource;
use futures_util::StreamExt;
use gateway::backend::sagemaker::SageMaker;
use gateway::backend::sagemaker::signed::{self, Shared};
use gateway::config::ModelConfig;
use gateway::error::ApiError;
use mock_upstreams::{ContainerDialect, Endpoint, FakeSageMaker, Fault, RecordedRequest};
use openai_types::stream::StreamItem;
use sm_stream::{DialectKind, TranslatorConfig};

const TIME: u64 = 1_764_000_000;
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn creds() -> Credentials {
    Credentials::new(
        "AKIDEXAMPLE",
        SECRET,
        Some("session-token-1".into()),
        None,
        "test",
    )
}

fn sdk_config(url: &str, attempts: u32) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .region(aws_config::Region::new("us-east-1"))
        .endpoint_url(url)
        .credentials_provider(SharedCredentialsProvider::new(creds()))
        .time_source(StaticTimeSource::new(
            UNIX_EPOCH + Duration::from_secs(TIME),
        ))
        .retry_config(aws_config::retry::RetryConfig::standard().with_max_attempts(attempts))
        .behavior_version(aws_config::BehaviorVersion::latest())
        .build()
}

fn model(endpoint: &str, dialect: DialectKind, extra: bool) -> ModelConfig {
    let mut m = ModelConfig::for_endpoint(endpoint);
    m.dialect = dialect;
    if extra {
        m.custom_attributes = Some("trace=1;tenant=a b".into());
        m.target_variant = Some("variant-1".into());
        m.inference_component = Some("ic-1".into());
    }
    m
}

fn tcfg() -> TranslatorConfig {
    TranslatorConfig {
        id: "chatcmpl-1".into(),
        model: "m".into(),
        created: TIME,
        ..TranslatorConfig::default()
    }
}

/// What a call gave: the body or stream items, or the error's visible parts.
#[derive(Debug, PartialEq)]
enum Outcome {
    Body(Vec<u8>),
    Items(Vec<StreamItem>),
    Error(u16, String),
}

fn error(e: &ApiError) -> Outcome {
    Outcome::Error(e.status.as_u16(), serde_json::to_string(&e.body).unwrap())
}

async fn call(sm: &SageMaker, m: &ModelConfig, stream: bool, body: &[u8]) -> Outcome {
    let limit = Duration::from_secs(5);
    if !stream {
        return match sm.invoke(m, body.to_vec(), limit).await {
            Ok(b) => Outcome::Body(b.to_vec()),
            Err(e) => error(&e),
        };
    }
    match sm.stream_items(m, body.to_vec(), tcfg()).await {
        Ok(s) => Outcome::Items(s.flat_map(futures_util::stream::iter).collect().await),
        Err(e) => error(&e),
    }
}

/// The headers SigV4 adds, which the re-signing recomputes.
const SIGNING: [&str; 3] = ["authorization", "x-amz-date", "x-amz-security-token"];

/// Re-signs a received request over its own signed headers and checks the
/// signature it carries; returns its signed header names.
fn check_signature(url: &str, r: &RecordedRequest) -> Vec<String> {
    let auth = &r.headers["authorization"];
    let signed_names: Vec<String> = auth
        .split("SignedHeaders=")
        .nth(1)
        .unwrap()
        .split(',')
        .next()
        .unwrap()
        .split(';')
        .map(str::to_owned)
        .collect();
    let headers: Vec<(&str, &str)> = signed_names
        .iter()
        .filter(|n| !SIGNING.contains(&n.as_str()) && n.as_str() != "host")
        .map(|n| (n.as_str(), r.headers[n.as_str()].as_str()))
        .collect();
    let full = format!("{url}{}", r.path);
    let again = signed::sign_raw(
        &full,
        headers.into_iter(),
        &r.body,
        &creds(),
        "us-east-1",
        UNIX_EPOCH + Duration::from_secs(TIME),
    )
    .unwrap();
    let again: HashMap<_, _> = again.into_iter().collect();
    assert_eq!(&again["authorization"], auth, "signature of {}", r.path);
    assert_eq!(again["x-amz-date"], r.headers["x-amz-date"]);
    assert_eq!(
        again["x-amz-security-token"],
        r.headers["x-amz-security-token"]
    );
    signed_names
}

#[tokio::test(flavor = "multi_thread")]
async fn lean_and_sdk_transports_agree() {
    let fake = FakeSageMaker::start().await.unwrap();
    let with = |fault| Endpoint {
        fault,
        ..Endpoint::echo(ContainerDialect::OpenAi)
    };
    fake.add("chat", Endpoint::echo(ContainerDialect::OpenAi));
    fake.add("tgi", Endpoint::echo(ContainerDialect::Tgi));
    fake.add(
        "model-error",
        with(Fault::ModelError {
            status: 500,
            message: "CUDA out of memory".into(),
        }),
    );
    fake.add("throttled", with(Fault::Throttling));
    fake.add("unavailable", with(Fault::ServiceUnavailable));
    fake.add("internal", with(Fault::InternalFailure));
    fake.add("stream-error", with(Fault::ModelStreamErrorAfter(2)));
    fake.add("stream-failure", with(Fault::InternalStreamFailureAfter(1)));
    let url = fake.url();
    let sdk = sdk_config(&url, 1);
    let shared = Shared::from_sdk(&sdk, 1, Duration::from_secs(2), 8).unwrap();
    let lean = SageMaker::new(&sdk, Some(Arc::new(shared)), 1);
    let via_sdk = SageMaker::new(&sdk, None, 1);
    assert_eq!(lean.transport(), "signed");
    assert_eq!(via_sdk.transport(), "sdk");

    let chat =
        br#"{"model":"m","messages":[{"role":"user","content":"hello there"}],"stream":true}"#;
    let tgi = br#"{"inputs":"hello there","parameters":{"max_new_tokens":8},"stream":true}"#;
    let cases: Vec<(ModelConfig, &[u8])> = vec![
        (model("chat", DialectKind::OpenAiChat, false), chat),
        (model("chat", DialectKind::OpenAiChat, true), chat),
        (model("tgi", DialectKind::Tgi, false), tgi),
        (
            model("no-such-endpoint", DialectKind::OpenAiChat, false),
            chat,
        ),
        (model("model-error", DialectKind::OpenAiChat, false), chat),
        (model("throttled", DialectKind::OpenAiChat, false), chat),
        (model("unavailable", DialectKind::OpenAiChat, false), chat),
        (model("internal", DialectKind::OpenAiChat, false), chat),
        (model("stream-error", DialectKind::OpenAiChat, false), chat),
        (
            model("stream-failure", DialectKind::OpenAiChat, false),
            chat,
        ),
    ];
    let mut compared = 0;
    for (m, body) in &cases {
        for stream in [false, true] {
            let before = fake.requests().len();
            let a = call(&via_sdk, m, stream, body).await;
            let b = call(&lean, m, stream, body).await;
            assert_eq!(a, b, "{} stream={stream}", m.name);
            if matches!(a, Outcome::Body(_) | Outcome::Items(_)) {
                compared += 1;
            }
            let reqs = fake.requests();
            assert_eq!(reqs.len(), before + 2, "one request each, no retries");
            let (s, l) = (&reqs[before], &reqs[before + 1]);
            assert_eq!(s.path, l.path);
            assert_eq!(s.stream, l.stream);
            assert_eq!(s.body, l.body);
            // Both signatures verify over what arrived.
            let sdk_signed = check_signature(&url, s);
            let lean_signed = check_signature(&url, l);
            // Every header the lean transport signs, the SDK signs with the
            // same value; what it signs besides is its own bookkeeping.
            for n in &lean_signed {
                assert!(sdk_signed.contains(n), "{n} signed by the lean path only");
                assert_eq!(s.headers[n.as_str()], l.headers[n.as_str()], "{n}");
            }
            for n in &sdk_signed {
                assert!(
                    lean_signed.contains(n)
                        || [
                            "amz-sdk-invocation-id",
                            "amz-sdk-request",
                            "x-amz-user-agent"
                        ]
                        .contains(&n.as_str()),
                    "{n} signed by the SDK only"
                );
            }
            // The SDK's own request, re-signed by the lean signer without its
            // bookkeeping headers, is the lean request's signature: one
            // canonical form.
            let common: Vec<(&str, &str)> = lean_signed
                .iter()
                .filter(|n| !SIGNING.contains(&n.as_str()) && n.as_str() != "host")
                .map(|n| (n.as_str(), s.headers[n.as_str()].as_str()))
                .collect();
            let resigned = signed::sign_raw(
                &format!("{url}{}", s.path),
                common.into_iter(),
                &s.body,
                &creds(),
                "us-east-1",
                UNIX_EPOCH + Duration::from_secs(TIME),
            )
            .unwrap();
            let resigned: HashMap<_, _> = resigned.into_iter().collect();
            assert_eq!(resigned["authorization"], l.headers["authorization"]);
        }
    }
    assert!(compared >= 6, "successful calls were compared: {compared}");
    // The extra routing headers arrive through both.
    let with_extra = fake
        .requests()
        .into_iter()
        .filter(|r| r.headers.contains_key("x-amzn-sagemaker-target-variant"))
        .count();
    assert_eq!(with_extra, 4);
}

/// Both retry a transient failure as often as `aws.max_attempts` allows,
/// and not a client error.
#[tokio::test(flavor = "multi_thread")]
async fn lean_and_sdk_transports_retry_alike() {
    let fake = FakeSageMaker::start().await.unwrap();
    fake.add(
        "internal",
        Endpoint {
            fault: Fault::InternalFailure,
            ..Endpoint::echo(ContainerDialect::OpenAi)
        },
    );
    let url = fake.url();
    let sdk = sdk_config(&url, 2);
    let shared = Shared::from_sdk(&sdk, 2, Duration::from_secs(2), 8).unwrap();
    let lean = SageMaker::new(&sdk, Some(Arc::new(shared)), 1);
    let via_sdk = SageMaker::new(&sdk, None, 1);
    let body = br#"{"messages":[{"role":"user","content":"hi"}]}"#;
    for (m, attempts) in [
        (model("internal", DialectKind::OpenAiChat, false), 2),
        (model("no-such-endpoint", DialectKind::OpenAiChat, false), 1),
    ] {
        let n0 = fake.requests().len();
        let a = call(&via_sdk, &m, false, body).await;
        let n1 = fake.requests().len();
        let b = call(&lean, &m, false, body).await;
        let n2 = fake.requests().len();
        assert_eq!(a, b, "{}", m.name);
        assert_eq!((n1 - n0, n2 - n1), (attempts, attempts), "{}", m.name);
    }
}
