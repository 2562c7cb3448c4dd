//! SigV4 request signing for the lean SageMaker transport, written for its
//! one shape of request (a `POST` with headers and a body, no query) and
//! for speed: the signing key is derived once per day, region, service and
//! secret and kept with its HMAC pads already absorbed, and the canonical
//! request is built in one buffer. `aws-sigv4` did the same work generically
//! (a header map, four HMACs for the key, a string per part): 10 % of the
//! SageMaker path's CPU in a profile.
//!
//! Held to `aws-sigv4` by this module's tests (the same signature over a
//! spread of inputs) and to the SDK itself by the differential test in
//! `tests/sagemaker_transport.rs` (the SDK's own requests re-signed).

use std::sync::Mutex;
use std::time::SystemTime;

use sha2::{Digest, Sha256};

/// The signature algorithm's name.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Headers the SDK never signs (its default `excluded_headers`).
const UNSIGNED: [&str; 4] = [
    "authorization",
    "user-agent",
    "x-amzn-trace-id",
    "transfer-encoding",
];

/// The credentials a request is signed with.
#[derive(Debug, Clone, Copy)]
pub struct Identity<'a> {
    /// The access key id.
    pub access_key: &'a str,
    /// The secret access key.
    pub secret: &'a str,
    /// The session token of temporary credentials.
    pub session_token: Option<&'a str>,
}

/// Where and when a request is signed for.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The region.
    pub region: &'a str,
    /// The signing name of the service (`sagemaker`).
    pub service: &'a str,
    /// The signing time.
    pub time: SystemTime,
}

/// A signer that keeps the day's signing key.
#[derive(Debug, Default)]
pub struct Signer {
    key: Mutex<Option<Cached>>,
}

/// A derived signing key and what it was derived from.
struct Cached {
    date: [u8; 8],
    region: String,
    service: String,
    access_key: String,
    secret: String,
    mac: Hmac,
}

impl std::fmt::Debug for Cached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key and the secret are never printed.
        f.debug_struct("Cached")
            .field("region", &self.region)
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// The headers that sign a `POST` of `body` to `url` with `headers`
    /// (sent as given): `x-amz-date`, `authorization` and
    /// `x-amz-security-token` when the credentials have one, exactly as `aws-sigv4`
    /// computes them with its default settings. `url` must be absolute.
    pub fn sign<'h>(
        &self,
        url: &reqwest::Url,
        headers: impl Iterator<Item = (&'h str, &'h str)>,
        body: &[u8],
        id: Identity<'_>,
        scope: Scope<'_>,
    ) -> Result<Vec<(&'static str, String)>, String> {
        let Scope {
            region,
            service,
            time,
        } = scope;
        if url.query().is_some() {
            return Err("a URL with a query is not signed here".into());
        }
        let stamp = Stamp::of(time)?;
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err("the URL has no host".into()),
        };
        let mut canonical: Vec<(String, String)> = headers
            .filter_map(|(n, v)| {
                let n = n.to_ascii_lowercase();
                (!UNSIGNED.contains(&n.as_str()) && n != "host").then(|| (n, trim_all(v)))
            })
            .collect();
        canonical.push(("host".into(), host));
        canonical.push(("x-amz-date".into(), stamp.date_time().to_owned()));
        if let Some(t) = id.session_token {
            canonical.push(("x-amz-security-token".into(), t.to_owned()));
        }
        // Stable: headers of one name keep their order, joined by commas.
        canonical.sort_by(|a, b| a.0.cmp(&b.0));

        let mut creq = String::with_capacity(512);
        creq.push_str("POST\n");
        encode_path(url.path(), &mut creq);
        creq.push('\n');
        // No query: the transport's endpoint URL is refused with one.
        creq.push('\n');
        let mut signed = String::with_capacity(128);
        for (i, (name, value)) in canonical.iter().enumerate() {
            let same = i > 0 && canonical[i - 1].0 == *name;
            if same {
                creq.push(',');
            } else {
                if i > 0 {
                    creq.push('\n');
                    signed.push(';');
                }
                creq.push_str(name);
                creq.push(':');
                signed.push_str(name);
            }
            creq.push_str(value);
        }
        creq.push_str("\n\n");
        creq.push_str(&signed);
        creq.push('\n');
        hex_into(&Sha256::digest(body), &mut creq);

        let scope = format!("{}/{region}/{service}/aws4_request", stamp.date());
        let mut to_sign = String::with_capacity(160);
        to_sign.push_str(ALGORITHM);
        to_sign.push('\n');
        to_sign.push_str(stamp.date_time());
        to_sign.push('\n');
        to_sign.push_str(&scope);
        to_sign.push('\n');
        hex_into(&Sha256::digest(creq.as_bytes()), &mut to_sign);

        let signature = self
            .key(&stamp, region, service, id)
            .sign(to_sign.as_bytes());
        let mut auth = format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed}, Signature=",
            id.access_key
        );
        hex_into(&signature, &mut auth);

        let mut out = vec![
            ("x-amz-date", stamp.date_time().to_owned()),
            ("authorization", auth),
        ];
        if let Some(t) = id.session_token {
            out.push(("x-amz-security-token", t.to_owned()));
        }
        Ok(out)
    }

    /// The day's signing key, derived when the day, the region, the service
    /// or the credentials changed.
    fn key(&self, stamp: &Stamp, region: &str, service: &str, id: Identity<'_>) -> Hmac {
        let mut slot = self.key.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = slot.as_ref().filter(|c| {
            c.date == stamp.date
                && c.region == region
                && c.service == service
                && c.access_key == id.access_key
                && c.secret == id.secret
        }) {
            return c.mac.clone();
        }
        let secret = Hmac::new(format!("AWS4{}", id.secret).as_bytes());
        let k_date = secret.sign(stamp.date().as_bytes());
        let k_region = Hmac::new(&k_date).sign(region.as_bytes());
        let k_service = Hmac::new(&k_region).sign(service.as_bytes());
        let k_signing = Hmac::new(&k_service).sign(b"aws4_request");
        let mac = Hmac::new(&k_signing);
        *slot = Some(Cached {
            date: stamp.date,
            region: region.to_owned(),
            service: service.to_owned(),
            access_key: id.access_key.to_owned(),
            secret: id.secret.to_owned(),
            mac: mac.clone(),
        });
        mac
    }
}

