//! Fetching media by URL without becoming a tool for reaching internal services (SSRF).
//!
//! Rules, applied to the first URL and to every redirect: only `http` and `https`; hosts that
//! are, or resolve to, loopback, private, link-local (cloud metadata), CGNAT, multicast,
//! unspecified, reserved or documentation addresses are refused unless
//! `fetch.allow_internal_hosts` names them ([`is_internal`] has the list, IPv6 forms that embed
//! an IPv4 address included). Name
//! resolution goes through [`GuardedResolver`], so a host cannot pass the check and then
//! connect elsewhere. The body is read up to `fetch.max_bytes`, the whole fetch up to
//! `fetch.timeout_secs`. A failed fetch tells the client a fixed message by kind (could not
//! resolve, could not connect, timed out, ...); what the resolver or the network said goes to
//! the log with the request id, since it can describe the server's own network.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::FetchConfig;
use crate::error::request_id;

/// Why a fetch failed; each maps to a stable API code.
#[derive(Debug, Clone, thiserror::Error)]
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
    /// Network failure, timeout, or a non-2xx status. The text is a fixed, short message safe
    /// to show the client; the underlying error went to the log with the request id.
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
/// IPv6 forms that carry an IPv4 address are judged by it where the IPv4 address is what a
/// connection would reach (IPv4-mapped, 6to4); forms nobody should be fetching from are
/// refused whole.
pub fn is_internal(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let seg = v6.segments();
            if seg[0] == 0x2002 {
                // 6to4 2002::/16: the next 32 bits are the IPv4 address a relay tunnels to.
                let v4 = Ipv4Addr::new(
                    (seg[1] >> 8) as u8,
                    seg[1] as u8,
                    (seg[2] >> 8) as u8,
                    seg[2] as u8,
                );
                return is_internal_v4(v4);
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                // IPv4-compatible ::/96 (deprecated by RFC 4291; includes :: and ::1): no
                // public host uses it, and some stacks still route it to the IPv4 address.
                || seg[..6] == [0; 6]
                || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg[0] == 0x64 && seg[1] == 0xff9b) // NAT64 64:ff9b::/96 and /48
                || (seg[0] == 0x2001 && seg[1] == 0x0db8) // documentation 2001:db8::/32
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

/// The resolver's own failure, marked so that [`Fetcher::fetch`] can say "could not resolve"
/// without passing the resolver's words on.
#[derive(Debug, thiserror::Error)]
#[error("name resolution failed: {0}")]
struct Unresolved(std::io::Error);

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
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map_err(|e| Box::new(Unresolved(e)) as Box<dyn std::error::Error + Send + Sync>)?
                .collect();
            let allowed = allow.iter().any(|h| h.eq_ignore_ascii_case(&host));
            let ok: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| allowed || !is_internal(a.ip()))
                .collect();
            if ok.is_empty() {
                return Err(Box::new(FetchError::Forbidden(host)) as _);
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
    // A trailing dot names the same host ("localhost." is localhost).
    let name = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    if name == "localhost" || name.ends_with(".localhost") {
        return Err(FetchError::Forbidden(host.to_string()));
    }
    Ok(())
}

/// Checks a webhook endpoint's URL as the fetcher checks a media URL: http(s) only, and no
/// internal address unless its host is allow-listed (`webhooks.allow_internal_hosts`). Names
/// are checked again at every delivery, by the resolver.
pub fn check_target(url: &str, allow: &[String]) -> Result<(), FetchError> {
    let parsed = url::Url::parse(url).map_err(|e| FetchError::InvalidUrl(e.to_string()))?;
    check_url(&parsed, allow)
}

/// The HTTP client of webhook deliveries: the guarded resolver, no redirects (a 3xx is a
/// failed attempt, never a hop to a target the guard did not see), no proxy.
pub fn webhook_client(allow: &[String], timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver {
            allow: Arc::new(allow.to_vec()),
        }))
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(5)))
        .user_agent(concat!("Safeguard-Webhook/", env!("CARGO_PKG_VERSION")))
        .no_proxy()
        .build()
        .map_err(|e| e.to_string())
}

