//! Signing one SageMaker `InvokeEndpoint` request: `aws-sigv4` (what the
//! lean transport used) against the transport's own signer (the day's
//! key kept), on the same request, in the same run.
//!
//! `cargo bench -p gateway --bench sigv4`

use std::borrow::Cow;
use std::time::{Duration, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use criterion::{Criterion, criterion_group, criterion_main};
use gateway::backend::sagemaker::sigv4::{Identity, Scope, Signer};

const URL: &str =
    "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/llama-3-1-8b/invocations";

fn headers() -> [(&'static str, &'static str); 3] {
    [
        ("content-type", "application/json"),
        ("accept", "application/json"),
        ("content-length", "380"),
    ]
}

fn bench(c: &mut Criterion) {
    let body = vec![b'x'; 380];
    let creds = Credentials::new(
        "AKIDEXAMPLE",
        "wJalrXUtnFEMI/K7MDENG",
        Some("token".into()),
        None,
        "b",
    );
    let time = UNIX_EPOCH + Duration::from_secs(1_764_000_000);
    let mut g = c.benchmark_group("sigv4_sign");
    g.bench_function("aws_sigv4", |b| {
        b.iter(|| {
            let identity = creds.clone().into();
            let params = v4::SigningParams::builder()
                .identity(&identity)
                .region("us-east-1")
                .name("sagemaker")
                .time(time)
                .settings(SigningSettings::default())
                .build()
                .map(Into::into);
            let Ok(params) = params else { return 0 };
            let Ok(req) = SignableRequest::new(
                "POST",
                Cow::Borrowed(URL),
                headers().into_iter(),
                SignableBody::Bytes(&body),
            ) else {
                return 0;
            };
            sign(req, &params).map_or(0, |s| s.into_parts().0.into_parts().0.len())
        })
    });
    let signer = Signer::default();
    let url = reqwest::Url::parse(URL).ok();
    g.bench_function("own_signer", |b| {
        b.iter(|| {
            let Some(url) = &url else { return 0 };
            let id = Identity {
                access_key: creds.access_key_id(),
                secret: creds.secret_access_key(),
                session_token: creds.session_token(),
            };
            let scope = Scope {
                region: "us-east-1",
                service: "sagemaker",
                time,
            };
            signer
                .sign(url, headers().into_iter(), &body, id, scope)
                .map_or(0, |h| h.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