/// HMAC-SHA256 (RFC 2104) with its key's pads absorbed once: signing is
/// two hash states cloned and finished.
#[derive(Clone)]
struct Hmac {
    inner: Sha256,
    outer: Sha256,
}

impl Hmac {
    fn new(key: &[u8]) -> Self {
        let mut block = [0u8; 64];
        if key.len() > 64 {
            block[..32].copy_from_slice(&Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let pad = |x: u8| {
            let mut h = Sha256::new();
            h.update(block.map(|b| b ^ x));
            h
        };
        Self {
            inner: pad(0x36),
            outer: pad(0x5c),
        }
    }

    fn sign(&self, msg: &[u8]) -> [u8; 32] {
        let mut inner = self.inner.clone();
        inner.update(msg);
        let mut outer = self.outer.clone();
        outer.update(inner.finalize());
        outer.finalize().into()
    }
}

/// A request's time as SigV4 writes it: `YYYYMMDD'T'HHMMSS'Z'`.
struct Stamp {
    date: [u8; 8],
    date_time: [u8; 16],
}

impl Stamp {
    fn of(time: SystemTime) -> Result<Self, String> {
        let secs = time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_err(|_| "the clock is before 1970")?
            .as_secs();
        let (y, m, d) = crate::ids::civil(secs / 86_400);
        let s = secs % 86_400;
        let text = format!(
            "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
            s / 3600,
            s / 60 % 60,
            s % 60
        );
        let date_time: [u8; 16] = text
            .as_bytes()
            .try_into()
            .map_err(|_| "the clock is past year 9999")?;
        let mut date = [0u8; 8];
        date.copy_from_slice(&date_time[..8]);
        Ok(Self { date, date_time })
    }

    fn date(&self) -> &str {
        std::str::from_utf8(&self.date).unwrap_or_default()
    }

    fn date_time(&self) -> &str {
        std::str::from_utf8(&self.date_time).unwrap_or_default()
    }
}

/// SigV4's header value: spaces trimmed at both ends and runs of spaces
/// made one (only spaces, as the SDK does).
fn trim_all(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for (i, part) in v.split(' ').filter(|p| !p.is_empty()).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(part);
    }
    out
}

/// The canonical path of services other than S3: the URL's (already
/// encoded) path encoded once more, every byte but the unreserved ones and
/// `/`.
fn encode_path(path: &str, out: &mut String) {
    let path = if path.is_empty() { "/" } else { path };
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            push_escaped(b, out);
        }
    }
}

fn push_escaped(b: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 15)]));
}

