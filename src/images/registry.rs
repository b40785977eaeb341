//! The registry HTTP client of image look-ups, built so that a pod author cannot turn it
//! against the cluster (SECURITY.md, "Image look-ups"):
//!
//! - Addresses: a registry named in a pod is not reached on loopback, link-local (cloud
//!   metadata services live there), unspecified, multicast or well-known metadata addresses,
//!   whatever its name resolves to, unless the configuration names that registry explicitly
//!   (`trustedRegistries`, `insecureRegistries`, mirrors, or an entry in the credentials file).
//!   Names are checked after resolution (a custom resolver), IP literals before each request,
//!   and every redirect target and token URL the same way.
//! - Schemes: HTTPS only, except registries listed in `insecureRegistries`; a redirect or a
//!   token URL never goes from HTTPS to plain HTTP; credentials are sent only over HTTPS (or to
//!   an insecure registry that was configured so) and only to the registry or its token
//!   service, never along a redirect.
//! - Reads: every body is streamed with a byte limit (and the caller's deadline); a blob is read
//!   to at most its declared size and checked against its digest.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderMap, WWW_AUTHENTICATE};
use reqwest::{StatusCode, Url};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Largest manifest or index read (real ones are a few KiB; big indexes a few hundred).
pub const MAX_MANIFEST_BYTES: usize = 1024 * 1024;
/// Largest token response read.
pub const MAX_TOKEN_BYTES: usize = 64 * 1024;
/// Redirects followed per request.
pub const MAX_REDIRECTS: usize = 5;

/// Manifest media types asked for, most specific first.
const MANIFEST_TYPES: &str = "application/vnd.oci.image.index.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json";

/// Which addresses look-ups may reach.
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    /// Normalised `host[:port]` of registries named in the configuration: any address.
    trusted: HashSet<String>,
    /// `host[:port]` reached over plain HTTP.
    insecure: HashSet<String>,
}

/// Why a request was not made or not finished.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("the registry did not answer in time")]
    Timeout,
    #[error("{0}")]
    Refused(String),
    #[error("{0}")]
    Http(String),
    #[error("{what} is larger than {limit} bytes")]
    TooLarge { what: &'static str, limit: usize },
    #[error("{0}")]
    Invalid(String),
}

/// Whether an address is one a pod-named registry must never reach: loopback, link-local
/// (169.254.0.0/16 holds the cloud metadata services), unspecified, multicast, broadcast,
/// documentation-free metadata addresses (AWS IPv6 `fd00:ec2::254`, Alibaba `100.100.100.200`).
pub fn is_forbidden(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let seg = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xffc0) == 0xfe80
                || v6 == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)
        }
    }
}

fn forbidden_v4(v4: Ipv4Addr) -> bool {
    v4.is_loopback()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_multicast()
        || v4.is_broadcast()
        || v4.octets()[0] == 0
        || v4 == Ipv4Addr::new(100, 100, 100, 200)
}

impl AddressPolicy {
    pub fn new<'a>(
        trusted: impl IntoIterator<Item = &'a str>,
        insecure: impl IntoIterator<Item = &'a str>,
    ) -> AddressPolicy {
        let insecure: HashSet<String> = insecure.into_iter().map(normalize).collect();
        let mut trusted: HashSet<String> = trusted.into_iter().map(normalize).collect();
        trusted.extend(insecure.iter().cloned());
        AddressPolicy { trusted, insecure }
    }

    fn is_trusted(&self, host: &str, port: Option<u16>) -> bool {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let with_port = port.map(|p| format!("{host}:{p}"));
        self.trusted.contains(&host.to_ascii_lowercase())
            || with_port.is_some_and(|h| self.trusted.contains(&h.to_ascii_lowercase()))
    }

    /// Whether `host[:port]` is reached over plain HTTP.
    pub fn is_insecure(&self, host_port: &str) -> bool {
        self.insecure.contains(&normalize(host_port))
    }

    /// Whether a URL's host is an insecure registry, named with or without the scheme's
    /// default port (`Url` drops `:80` from `http://host:80`).
    fn is_insecure_url(&self, url: &Url) -> bool {
        let Some(host) = url.host_str() else {
            return false;
        };
        let explicit = url.port().map(|p| format!("{host}:{p}"));
        let default = url.port_or_known_default().map(|p| format!("{host}:{p}"));
        self.is_insecure(host)
            || explicit.is_some_and(|a| self.is_insecure(&a))
            || default.is_some_and(|a| self.is_insecure(&a))
    }

    /// Checks a URL before a request: the scheme, and the host when it is an IP literal
    /// (names are checked after resolution by [`FilteringResolver`]).
    pub fn check_url(&self, url: &Url) -> Result<(), RegistryError> {
        let host = url
            .host_str()
            .ok_or_else(|| RegistryError::Refused(format!("{url}: no host")))?;
        let authority = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        };
        match url.scheme() {
            "https" => {}
            "http" if self.is_insecure_url(url) => {}
            other => {
                return Err(RegistryError::Refused(format!(
                    "{authority}: scheme {other} refused (only HTTPS, or registries listed in images.insecureRegistries)"
                )));
            }
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>()
            && is_forbidden(ip)
            && !self.is_trusted(host, url.port())
        {
            return Err(RegistryError::Refused(format!(
                "{authority}: address {ip} refused (loopback, link-local or metadata); name the registry in images.trustedRegistries to allow it"
            )));
        }
        Ok(())
    }
}