impl Fetcher {
    /// A fetcher with the given settings.
    pub fn new(config: &FetchConfig) -> Result<Fetcher, String> {
        let allow = Arc::new(config.allow_internal_hosts.clone());
        let max_redirects = config.max_redirects;
        let redirect_allow = allow.clone();
        let policy = reqwest::redirect::Policy::custom(move |attempt| {
            // `previous` holds every URL already requested, the first included: after N
            // redirects it has N entries, and the (N+1)th redirect is the one refused.
            if attempt.previous().len() > max_redirects {
                return attempt.error(FetchError::Failed(format!(
                    "more than {max_redirects} redirects"
                )));
            }
            // The guard's own error travels through reqwest and is found again by
            // `classify`, so a redirect to an internal address is answered `forbidden_url`.
            match check_url(attempt.url(), &redirect_allow) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e),
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
        let parsed_host = parsed.host_str().unwrap_or_default().to_string();
        let resp = self
            .client
            .get(parsed)
            .send()
            .await
            .map_err(|e| classify(&parsed_host, &e))?;
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
            let chunk = chunk.map_err(|e| classify(&parsed_host, &e))?;
            if body.len() as u64 + chunk.len() as u64 > max {
                return Err(FetchError::TooLarge(max));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Turns a reqwest error into what the client is told: the guard's own refusal as it was, and
/// anything else as a fixed message by kind. The resolver's and the network's words (which
/// can describe the server's network: its resolvers, routes, firewall) go only to the log.
fn classify(host: &str, e: &reqwest::Error) -> FetchError {
    let chain = error_chain(e);
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    let mut unresolved = false;
    while let Some(c) = cur {
        if let Some(own) = c.downcast_ref::<FetchError>() {
            let own = own.clone();
            tracing::info!(request_id = %request_id(), host, error = %chain, "fetch refused");
            return own;
        }
        unresolved |= c.is::<Unresolved>();
        cur = c.source();
    }
    let message = if unresolved {
        "could not resolve the host"
    } else if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect to the host"
    } else if e.is_redirect() {
        "bad redirect"
    } else if e.is_body() || e.is_decode() {
        "the connection failed while reading the body"
    } else {
        "the request failed"
    };
    tracing::warn!(request_id = %request_id(), host, error = %chain, "fetch failed");
    FetchError::Failed(message.into())
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
    use std::net::Ipv6Addr;

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

    /// Each refused IPv6 range, with the addresses on both sides of each of its edges.
    #[test]
    fn ipv6_ranges_and_their_edges() {
        let cases: &[(&str, bool)] = &[
            // Documentation 2001:db8::/32.
            ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("2001:db8::", true),
            ("2001:db8:1234::5", true),
            ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true),
            ("2001:db9::", false),
            // IPv4-compatible ::/96, whatever IPv4 address it carries.
            ("::", true),
            ("::1", true),
            ("::8.8.8.8", true),
            ("::ffff:ffff", true),
            ("::1:0:0", false),
            // Its neighbour ::ffff:0:0/96 (IPv4-mapped) is judged by the IPv4 address.
            ("::ffff:8.8.8.8", false),
            ("::ffff:10.0.0.1", true),
            // 6to4 2002::/16, judged by the embedded IPv4 address (bits 16..48).
            ("2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false),
            ("2002::", true),                                  // 0.0.0.0
            ("2002:0808:0808::1", false),                      // 8.8.8.8
            ("2002:7f00:0001::", true),                        // 127.0.0.1
            ("2002:0a00:0001:1::1", true),                     // 10.0.0.1
            ("2002:a9fe:a9fe::", true),                        // 169.254.169.254
            ("2002:c0a8:0101::", true),                        // 192.168.1.1
            ("2002:6440:0001::", true),                        // 100.64.0.1 (CGNAT)
            ("2002:643f:ffff::", false),                       // 100.63.255.255, just below CGNAT
            ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true), // 255.255.255.255
            ("2003::", false),
        ];
        for (ip, internal) in cases {
            assert_eq!(is_internal(ip.parse().unwrap()), *internal, "{ip}");
        }
        // The embedded IPv4 address decides exactly as the IPv4 address alone does.
        for v4 in [
            "8.8.8.8",
            "10.0.0.1",
            "172.16.0.1",
            "172.32.0.1",
            "198.18.0.1",
            "240.0.0.1",
        ] {
            let v4: Ipv4Addr = v4.parse().unwrap();
            let o = v4.octets();
            let six = Ipv6Addr::new(
                0x2002,
                u16::from_be_bytes([o[0], o[1]]),
                u16::from_be_bytes([o[2], o[3]]),
                0,
                0,
                0,
                0,
                1,
            );
            assert_eq!(
                is_internal(six.into()),
                is_internal(v4.into()),
                "{six} ({v4})"
            );
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
        assert!(matches!(
            check_url(&u("http://localhost./x"), &[]),
            Err(FetchError::Forbidden(_))
        ));
        assert!(matches!(
            check_url(&u("http://[2002:7f00:1::]/x"), &[]),
            Err(FetchError::Forbidden(_))
        ));
        assert!(matches!(
            check_url(&u("http://[2001:db8::1]/x"), &[]),
            Err(FetchError::Forbidden(_))
        ));
        assert!(matches!(
            check_url(&u("http://[::10.0.0.1]/x"), &[]),
            Err(FetchError::Forbidden(_))
        ));
        assert!(check_url(&u("http://[2002:808:808::1]/x"), &[]).is_ok());
        assert!(check_url(&u("http://127.0.0.1/x"), &["127.0.0.1".into()]).is_ok());
    }

    fn fetcher(allow: &[&str]) -> Fetcher {
        Fetcher::new(&FetchConfig {
            allow_internal_hosts: allow.iter().map(|s| s.to_string()).collect(),
            timeout_secs: 10,
            ..FetchConfig::default()
        })
        .unwrap()
    }

    /// Words of the resolver's and the OS's errors that must never reach a client.
    const DETAIL: &[&str] = &[
        "dns",
        "lookup",
        "resolution",
        "os error",
        "Name or service",
        "nodename",
        "refused",
        "tcp connect",
        "error sending request",
        "hyper",
    ];

    fn assert_no_detail(e: &FetchError) {
        let shown = e.to_string();
        for w in DETAIL {
            assert!(
                !shown.to_ascii_lowercase().contains(&w.to_ascii_lowercase()),
                "client message {shown:?} carries {w:?}"
            );
        }
    }

    #[tokio::test]
    async fn an_unresolvable_host_is_a_fixed_message() {
        // `.invalid` never resolves (RFC 6761).
        let e = fetcher(&[])
            .fetch("http://no-such-host.invalid/x.jpg")
            .await
            .unwrap_err();
        assert_eq!(e.code(), "fetch_failed");
        assert_eq!(e.to_string(), "fetch failed: could not resolve the host");
        assert_no_detail(&e);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_fixed_message() {
        // A port that was free a moment ago: nothing listens there.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let e = fetcher(&["127.0.0.1"])
            .fetch(&format!("http://127.0.0.1:{port}/x.jpg"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), "fetch_failed");
        assert_eq!(e.to_string(), "fetch failed: could not connect to the host");
        assert_no_detail(&e);
    }

    #[tokio::test]
    async fn the_resolver_refuses_names_of_internal_addresses() {
        let r = GuardedResolver {
            allow: Arc::new(Vec::new()),
        };
        let name: Name = "localhost".parse().unwrap();
        let e = match r.resolve(name).await {
            Ok(_) => panic!("localhost resolved to a usable address"),
            Err(e) => e,
        };
        let own = e
            .downcast_ref::<FetchError>()
            .expect("the guard's own error");
        assert!(matches!(own, FetchError::Forbidden(h) if h == "localhost"));
        // Allow-listed, the same name resolves.
        let r = GuardedResolver {
            allow: Arc::new(vec!["localhost".into()]),
        };
        assert!(r.resolve("localhost".parse().unwrap()).await.is_ok());
    }

    /// Webhook deliveries (docs/actions.md, "Webhooks"): a host name is checked again at
    /// every delivery, by the guarded resolver (registration alone cannot see what a name
    /// will resolve to), unless allow-listed; and a 3xx is the answer, never followed.
    #[tokio::test]
    async fn the_webhook_client_checks_names_at_delivery_and_follows_no_redirect() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let hits = Arc::new(AtomicUsize::new(0));
        let h = hits.clone();
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(move || {
                    h.fetch_add(1, Ordering::SeqCst);
                    async { "ok" }
                }),
            )
            .route(
                "/moved",
                axum::routing::post(|| async { axum::response::Redirect::temporary("/hook") }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let hook = format!("http://localhost:{port}/hook");

        let guarded = webhook_client(&[], Duration::from_secs(5)).unwrap();
        let e = guarded.post(&hook).send().await.unwrap_err();
        assert!(
            matches!(classify("localhost", &e), FetchError::Forbidden(h) if h == "localhost"),
            "not refused by the guard: {e:?}"
        );
        assert_eq!(hits.load(Ordering::SeqCst), 0);

        let allowed = webhook_client(&["localhost".into()], Duration::from_secs(5)).unwrap();
        let r = allowed.post(&hook).send().await.unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK);
        assert_eq!(hits.load(Ordering::SeqCst), 1);
        let r = allowed
            .post(format!("http://localhost:{port}/moved"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::TEMPORARY_REDIRECT);
        assert_eq!(hits.load(Ordering::SeqCst), 1, "the redirect was followed");
    }

    #[tokio::test]
    async fn a_redirect_to_an_internal_address_is_forbidden_not_a_network_error() {
        let app = axum::Router::new().route(
            "/r",
            axum::routing::get(|| async {
                axum::response::Redirect::temporary("http://169.254.169.254/latest/meta-data")
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        let e = fetcher(&["127.0.0.1"])
            .fetch(&format!("http://127.0.0.1:{port}/r"))
            .await
            .unwrap_err();
        assert!(
            matches!(&e, FetchError::Forbidden(h) if h == "169.254.169.254"),
            "{e:?}"
        );
        assert_eq!(e.code(), "forbidden_url");
        assert_no_detail(&e);
    }
}
