//! Fetching media by URL without becoming a tool for reaching internal services (SSRF).
//!
//! Rules, applied to the first URL and to every redirect: only `http` and `https`; hosts that
//! are, or resolve to, loopback, private, link-local (cloud metadata), CGNAT, multicast or
//! unspecified addresses are refused unless `fetch.allow_internal_hosts` names them. Name
//! resolution goes through [`GuardedResolver`], so a host cannot pass the check and then
//! connect elsewhere. The body is read up to `fetch.max_bytes`, the whole fetch up to
//! `fetch.timeout_secs`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::FetchConfig;

/// Why a fetch failed; each maps to a stable API code.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// Fetching by URL is switched off.
    #[error("fetching by URL is disabled on this server")]
    Disabled,
    /// Not a valid http(s) URL.
    #[error("invalid URL: {0}")]
    InvalidUrl(String),
    /// The URL points at an internal address.
    #[error("refusing to fetch {0}: it is an internal address")]
    Forbidden(String),
    /// The body is over the size limit.
    #[error("the fetched file is over {0} bytes")]
    TooLarge(u64),
    /// Network failure, timeout, or a non-2xx status.
    #[error("fetch failed: {0}")]
    Failed(String),
}

impl FetchError {
    /// Stable API code.
    pub fn code(&self) -> &'static str {
        match self {
            FetchError::Disabled => "fetch_disabled",
            FetchError::InvalidUrl(_) => "invalid_url",
            FetchError::Forbidden(_) => "forbidden_url",
            FetchError::TooLarge(_) => "too_large",
            FetchError::Failed(_) => "fetch_failed",
        }
    }
}

/// Whether an address is internal (not reachable from the public internet, or reserved).
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let seg0 = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg0 & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg0 == 0x64 && v6.segments()[1] == 0xff9b) // NAT64 64:ff9b::/96
                || v6 == Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0) // documentation
        }
    }
}

fn is_internal_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local() // 169.254/16, including 169.254.169.254 metadata
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0 // "this network"
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64/10
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18/15
        || o[0] >= 240 // reserved
}

/// Resolves names and drops internal addresses unless the host is allow-listed.
#[derive(Debug, Clone)]
struct GuardedResolver {
    allow: Arc<Vec<String>>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed = allow.iter().any(|h| h.eq_ignore_ascii_case(&host));
            let ok: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| allowed || !is_internal(a.ip()))
                .collect();
            if ok.is_empty() {
                return Err(format!("{host} resolves only to internal addresses").into());
            }
            Ok(Box::new(ok.into_iter()) as Addrs)
        })
    }
}

/// The fetcher: one HTTP client with the guard built in.
#[derive(Debug, Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    config: FetchConfig,
}

fn check_url(url: &url::Url, allow: &[String]) -> Result<(), FetchError> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(FetchError::InvalidUrl(format!(
            "only http and https URLs are fetched, not {}",
            url.scheme()
        )));
    }
    let host = url
        .host_str()
        .ok_or_else(|| FetchError::InvalidUrl("the URL has no host".into()))?;
    if allow.iter().any(|h| h.eq_ignore_ascii_case(host)) {
        return Ok(());
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(v4)) => Some(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => Some(IpAddr::V6(v6)),
        _ => None,
    };
    if let Some(ip) = literal {
        if is_internal(ip) {
            return Err(FetchError::Forbidden(host.to_string()));
        }
    }
    if host.eq_ignore_ascii_case("localhost") || host.ends_with(".localhost") {
        return Err(FetchError::Forbidden(host.to_string()));
    }
    Ok(())
}

impl Fetcher {
    /// A fetcher with the given settings.
    pub fn new(config: &FetchConfig) -> Result<Fetcher, String> {
        let allow = Arc::new(config.allow_internal_hosts.clone());
        let max_redirects = config.max_redirects;
        let redirect_allow = allow.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= max_redirects {
                return attempt.error(format!("more than {max_redirects} redirects"));
            }
            match check_url(attempt.url(), &redirect_allow) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e.to_string()),
            }
        });
        let client = reqwest::Client::builder()
            .redirect(policy)
            .dns_resolver(Arc::new(GuardedResolver { allow }))
            .timeout(Duration::from_secs(config.timeout_secs))
            .connect_timeout(Duration::from_secs(config.timeout_secs.min(5)))
            .user_agent(concat!("safeguard/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Fetcher {
            client,
            config: config.clone(),
        })
    }

    /// Fetches the body at `url`.
    pub async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        if !self.config.enabled {
            return Err(FetchError::Disabled);
        }
        let parsed = url::Url::parse(url).map_err(|e| FetchError::InvalidUrl(e.to_string()))?;
        check_url(&parsed, &self.config.allow_internal_hosts)?;
        let resp = self
            .client
            .get(parsed)
            .send()
            .await
            .map_err(|e| FetchError::Failed(error_chain(&e)))?;
        if !resp.status().is_success() {
            return Err(FetchError::Failed(format!("HTTP status {}", resp.status())));
        }
        let max = self.config.max_bytes;
        if resp.content_length().is_some_and(|n| n > max) {
            return Err(FetchError::TooLarge(max));
        }
        let mut body = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| FetchError::Failed(error_chain(&e)))?;
            if body.len() as u64 + chunk.len() as u64 > max {
                return Err(FetchError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_addresses() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "255.255.255.255",
        ] {
            assert!(is_internal(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "93.184.216.34"] {
            assert!(!is_internal(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls() {
        let u = |s: &str| url::Url::parse(s).unwrap();
        assert!(check_url(&u("https://example.org/a.jpg"), &[]).is_ok());
        assert!(matches!(
            check_url(&u("file:///etc/passwd"), &[]),
            Err(FetchError::InvalidUrl(_))
        ));
        assert!(matches!(
            check_url(&u("http://127.0.0.1/x"), &[]),
            Err(FetchError::Forbidden(_))
        ));
        assert!(matches!(
            check_url(&u("http://[::1]/x"), &[]),
            Err(FetchError::Forbidden(_))
        ));
        assert!(matches!(
            check_url(&u("http://localhost/x"), &[]),
            Err(FetchError::Forbidden(_))
        ));
        assert!(check_url(&u("http://127.0.0.1/x"), &["127.0.0.1".into()]).is_ok());
    }
}