fn normalize(host: &str) -> String {
    crate::images::reference::normalize_host(host)
}

/// Resolves names (hickory-resolver: /etc/resolv.conf and /etc/hosts, no libc NSS, which a
/// static build cannot rely on) and drops the addresses a pod-named registry must not reach.
#[derive(Debug, Clone)]
pub struct FilteringResolver {
    policy: Arc<AddressPolicy>,
    /// Built on first use, inside the runtime.
    dns: Arc<OnceLock<hickory_resolver::TokioResolver>>,
}

impl FilteringResolver {
    fn dns(&self) -> Result<&hickory_resolver::TokioResolver, String> {
        if let Some(dns) = self.dns.get() {
            return Ok(dns);
        }
        let mut builder = hickory_resolver::TokioResolver::builder_tokio()
            .map_err(|e| format!("reading the system's DNS configuration: {e}"))?;
        builder.options_mut().ip_strategy = hickory_resolver::config::LookupIpStrategy::Ipv4AndIpv6;
        let built = builder
            .build()
            .map_err(|e| format!("starting the DNS resolver: {e}"))?;
        Ok(self.dns.get_or_init(|| built))
    }
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let this = self.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let dns = this.dns()?;
            let found: Vec<IpAddr> = dns
                .lookup_ip(host.as_str())
                .await
                .map_err(|e| format!("resolving {host}: {e}"))?
                .iter()
                .collect();
            let policy = &this.policy;
            // The port is not known here: a name is trusted by host alone.
            let trusted = policy.is_trusted(&host, None)
                || policy.trusted.iter().any(|t| {
                    t.split_once(':')
                        .is_some_and(|(h, _)| h.eq_ignore_ascii_case(&host))
                });
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|ip| trusted || !is_forbidden(*ip))
                .map(|ip| SocketAddr::new(ip, 0))
                .collect();
            if allowed.is_empty() {
                let shown: Vec<String> = found.iter().map(IpAddr::to_string).collect();
                return Err(format!(
                    "{host} resolves only to refused addresses ({}): loopback, link-local or metadata; name the registry in images.trustedRegistries to allow it",
                    shown.join(", ")
                )
                .into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client with the policy applied to names, IP literals and redirects.
pub fn http_client(
    policy: &Arc<AddressPolicy>,
    roots: Vec<reqwest::Certificate>,
    connect_timeout: Duration,
    read_timeout: Duration,
    user_agent: &str,
) -> Result<reqwest::Client, reqwest::Error> {
    let redirect_policy = Arc::clone(policy);
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .dns_resolver(Arc::new(FilteringResolver {
            policy: Arc::clone(policy),
            dns: Arc::new(OnceLock::new()),
        }))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            let downgrade = attempt.previous().iter().any(|u| u.scheme() == "https")
                && attempt.url().scheme() != "https";
            if downgrade {
                let url = attempt.url().to_string();
                return attempt.error(format!("redirect from HTTPS to {url} refused"));
            }
            match redirect_policy.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(e) => attempt.error(e.to_string()),
            }
        }))
        // A proxy from the environment would see every look-up; pidone does not use one.
        .no_proxy()
        .connect_timeout(connect_timeout)
        .read_timeout(read_timeout)
        .user_agent(user_agent.to_string());
    for root in roots {
        builder = builder.add_root_certificate(root);
    }
    builder.build()
}

