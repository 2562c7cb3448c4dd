//! Remote image fetching for vision requests, guarded against SSRF: only
//! `http(s)`, no proxies from the environment, every address a host resolves
//! to (and every IP literal, redirects included) checked against loopback,
//! private, link-local, CGNAT, multicast and unspecified ranges, a size limit
//! enforced while reading, and one timeout for the whole fetch.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bedrock_converse::wire::{ImageBlock, ImageFormat, ImageSource};
use futures_util::StreamExt;

use crate::config::ImageFetchConfig;
use crate::error::{ApiError, error_chain};

/// Whether an address must not be fetched from.
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let s = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64 of any v4
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        }
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64/10
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240
}

#[derive(Debug)]
struct GuardedResolver {
    allowed: Arc<Vec<String>>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_owned();
        let allowed = self.allowed.iter().any(|h| h.eq_ignore_ascii_case(&host));
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allowed || !is_forbidden(a.ip()))
                .collect();
            if addrs.is_empty() {
                return Err(format!(
                    "'{host}' resolves only to private, loopback or link-local addresses"
                )
                .into());
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// Fetches images under the guard.
#[derive(Debug, Clone)]
pub struct ImageFetcher {
    client: reqwest::Client,
    max_bytes: usize,
    allowed: Arc<Vec<String>>,
}

impl ImageFetcher {
    /// A fetcher with its own HTTP client.
    pub fn new(cfg: &ImageFetchConfig) -> anyhow::Result<Self> {
        let allowed = Arc::new(cfg.allowed_hosts.clone());
        let redirect_allowed = Arc::clone(&allowed);
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(cfg.timeout_secs))
            .connect_timeout(Duration::from_secs(cfg.timeout_secs))
            .dns_resolver(Arc::new(GuardedResolver {
                allowed: Arc::clone(&allowed),
            }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 3 {
                    attempt.error("too many redirects")
                } else if let Err(e) = check_url(attempt.url(), &redirect_allowed) {
                    attempt.error(e)
                } else {
                    attempt.follow()
                }
            }))
            .user_agent("oai-gateway-image-fetch")
            .build()?;
        Ok(Self {
            client,
            max_bytes: cfg.max_bytes,
            allowed,
        })
    }

    /// Fetches one image; errors are the client's (400) with the reason.
    pub async fn fetch(&self, url: &str) -> Result<ImageBlock, ApiError> {
        let refuse = |why: String| {
            ApiError::invalid(format!("The image at '{url}' could not be used: {why}"))
                .param("messages")
                .code("invalid_image_url")
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| refuse(e.to_string()))?;
        check_url(&parsed, &self.allowed).map_err(refuse)?;
        let resp = self
            .client
            .get(parsed)
            .send()
            .await
            .map_err(|e| refuse(error_chain(&e)))?;
        if !resp.status().is_success() {
            return Err(refuse(format!("the server answered {}", resp.status())));
        }
        if resp
            .content_length()
            .is_some_and(|n| n > self.max_bytes as u64)
        {
            return Err(refuse(format!("larger than {} bytes", self.max_bytes)));
        }
        let mime = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| refuse(error_chain(&e)))?;
            if body.len() + chunk.len() > self.max_bytes {
                return Err(refuse(format!("larger than {} bytes", self.max_bytes)));
            }
            body.extend_from_slice(&chunk);
        }
        let format = ImageFormat::sniff(&body)
            .or_else(|| ImageFormat::from_mime(&mime))
            .ok_or_else(|| refuse(format!("'{mime}' is not png, jpeg, gif or webp")))?;
        Ok(ImageBlock {
            format,
            source: ImageSource::Bytes(body),
        })
    }
}

/// The scheme and, for IP literals, the address (host names are checked
/// when resolved).
fn check_url(url: &reqwest::Url, allowed: &[String]) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("scheme '{}' is not http or https", url.scheme()));
    }
    let host = url.host_str().unwrap_or_default();
    if allowed.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return Ok(());
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        _ => None,
    };
    if let Some(ip) = ip
        && is_forbidden(ip)
    {
        return Err(format!("{ip} is a private, loopback or link-local address"));
    }
    if url.host().is_none() {
        return Err("the URL has no host".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["93.184.216.34", "8.8.8.8", "2606:4700::1111"] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip}");
        }
    }

    #[tokio::test]
    async fn names_resolving_to_loopback_are_refused_unless_allowed() {
        use reqwest::dns::Resolve;
        let name = |s: &str| s.parse::<reqwest::dns::Name>().unwrap();
        let guarded = GuardedResolver {
            allowed: Arc::new(Vec::new()),
        };
        let e = guarded.resolve(name("localhost")).await.err().unwrap();
        assert!(e.to_string().contains("private, loopback"), "{e}");
        let open = GuardedResolver {
            allowed: Arc::new(vec!["LOCALHOST".into()]),
        };
        let addrs: Vec<SocketAddr> = open.resolve(name("localhost")).await.unwrap().collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }

    #[test]
    fn urls_are_checked_before_any_connection() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(check_url(&u("file:///etc/passwd"), &[]).is_err());
        assert!(check_url(&u("http://169.254.169.254/latest/meta-data/"), &[]).is_err());
        assert!(check_url(&u("http://[::1]:8080/"), &[]).is_err());
        assert!(
            check_url(&u("http://2130706433/"), &[]).is_err(),
            "decimal 127.0.0.1"
        );
        assert!(check_url(&u("https://example.com/a.png"), &[]).is_ok());
        assert!(check_url(&u("http://127.0.0.1:9/"), &["127.0.0.1".into()]).is_ok());
    }
}
