//! Remote image fetching for vision requests, guarded against SSRF: only
//! `http(s)`, no proxies from the environment, every address a host resolves
//! to (and every IP literal, redirects included) checked against loopback,
//! private, link-local, CGNAT, multicast and unspecified ranges, a size limit
//! enforced while reading, and one timeout for the whole fetch.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bedrock_converse::wire::{ImageBlock, ImageFormat, ImageSource};
use futures_util::StreamExt;

use crate::config::ImageFetchConfig;
use crate::error::{ApiError, error_chain};

/// Whether an address must not be fetched from. IPv6 forms that carry an
/// IPv4 address (mapped, compatible, SIIT, 6to4, Teredo) are judged by it;
/// NAT64 prefixes are refused whole.
pub(crate) fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v6(v6: Ipv6Addr) -> bool {
    let s = v6.segments();
    let low_v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    if v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() {
        return true;
    }
    // ::ffff:a.b.c.d (mapped), ::a.b.c.d (compatible, deprecated),
    // ::ffff:0:a.b.c.d (SIIT).
    if s[..5] == [0; 5] && (s[5] == 0xffff || s[5] == 0) {
        return forbidden_v4(low_v4);
    }
    if s[..4] == [0; 4] && s[4] == 0xffff && s[5] == 0 {
        return forbidden_v4(low_v4);
    }
    match s[0] {
        // 6to4: 2002:AABB:CCDD::/48 embeds AA.BB.CC.DD.
        0x2002 => {
            let v4 = Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
            return forbidden_v4(v4);
        }
        // Teredo 2001:0::/32: the server in bits 32..64, the client's
        // address inverted in the last 32.
        0x2001 if s[1] == 0 => {
            let server =
                Ipv4Addr::new((s[2] >> 8) as u8, s[2] as u8, (s[3] >> 8) as u8, s[3] as u8);
            let client = Ipv4Addr::from(!u32::from(low_v4));
            return forbidden_v4(server) || forbidden_v4(client);
        }
        _ => {}
    }
    (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64, well-known and local-use (64:ff9b:1::/48)
        || (s[0] == 0x0100 && s[1..4] == [0; 3]) // discard-only 100::/64
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] == 0x0002 && s[2] == 0) // benchmarking 2001:2::/48
        || (s[0] == 0x2001 && (s[1] & 0xfff0) == 0x0020) // ORCHIDv2 2001:20::/28
        || (s[0] & 0xfff0) == 0x3ff0 // documentation 3fff::/20
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

/// Fetches images under the guard, a few at a time per request and a
/// bounded number across the gateway, within a byte budget per request.
#[derive(Debug, Clone)]
pub(crate) struct ImageFetcher {
    client: reqwest::Client,
    max_bytes: usize,
    allowed: Arc<Vec<String>>,
    per_request: usize,
    total_bytes: usize,
    slots: Arc<tokio::sync::Semaphore>,
}

impl ImageFetcher {
    /// A fetcher with its own HTTP client.
    pub(crate) fn new(cfg: &ImageFetchConfig) -> anyhow::Result<Self> {
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
            per_request: cfg.per_request_concurrency.max(1),
            total_bytes: cfg.max_total_bytes,
            slots: Arc::new(tokio::sync::Semaphore::new(cfg.max_concurrent.max(1))),
        })
    }

    /// Fetches every URL of one request: at most `per_request_concurrency`
    /// at once, each holding one of the gateway's `max_concurrent` slots,
    /// all of them within `max_total_bytes`. The first failure ends the
    /// rest.
    pub(crate) async fn fetch_all(
        &self,
        urls: &[&str],
    ) -> Result<HashMap<String, ImageBlock>, ApiError> {
        let budget = Arc::new(AtomicUsize::new(self.total_bytes));
        let owned: Vec<String> = urls.iter().map(|u| (*u).to_owned()).collect();
        let mut fetches = futures_util::stream::iter(owned.into_iter().map(|url| {
            let (this, budget) = (self.clone(), Arc::clone(&budget));
            async move {
                let _slot = this
                    .slots
                    .acquire()
                    .await
                    .map_err(|_| ApiError::internal("image fetching is shut down"))?;
                let img = this.fetch(&url, &budget).await?;
                Ok::<_, ApiError>((url, img))
            }
        }))
        .buffer_unordered(self.per_request);
        let mut out = HashMap::with_capacity(urls.len());
        while let Some(r) = fetches.next().await {
            let (url, img) = r?;
            out.insert(url, img);
        }
        Ok(out)
    }

    /// Fetches one image, its bytes taken from the request's `budget`;
    /// errors are the client's (400) with the reason.
    async fn fetch(&self, url: &str, budget: &AtomicUsize) -> Result<ImageBlock, ApiError> {
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
            let taken = budget.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                left.checked_sub(chunk.len())
            });
            if taken.is_err() {
                return Err(refuse(format!(
                    "the request's images together exceed {} bytes",
                    self.total_bytes
                )));
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
        // (address, forbidden)
        for (ip, forbidden) in [
            ("127.0.0.1", true),
            ("10.1.2.3", true),
            ("172.16.0.1", true),
            ("192.168.1.1", true),
            ("169.254.169.254", true),
            ("100.64.0.1", true),
            ("0.0.0.0", true),
            ("255.255.255.255", true),
            ("198.18.0.1", true),
            ("224.0.0.1", true),
            ("93.184.216.34", false),
            ("8.8.8.8", false),
            ("::1", true),
            ("::", true),
            ("fe80::1", true),
            ("fd00::1", true),
            ("fec0::1", true),
            ("ff02::1", true),
            ("100::1", true),
            ("2001:db8::1", true),
            ("3fff::1", true),
            ("2606:4700::1111", false),
            // IPv4-mapped
            ("::ffff:127.0.0.1", true),
            ("::ffff:169.254.169.254", true),
            ("::ffff:8.8.8.8", false),
            // IPv4-compatible (deprecated)
            ("::127.0.0.1", true),
            ("::10.0.0.1", true),
            ("::8.8.8.8", false),
            // SIIT
            ("::ffff:0:127.0.0.1", true),
            ("::ffff:0:a9fe:a9fe", true),
            ("::ffff:0:8.8.8.8", false),
            // 6to4
            ("2002:7f00:1::", true),
            ("2002:a9fe:a9fe::1", true),
            ("2002:c0a8:101::1", true),
            ("2002:808:808::1", false),
            // Teredo: server 65.54.227.120; client inverted
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", true), // client 127.0.0.1
            ("2001:0:4136:e378:8000:63bf:f5ff:fffe", true), // client 10.0.0.1
            ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", false), // client 8.8.8.8
            ("2001:0:7f00:1:8000:63bf:f7f7:f7f7", true),    // server 127.0.0.1
            // NAT64, well-known and local-use
            ("64:ff9b::a9fe:a9fe", true),
            ("64:ff9b::808:808", true),
            ("64:ff9b:1::a00:1", true),
        ] {
            assert_eq!(is_forbidden(ip.parse().unwrap()), forbidden, "{ip}");
        }
    }

    #[test]
    fn bracketed_v6_literals_embedding_private_v4_are_refused_before_connecting() {
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        for url in [
            "http://[::127.0.0.1]/a.png",
            "http://[::ffff:0:127.0.0.1]/a.png",
            "http://[2002:7f00:1::]/a.png",
            "http://[2001:0:4136:e378:8000:63bf:80ff:fffe]/a.png",
            "http://[64:ff9b::7f00:1]/a.png",
        ] {
            assert!(check_url(&u(url), &[]).is_err(), "{url}");
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