/// Reads a response body to its end, failing past `limit` bytes.
pub async fn read_bounded(
    mut response: reqwest::Response,
    limit: usize,
    what: &'static str,
) -> Result<Vec<u8>, RegistryError> {
    if response.content_length().is_some_and(|n| n > limit as u64) {
        return Err(RegistryError::TooLarge { what, limit });
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| {
        if e.is_timeout() {
            RegistryError::Timeout
        } else {
            RegistryError::Http(format!("reading the {what}: {}", describe(&e)))
        }
    })? {
        if body.len() + chunk.len() > limit {
            return Err(RegistryError::TooLarge { what, limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `sha256:<hex>` of some bytes.
pub fn sha256_digest(bytes: &[u8]) -> String {
    let hash = Sha256::digest(bytes);
    let mut out = String::with_capacity(7 + 64);
    out.push_str("sha256:");
    for b in hash {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Checks bytes against a `sha256:` digest (other algorithms are not checked).
pub fn verify_digest(bytes: &[u8], digest: &str, what: &str) -> Result<(), RegistryError> {
    if digest.starts_with("sha256:") && sha256_digest(bytes) != digest {
        return Err(RegistryError::Invalid(format!(
            "the {what} does not match its digest {digest}"
        )));
    }
    Ok(())
}

/// A `WWW-Authenticate: Bearer realm=...,service=...,scope=...` challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BearerChallenge {
    pub realm: String,
    pub service: Option<String>,
    pub scope: Option<String>,
}

/// The challenge of a 401, if it is a Bearer one.
pub fn bearer_challenge(headers: &HeaderMap) -> Option<BearerChallenge> {
    let value = headers.get(WWW_AUTHENTICATE)?.to_str().ok()?;
    let rest = value.trim().strip_prefix("Bearer ").or_else(|| {
        value
            .trim()
            .get(..7)
            .filter(|p| p.eq_ignore_ascii_case("bearer "))
            .map(|_| &value.trim()[7..])
    })?;
    let mut realm = None;
    let mut service = None;
    let mut scope = None;
    for part in split_params(rest) {
        let Some((key, val)) = part.split_once('=') else {
            continue;
        };
        let val = val.trim().trim_matches('"').to_string();
        match key.trim().to_ascii_lowercase().as_str() {
            "realm" => realm = Some(val),
            "service" => service = Some(val),
            "scope" => scope = Some(val),
            _ => {}
        }
    }
    Some(BearerChallenge {
        realm: realm?,
        service,
        scope,
    })
}

/// Splits `a="x,y",b=z` at the commas outside quotes.
fn split_params(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quoted = false;
    for (i, c) in text.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

/// What a registry is sent: nothing, a user and password, or a token.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    Anonymous,
    Basic(String, String),
    Bearer(String),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::Anonymous => "Anonymous",
            Auth::Basic(..) => "Basic(..)",
            Auth::Bearer(_) => "Bearer(..)",
        })
    }
}

/// One bounded GET with an optional authorization and accept header.
pub async fn get(
    http: &reqwest::Client,
    policy: &AddressPolicy,
    url: &Url,
    auth: &Auth,
    accept: Option<&str>,
) -> Result<reqwest::Response, RegistryError> {
    policy.check_url(url)?;
    let mut request = http.get(url.clone());
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    // Credentials never travel in clear text, except to a registry configured as insecure.
    let clear = url.scheme() != "https";
    request = match auth {
        Auth::Anonymous => request,
        Auth::Basic(..) | Auth::Bearer(_) if clear && !policy.is_insecure_url(url) => request,
        Auth::Basic(user, pass) => request.basic_auth(user, Some(pass)),
        Auth::Bearer(token) => request.header(AUTHORIZATION, format!("Bearer {token}")),
    };
    request.send().await.map_err(|e| {
        if e.is_timeout() {
            RegistryError::Timeout
        } else {
            RegistryError::Http(describe(&e))
        }
    })
}

/// A reqwest error with its causes (the resolver's refusal is a cause).
pub fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Fetches a token for `scope` from the challenge's realm. The realm must pass the same policy
/// as the registry, may not be plain HTTP when the registry is HTTPS, and receives the
/// credentials only over HTTPS.
pub async fn fetch_token(
    http: &reqwest::Client,
    policy: &AddressPolicy,
    registry_url: &Url,
    challenge: &BearerChallenge,
    scope: &str,
    credentials: &Auth,
) -> Result<String, RegistryError> {
    let mut realm = Url::parse(&challenge.realm)
        .map_err(|e| RegistryError::Invalid(format!("token realm {:?}: {e}", challenge.realm)))?;
    if registry_url.scheme() == "https" && realm.scheme() != "https" {
        return Err(RegistryError::Refused(format!(
            "token realm {realm} refused: the registry is HTTPS"
        )));
    }
    {
        let mut query = realm.query_pairs_mut();
        query.append_pair("scope", challenge.scope.as_deref().unwrap_or(scope));
        if let Some(service) = &challenge.service {
            query.append_pair("service", service);
        }
    }
    let auth = match credentials {
        Auth::Basic(..) => credentials.clone(),
        // A registry token from config.json is the registry's, not the token service's.
        _ => Auth::Anonymous,
    };
    let response = get(http, policy, &realm, &auth, None).await?;
    let status = response.status();
    let body = read_bounded(response, MAX_TOKEN_BYTES, "token response").await?;
    if status != StatusCode::OK {
        return Err(RegistryError::Http(format!(
            "token service answered {status}"
        )));
    }
    #[derive(serde::Deserialize)]
    struct Token {
        token: Option<String>,
        access_token: Option<String>,
    }
    let token: Token = serde_json::from_slice(&body)
        .map_err(|e| RegistryError::Invalid(format!("token response: {e}")))?;
    token
        .token
        .or(token.access_token)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| RegistryError::Invalid("token response without a token".into()))
}

/// The media types of a manifest request's `Accept` header.
pub fn manifest_accept() -> &'static str {
    MANIFEST_TYPES
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "169.254.169.254",
            "169.254.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "100.100.100.200",
            "::1",
            "::",
            "fe80::1",
            "fd00:ec2::254",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(is_forbidden(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "8.8.8.8",
            "2001:db8::1",
        ] {
            assert!(!is_forbidden(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_are_checked_for_scheme_and_literal_addresses() {
        let policy = AddressPolicy::new(["127.0.0.1:5000"], ["plain.example:80"]);
        let ok = |u: &str| policy.check_url(&Url::parse(u).unwrap());
        assert!(ok("https://registry.example/v2/").is_ok());
        assert!(ok("https://10.1.2.3/v2/").is_ok());
        assert!(ok("https://127.0.0.1:5000/v2/").is_ok(), "trusted");
        assert!(ok("https://127.0.0.1:5001/v2/").is_err());
        assert!(ok("https://169.254.169.254/latest/meta-data").is_err());
        assert!(ok("https://[::1]:5000/v2/").is_err());
        assert!(ok("http://registry.example/v2/").is_err());
        assert!(ok("http://plain.example:80/v2/").is_ok());
        assert!(ok("ftp://registry.example/").is_err());
    }

    #[test]
    fn challenges_are_parsed() {
        let mut h = HeaderMap::new();
        h.insert(
            WWW_AUTHENTICATE,
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/nginx:pull,push""#
                .parse()
                .unwrap(),
        );
        let c = bearer_challenge(&h).unwrap();
        assert_eq!(c.realm, "https://auth.docker.io/token");
        assert_eq!(c.service.as_deref(), Some("registry.docker.io"));
        assert_eq!(
            c.scope.as_deref(),
            Some("repository:library/nginx:pull,push")
        );
        h.insert(WWW_AUTHENTICATE, r#"Basic realm="x""#.parse().unwrap());
        assert!(bearer_challenge(&h).is_none());
    }

    #[test]
    fn digests() {
        assert_eq!(
            sha256_digest(b""),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert!(verify_digest(b"", &sha256_digest(b""), "blob").is_ok());
        assert!(verify_digest(b"x", &sha256_digest(b""), "blob").is_err());
    }
}
