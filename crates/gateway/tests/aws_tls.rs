//! The AWS SDK's HTTPS client (rustls on ring, `backend::aws::https_client`:
//! the binary links one TLS stack) end to end: a Bedrock call over TLS to a
//! local endpoint whose certificate a test CA signed, trusted through
//! `SSL_CERT_FILE` as a deployment trusts a private CA; and the same call
//! refused when that CA is not trusted (the certificate is checked, not
//! waved through).

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use mock_upstreams::{BedrockModel, BedrockReply, FakeBedrock};
use serde_json::{Value, json};

use crate::support::{TempDir, config, post, start};

const MODEL: &str = "anthropic.claude-3-haiku-20240307-v1:0";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl (Debian's package) runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A new P-256 key's arguments to `openssl req`.
const EC_KEY: [&str; 5] = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
];

/// A self-signed CA, `<name>.pem` with its key `<name>.key`, in `dir`.
fn new_ca(dir: &Path, name: &str, subject: &str) -> std::path::PathBuf {
    let (key, pem) = (format!("{name}.key"), format!("{name}.pem"));
    let mut args = vec!["req", "-x509"];
    args.extend(EC_KEY);
    args.extend([
        "-keyout", &key, "-out", &pem, "-subj", subject, "-days", "2",
    ]);
    openssl(dir, &args);
    dir.join(pem)
}

/// A CA (`ca.pem`) and a certificate it signed for `localhost` and
/// 127.0.0.1, with its key, as DER.
fn certificates(dir: &Path) -> (Vec<u8>, Vec<u8>) {
    new_ca(dir, "ca", "/CN=gateway test CA");
    let mut csr = vec!["req"];
    csr.extend(EC_KEY);
    csr.extend([
        "-keyout",
        "leaf.key",
        "-out",
        "leaf.csr",
        "-subj",
        "/CN=localhost",
    ]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "leaf.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "leaf.ext",
            "-outform",
            "DER",
            "-out",
            "leaf.der",
        ],
    );
    openssl(
        dir,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "leaf.key",
            "-outform",
            "DER",
            "-out",
            "leaf.key.der",
        ],
    );
    (
        std::fs::read(dir.join("leaf.der")).unwrap(),
        std::fs::read(dir.join("leaf.key.der")).unwrap(),
    )
}

/// A TLS front for `target` (plain HTTP): its `https://localhost:port`.
async fn tls_front(target: String, cert: Vec<u8>, key: Vec<u8>) -> String {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, target) = (acceptor.clone(), target.clone());
            tokio::spawn(async move {
                // A handshake the client refuses ends here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut up = tokio::net::TcpStream::connect(target).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut up).await;
            });
        }
    });
    format!("https://localhost:{port}")
}

#[tokio::test(flavor = "multi_thread")]
async fn bedrock_over_tls_trusts_the_configured_ca_and_only_it() {
    let fake = FakeBedrock::start().await.unwrap();
    fake.add(MODEL, BedrockModel::new(BedrockReply::Echo));
    let dir = tempdir();
    let (cert, key) = certificates(&dir.0);
    let target = fake.url().trim_start_matches("http://").to_string();
    let url = tls_front(target, cert, key).await;
    let models =
        format!("[[models]]\nname = \"claude\"\nbackend = \"bedrock\"\nmodel_id = \"{MODEL}\"\n");
    let ca = dir.0.join("ca.pem");
    let ca = ca.to_str().unwrap();
    let ask = json!({"model": "claude", "messages": [{"role": "user", "content": "over TLS"}]});

    let gw = start(
        "http://127.0.0.1:9",
        &config(&models),
        &[
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &url),
            ("SSL_CERT_FILE", ca),
        ],
    );
    let r = post(&gw, "/v1/chat/completions", ask.clone()).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(text.contains("over TLS"), "{body}");
    drop(gw);

    // The same endpoint, another CA trusted instead: the handshake fails,
    // a 502.
    let other = new_ca(&dir.0, "other", "/CN=another CA");
    let gw = start(
        "http://127.0.0.1:9",
        &config(&models),
        &[
            ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &url),
            ("SSL_CERT_FILE", other.to_str().unwrap()),
        ],
    );
    let r = post(&gw, "/v1/chat/completions", ask).await;
    assert_eq!(r.status(), 502, "{:?}", r.text().await);
    assert!(
        gw.logs().to_lowercase().contains("certificate"),
        "the log says why: {}",
        gw.logs()
    );
}

fn tempdir() -> TempDir {
    let d = std::env::temp_dir().join(format!(
        "gw-tls-{}-{}",
        std::process::id(),
        crate::support::free_port()
    ));
    std::fs::create_dir_all(&d).unwrap();
    TempDir(d)
}