fn hex_into(bytes: &[u8], out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;
    use std::time::{Duration, UNIX_EPOCH};

    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;

    /// `aws-sigv4`'s headers for the same request.
    fn reference(
        url: &str,
        headers: &[(&str, &str)],
        body: &[u8],
        creds: &Credentials,
        region: &str,
        time: SystemTime,
    ) -> Vec<(String, String)> {
        let identity = creds.clone().into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("sagemaker")
            .time(time)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let req = SignableRequest::new(
            "POST",
            Cow::Borrowed(url),
            headers.iter().copied(),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(req, &params).unwrap().into_parts();
        let (headers, _) = instructions.into_parts();
        headers
            .iter()
            .map(|h| (h.name().to_owned(), h.value().to_owned()))
            .collect()
    }

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 1 and 6 (a key longer than the block).
        let mac = Hmac::new(&[0x0b; 20]).sign(b"Hi There");
        let mut hex = String::new();
        hex_into(&mac, &mut hex);
        assert_eq!(
            hex,
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
        );
        let mac =
            Hmac::new(&[0xaa; 131]).sign(b"Test Using Larger Than Block-Size Key - Hash Key First");
        let mut hex = String::new();
        hex_into(&mac, &mut hex);
        assert_eq!(
            hex,
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn dates_match_the_calendar() {
        for (secs, want) in [
            (0, "19700101T000000Z"),
            (951_782_400, "20000229T000000Z"),
            (1_764_000_000, "20251124T160000Z"),
            (4_102_444_799, "20991231T235959Z"),
        ] {
            let s = Stamp::of(UNIX_EPOCH + Duration::from_secs(secs)).unwrap();
            assert_eq!(s.date_time(), want, "{secs}");
            assert_eq!(s.date(), &want[..8]);
        }
    }

    #[test]
    fn signs_as_aws_sigv4_does() {
        let signer = Signer::default();
        let session = Credentials::new(
            "AKIDEXAMPLE",
            "wJalr/K7MDENG+bPxRfiCY",
            Some("tok==".into()),
            None,
            "t",
        );
        let plain = Credentials::new("AKID2", "other-secret", None, None, "t");
        let urls = [
            "https://runtime.sagemaker.us-east-1.amazonaws.com/endpoints/my-endpoint/invocations",
            "http://127.0.0.1:8080/endpoints/e-1/invocations-response-stream",
            "https://runtime.sagemaker.cn-north-1.amazonaws.com.cn:443/endpoints/x/invocations",
            "http://localhost:80/base/endpoints/a%20b/invocations",
            "http://localhost:9000/endpoints/a%2Fb%25c~d.e_f/invocations",
        ];
        let header_sets: [&[(&str, &str)]; 4] = [
            &[
                ("content-type", "application/json"),
                ("accept", "application/json"),
                ("content-length", "12"),
            ],
            &[
                ("content-type", "application/json"),
                ("x-amzn-sagemaker-accept", "application/json"),
                ("content-length", "0"),
                (
                    "x-amzn-sagemaker-custom-attributes",
                    "  trace=1;  tenant=a  b ",
                ),
                ("x-amzn-sagemaker-target-variant", "variant-1"),
                ("x-amzn-sagemaker-inference-component", "ic-1"),
            ],
            &[
                ("Content-Type", "text/csv"),
                ("User-Agent", "x"),
                ("X-Amzn-Trace-Id", "Root=1"),
            ],
            &[("x-multi", "b"), ("x-multi", "a"), ("content-length", "3")],
        ];
        let bodies: [&[u8]; 3] = [b"", b"{\"inputs\":\"hi\"}", &[0xff; 300]];
        let times = [1_764_000_000, 1_764_086_399, 1_764_086_400];
        let mut n = 0;
        for url in urls {
            for headers in header_sets {
                for body in bodies {
                    for (i, t) in times.iter().enumerate() {
                        let creds = if i == 1 { &plain } else { &session };
                        let region = if i == 2 { "eu-west-3" } else { "us-east-1" };
                        let time = UNIX_EPOCH + Duration::from_secs(*t);
                        let want = reference(url, headers, body, creds, region, time);
                        let got = signer
                            .sign(
                                &reqwest::Url::parse(url).unwrap(),
                                headers.iter().copied(),
                                body,
                                Identity {
                                    access_key: creds.access_key_id(),
                                    secret: creds.secret_access_key(),
                                    session_token: creds.session_token(),
                                },
                                Scope {
                                    region,
                                    service: "sagemaker",
                                    time,
                                },
                            )
                            .unwrap();
                        let got: Vec<(String, String)> =
                            got.into_iter().map(|(n, v)| (n.to_owned(), v)).collect();
                        assert_eq!(got, want, "{url} {headers:?} {t}");
                        n += 1;
                    }
                }
            }
        }
        assert_eq!(n, 180);
    }
}
