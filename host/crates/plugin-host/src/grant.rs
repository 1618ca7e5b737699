//! Network grants: which outbound HTTP requests a plugin may make, as data.
//!
//! A plugin starts with no network at all. An operator (or a tenant admin)
//! grants hosts per plugin; a run may narrow that grant, never widen it. The
//! host checks every request a plugin hands over against the grant before
//! any connection is made, so the grant is the one place that decides.
//!
//! A grant serializes as the operator writes it:
//!
//! ```json
//! {"hosts": ["api.openai.com", "*.example.com:8443", "127.0.0.1:8080"],
//!  "allowHttp": false,
//!  "limits": {"maxRequests": 16, "timeoutMs": 60000},
//!  "rateLimits": [{"host": "api.openai.com", "requestsPerSecond": 5,
//!                  "tokensPerMinute": 90000}]}
//! ```

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// What outbound HTTP one plugin may do. The default grants nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkGrant {
    /// Hosts the plugin may reach. Empty: no network.
    #[serde(default)]
    pub hosts: Vec<HostPattern>,
    /// Whether plain `http` is allowed besides `https`.
    #[serde(default)]
    pub allow_http: bool,
    /// Per-call bounds on the plugin's requests.
    #[serde(default)]
    pub limits: NetworkLimits,
    /// Per-host rates, shared by every call of a run (see
    /// [`crate::RateLimiters`]); a request waits for each one whose host
    /// matches it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rate_limits: Vec<RateLimit>,
}

/// How fast a run's calls may use one host: requests per second (each
/// request waits for its turn) and tokens per minute (a request waits while
/// the tokens that host reported in the last minute reach the budget).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(
    rename_all = "camelCase",
    deny_unknown_fields,
    try_from = "RateLimitFields"
)]
pub struct RateLimit {
    /// The requests this limit paces: those whose host matches.
    pub host: HostPattern,
    /// Requests per second (a fraction is allowed: `0.5` is one every two
    /// seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<RequestRate>,
    /// Tokens per minute, as the host reports them in `usage` of its JSON
    /// answers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokens_per_minute: Option<u64>,
}

/// [`RateLimit`] as written, before it is checked.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RateLimitFields {
    host: HostPattern,
    #[serde(default)]
    requests_per_second: Option<f64>,
    #[serde(default)]
    tokens_per_minute: Option<u64>,
}

impl TryFrom<RateLimitFields> for RateLimit {
    type Error = String;

    fn try_from(f: RateLimitFields) -> Result<Self, String> {
        if f.requests_per_second.is_none() && f.tokens_per_minute.is_none() {
            return Err(format!(
                "the rate limit of {} sets neither requestsPerSecond nor tokensPerMinute",
                f.host
            ));
        }
        if f.tokens_per_minute == Some(0) {
            return Err(format!("tokensPerMinute of {} must be at least 1", f.host));
        }
        let requests_per_second = f
            .requests_per_second
            .map(RequestRate::new)
            .transpose()
            .map_err(|e| format!("requestsPerSecond of {}: {e}", f.host))?;
        Ok(RateLimit {
            host: f.host,
            requests_per_second,
            tokens_per_minute: f.tokens_per_minute,
        })
    }
}

/// Requests per second: a finite number above 0 and at most a million.
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct RequestRate(f64);

// A rate is never NaN (see `RequestRate::new`), so equality is total.
impl Eq for RequestRate {}

impl std::hash::Hash for RequestRate {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

impl RequestRate {
    /// The highest rate accepted (beyond it pacing means nothing).
    pub const MAX: f64 = 1_000_000.0;

    /// A checked rate.
    pub fn new(per_second: f64) -> Result<Self, String> {
        if per_second.is_finite() && per_second > 0.0 && per_second <= Self::MAX {
            Ok(Self(per_second))
        } else {
            Err(format!(
                "{per_second} is not a rate (give a number above 0, at most {})",
                Self::MAX
            ))
        }
    }

    /// Requests per second.
    pub fn get(self) -> f64 {
        self.0
    }

    /// Time between two requests.
    pub fn interval(self) -> std::time::Duration {
        std::time::Duration::from_secs_f64(1.0 / self.0)
    }
}

/// Per-call bounds on a plugin's outbound requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct NetworkLimits {
    /// Requests one call may make.
    pub max_requests: u32,
    /// Bytes of one request body.
    pub max_request_bytes: u64,
    /// Bytes of one response body.
    pub max_response_bytes: u64,
    /// Time to establish a connection, in milliseconds.
    pub connect_timeout_ms: u64,
    /// Time for one request from send to the end of its response body, in
    /// milliseconds.
    pub timeout_ms: u64,
}

impl Default for NetworkLimits {
    /// 16 requests per call, 1 MiB up, 8 MiB down, 5 s to connect, 60 s
    /// per request: room for a chat completion, not for a crawl.
    fn default() -> Self {
        Self {
            max_requests: 16,
            max_request_bytes: 1 << 20,
            max_response_bytes: 8 << 20,
            connect_timeout_ms: 5_000,
            timeout_ms: 60_000,
        }
    }
}

impl NetworkLimits {
    /// The tighter of two limits, field by field.
    pub fn narrowed_by(&self, other: &NetworkLimits) -> NetworkLimits {
        NetworkLimits {
            max_requests: self.max_requests.min(other.max_requests),
            max_request_bytes: self.max_request_bytes.min(other.max_request_bytes),
            max_response_bytes: self.max_response_bytes.min(other.max_response_bytes),
            connect_timeout_ms: self.connect_timeout_ms.min(other.connect_timeout_ms),
            timeout_ms: self.timeout_ms.min(other.timeout_ms),
        }
    }
}

/// The scheme of an outbound request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// The port a URL without one uses.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        })
    }
}

/// Why a request is not covered by a grant. The message names the grant
/// that is missing, so the plugin's author knows what to ask for.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    #[error("no network is granted to this plugin (grant {host} to allow this request)")]
    NothingGranted { host: String },
    #[error("host {host} is not granted to this plugin (granted: {granted})")]
    HostNotGranted { host: String, granted: String },
    #[error(
        "plain http to {host} is not granted to this plugin (only https is allowed unless the grant allows http)"
    )]
    HttpNotGranted { host: String },
    #[error(
        "{host} resolves to {address}, an internal address; only a grant that names the address itself may reach it"
    )]
    InternalAddress { host: String, address: IpAddr },
    #[error("the plugin made more than {limit} requests in one call (the grant's maxRequests)")]
    TooManyRequests { limit: u32 },
}

impl NetworkGrant {
    /// True when nothing is granted.
    pub fn is_empty(&self) -> bool {
        self.hosts.is_empty()
    }

    /// Checks a request's scheme, host and port against the grant; on
    /// success returns the pattern that allowed it.
    pub fn check(&self, scheme: Scheme, host: &str, port: u16) -> Result<&HostPattern, Denial> {
        let host_port = HostPort::display(host, port, scheme);
        if self.hosts.is_empty() {
            return Err(Denial::NothingGranted { host: host_port });
        }
        let Some(pattern) = self.hosts.iter().find(|p| p.matches(host, port, scheme)) else {
            return Err(Denial::HostNotGranted {
                host: host_port,
                granted: self.granted_list(),
            });
        };
        if scheme == Scheme::Http && !self.allow_http {
            return Err(Denial::HttpNotGranted { host: host_port });
        }
        Ok(pattern)
    }

    /// The granted hosts, comma separated, as people read them.
    pub fn granted_list(&self) -> String {
        let names: Vec<String> = self.hosts.iter().map(ToString::to_string).collect();
        names.join(", ")
    }

    /// The grant a run gets when it asks for `requested`: its hosts (each
    /// must be covered by one of ours), http only if both allow it, and the
    /// tighter of both limits. Asking for more than is granted is an error,
    /// not a silent cut.
    pub fn narrow(&self, requested: &NetworkGrant) -> Result<NetworkGrant, NarrowError> {
        for want in &requested.hosts {
            if !self.hosts.iter().any(|have| have.covers(want)) {
                return Err(NarrowError::HostNotGranted {
                    host: want.to_string(),
                    granted: self.granted_list(),
                });
            }
        }
        if requested.allow_http && !self.allow_http {
            return Err(NarrowError::HttpNotGranted);
        }
        // Both sets of rate limits apply (a request waits for every one
        // that matches it), so a run can add limits but not lift ours.
        let mut rate_limits = self.rate_limits.clone();
        rate_limits.extend(requested.rate_limits.iter().cloned());
        Ok(NetworkGrant {
            hosts: requested.hosts.clone(),
            allow_http: requested.allow_http,
            limits: self.limits.narrowed_by(&requested.limits),
            rate_limits,
        })
    }
}

/// A run asked for more network than its plugin is granted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NarrowError {
    #[error(
        "the run asks for host {host}, which the plugin is not granted (granted: {granted}); a run may narrow a grant, never widen it"
    )]
    HostNotGranted { host: String, granted: String },
    #[error(
        "the run asks for plain http, which the plugin's grant does not allow; a run may narrow a grant, never widen it"
    )]
    HttpNotGranted,
}

/// A host the grant allows: an exact name, a `*.` wildcard over the
/// subdomains of a name, or an IP address; with an optional port (without
/// one, the scheme's default port).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct HostPattern {
    host: HostName,
    port: Option<u16>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum HostName {
    /// `api.openai.com`
    Exact(String),
    /// `*.example.com`: any name ending in `.example.com` (not the name
    /// itself).
    Subdomains(String),
    /// `127.0.0.1`, `[::1]`
    Address(IpAddr),
}

impl HostPattern {
    /// Whether a request to `host:port` over `scheme` matches.
    pub fn matches(&self, host: &str, port: u16, scheme: Scheme) -> bool {
        if self.port.unwrap_or(scheme.default_port()) != port {
            return false;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match &self.host {
            HostName::Exact(name) => *name == host,
            HostName::Subdomains(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            HostName::Address(ip) => host.parse::<IpAddr>().is_ok_and(|h| h == *ip),
        }
    }

    /// Whether this pattern names `address` itself, which is what lets a
    /// request reach an internal address: an IP literal, or `localhost` for
    /// loopback. A name that merely resolves to an internal address does
    /// not.
    pub fn names_address(&self, address: IpAddr) -> bool {
        match &self.host {
            HostName::Address(ip) => *ip == address,
            HostName::Exact(name) => name == "localhost" && address.is_loopback(),
            HostName::Subdomains(_) => false,
        }
    }

    /// Whether everything `other` matches, this matches too (for
    /// narrowing).
    fn covers(&self, other: &HostPattern) -> bool {
        if self.port != other.port {
            return false;
        }
        match (&self.host, &other.host) {
            (a, b) if a == b => true,
            (HostName::Subdomains(suffix), HostName::Exact(name)) => name
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            (HostName::Subdomains(outer), HostName::Subdomains(inner)) => {
                inner.ends_with(&format!(".{outer}"))
            }
            _ => false,
        }
    }
}

/// A host pattern that cannot be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid host {input:?}: {reason}")]
pub struct HostPatternError {
    input: String,
    reason: &'static str,
}

impl FromStr for HostPattern {
    type Err = HostPatternError;

    /// Parses `name`, `*.name`, `1.2.3.4`, `[::1]`, each with an optional
    /// `:port`. Schemes and paths are refused rather than ignored.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| HostPatternError {
            input: input.to_string(),
            reason,
        };
        let text = input.trim();
        if text.contains("://") || text.contains('/') {
            return Err(err(
                "give a host name, not a URL (e.g. api.openai.com or *.example.com:8443)",
            ));
        }
        let (host, port) = split_port(text).map_err(err)?;
        let lower = host.to_ascii_lowercase();
        let lower = lower.trim_end_matches('.');
        if let Some(v6) = lower.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            let ip: Ipv6Addr = v6.parse().map_err(|_| err("not an IPv6 address"))?;
            return Ok(HostPattern {
                host: HostName::Address(IpAddr::V6(ip)),
                port,
            });
        }
        if let Ok(ip) = lower.parse::<Ipv4Addr>() {
            return Ok(HostPattern {
                host: HostName::Address(IpAddr::V4(ip)),
                port,
            });
        }
        let (wildcard, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower),
        };
        validate_dns_name(name).map_err(err)?;
        if wildcard && !name.contains('.') {
            return Err(err(
                "a wildcard must cover the subdomains of a registered name (*.example.com), not a whole top-level domain",
            ));
        }
        Ok(HostPattern {
            host: if wildcard {
                HostName::Subdomains(name.to_string())
            } else {
                HostName::Exact(name.to_string())
            },
            port,
        })
    }
}

/// Splits `host[:port]`, keeping `[v6]` brackets on the host.
fn split_port(text: &str) -> Result<(&str, Option<u16>), &'static str> {
    let (host, port) = if text.starts_with('[') {
        match text.find(']') {
            Some(end) => match &text[end + 1..] {
                "" => (text, None),
                rest => match rest.strip_prefix(':') {
                    Some(port) => (&text[..=end], Some(port)),
                    None => return Err("unexpected text after the IPv6 address"),
                },
            },
            None => return Err("unclosed [ in an IPv6 address"),
        }
    } else {
        match text.rsplit_once(':') {
            Some((host, port)) if !host.contains(':') => (host, Some(port)),
            Some(_) => return Err("write IPv6 addresses in brackets, e.g. [::1]:8080"),
            None => (text, None),
        }
    };
    let port = match port {
        None => None,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err("the port must be a number from 1 to 65535"),
            Ok(port) => Some(port),
        },
    };
    if host.is_empty() {
        return Err("the host is empty");
    }
    Ok((host, port))
}

/// ASCII DNS names only: labels of `[a-z0-9-]`, not starting or ending with
/// `-`, at most 63 bytes each and 253 in all. (Internationalized names are
/// written in their `xn--` form.)
fn validate_dns_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > 253 {
        return Err("a host name has 1 to 253 characters");
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("each dot-separated part of a host name has 1 to 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(
                "a host name has letters, digits, '-' and '.' only (write internationalized names in their xn-- form)",
            );
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a part of a host name cannot start or end with '-'");
        }
    }
    Ok(())
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostName::Exact(name) => f.write_str(name)?,
            HostName::Subdomains(name) => write!(f, "*.{name}")?,
            HostName::Address(IpAddr::V4(ip)) => write!(f, "{ip}")?,
            HostName::Address(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
        }
        match self.port {
            Some(port) => write!(f, ":{port}"),
            None => Ok(()),
        }
    }
}

impl Serialize for HostPattern {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for HostPattern {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// `host:port` as a denial message shows it (the port only when it is not
/// the scheme's default), so the text can be pasted into a grant.
struct HostPort;

impl HostPort {
    fn display(host: &str, port: u16, scheme: Scheme) -> String {
        let host = host.to_ascii_lowercase();
        let host = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]")
        } else {
            host
        };
        if port == scheme.default_port() {
            host
        } else {
            format!("{host}:{port}")
        }
    }
}

/// Whether `address` is inside the operator's network rather than on the
/// public internet: loopback, private, link-local, shared (carrier-grade
/// NAT), unspecified, broadcast, multicast, documentation and unique-local
/// ranges, and IPv4 addresses mapped or embedded in IPv6. A name that
/// resolves to such an address is refused unless the grant names the
/// address itself (no server-side request forgery).
pub fn is_internal_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_internal_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_internal_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (first & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (first & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || (first == 0x2001 && v6.segments()[1] == 0x0db8) // documentation
                || (first == 0x0064 && v6.segments()[1] == 0xff9b) // NAT64 64:ff9b::/96
                || v6.segments()[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible ::a.b.c.d
        }
    }
}

fn is_internal_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space 100.64/10
        || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grant(hosts: &[&str]) -> NetworkGrant {
        NetworkGrant {
            hosts: hosts.iter().map(|h| h.parse().unwrap()).collect(),
            ..NetworkGrant::default()
        }
    }

    #[test]
    fn nothing_is_granted_by_default() {
        let err = NetworkGrant::default()
            .check(Scheme::Https, "api.openai.com", 443)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "no network is granted to this plugin (grant api.openai.com to allow this request)"
        );
    }

    #[test]
    fn exact_hosts_match_only_themselves_on_the_default_port() {
        let g = grant(&["api.openai.com"]);
        assert!(g.check(Scheme::Https, "API.OpenAI.com", 443).is_ok());
        assert!(g.check(Scheme::Https, "api.openai.com.", 443).is_ok());
        let err = g.check(Scheme::Https, "api.openai.com", 8443).unwrap_err();
        assert_eq!(
            err.to_string(),
            "host api.openai.com:8443 is not granted to this plugin (granted: api.openai.com)"
        );
        assert!(g.check(Scheme::Https, "evil-api.openai.com", 443).is_err());
        assert!(g.check(Scheme::Https, "openai.com", 443).is_err());
    }

    #[test]
    fn wildcards_match_subdomains_but_not_the_name_or_lookalikes() {
        let g = grant(&["*.example.com:8443"]);
        assert!(g.check(Scheme::Https, "a.example.com", 8443).is_ok());
        assert!(g.check(Scheme::Https, "a.b.example.com", 8443).is_ok());
        assert!(g.check(Scheme::Https, "example.com", 8443).is_err());
        assert!(g.check(Scheme::Https, "badexample.com", 8443).is_err());
        assert!(g.check(Scheme::Https, "a.example.com", 443).is_err());
    }

    #[test]
    fn http_needs_the_grant_to_allow_it() {
        let mut g = grant(&["127.0.0.1:8080"]);
        let err = g.check(Scheme::Http, "127.0.0.1", 8080).unwrap_err();
        assert!(matches!(err, Denial::HttpNotGranted { .. }), "{err}");
        g.allow_http = true;
        assert!(g.check(Scheme::Http, "127.0.0.1", 8080).is_ok());
    }

    #[test]
    fn ipv6_literals_parse_match_and_print_in_brackets() {
        let g = grant(&["[::1]:9000"]);
        assert!(g.check(Scheme::Https, "[::1]", 9000).is_ok());
        assert!(g.check(Scheme::Https, "::1", 9000).is_ok());
        assert_eq!(g.granted_list(), "[::1]:9000");
    }

    #[test]
    fn bad_patterns_are_refused_with_a_reason() {
        for (input, reason) in [
            ("https://api.openai.com", "not a URL"),
            ("*", "letters, digits"),
            ("*.com", "top-level"),
            ("a..b", "1 to 63"),
            ("exa mple.com", "letters, digits"),
            ("host:0", "port"),
            ("host:99999", "port"),
            ("::1", "brackets"),
            ("-bad.com", "start or end"),
            ("", "empty"),
        ] {
            let err = input.parse::<HostPattern>().unwrap_err().to_string();
            assert!(err.contains(reason), "{input:?}: {err}");
        }
    }

    #[test]
    fn grants_round_trip_through_json_and_refuse_unknown_fields() {
        let json = r#"{"hosts":["api.openai.com","*.example.com:8443","[::1]:80"],"allowHttp":true,"limits":{"maxRequests":3}}"#;
        let g: NetworkGrant = serde_json::from_str(json).unwrap();
        assert_eq!(g.limits.max_requests, 3);
        assert_eq!(g.limits.timeout_ms, NetworkLimits::default().timeout_ms);
        let back: NetworkGrant = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert_eq!(back, g);
        let err = serde_json::from_str::<NetworkGrant>(r#"{"hosts":[],"allowedHosts":[]}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("allowedHosts"), "{err}");
    }

    #[test]
    fn a_run_may_narrow_a_grant_but_never_widen_it() {
        let mut stored = grant(&["*.example.com", "api.openai.com"]);
        stored.limits.max_requests = 8;
        let mut asked = grant(&["eu.example.com"]);
        asked.limits.max_requests = 100;
        let narrowed = stored.narrow(&asked).unwrap();
        assert_eq!(narrowed.granted_list(), "eu.example.com");
        assert_eq!(narrowed.limits.max_requests, 8);

        let err = stored.narrow(&grant(&["evil.com"])).unwrap_err();
        assert!(err.to_string().contains("never widen"), "{err}");
        let err = stored.narrow(&grant(&["api.openai.com:8443"])).unwrap_err();
        assert!(matches!(err, NarrowError::HostNotGranted { .. }));
        let mut http = grant(&["api.openai.com"]);
        http.allow_http = true;
        assert_eq!(stored.narrow(&http), Err(NarrowError::HttpNotGranted));
        assert!(
            grant(&["*.example.com"])
                .narrow(&grant(&["*.a.example.com"]))
                .is_ok()
        );
        assert!(
            grant(&["*.a.example.com"])
                .narrow(&grant(&["*.example.com"]))
                .is_err()
        );
    }

    #[test]
    fn internal_addresses_are_recognized() {
        for internal in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
        ] {
            assert!(
                is_internal_address(internal.parse().unwrap()),
                "{internal} must be internal"
            );
        }
        for public in ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "172.32.0.1"] {
            assert!(
                !is_internal_address(public.parse().unwrap()),
                "{public} is public"
            );
        }
    }

    #[test]
    fn only_a_pattern_naming_the_address_reaches_it() {
        let loopback: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(
            "127.0.0.1:8080"
                .parse::<HostPattern>()
                .unwrap()
                .names_address(loopback)
        );
        assert!(
            "localhost"
                .parse::<HostPattern>()
                .unwrap()
                .names_address(loopback)
        );
        assert!(
            !"api.example.com"
                .parse::<HostPattern>()
                .unwrap()
                .names_address(loopback)
        );
        assert!(
            !"*.example.com"
                .parse::<HostPattern>()
                .unwrap()
                .names_address(loopback)
        );
    }

    #[test]
    fn rate_limits_are_checked_when_read_and_round_trip() {
        let text = r#"{"hosts": ["api.openai.com"], "rateLimits": [
            {"host": "api.openai.com", "requestsPerSecond": 0.5, "tokensPerMinute": 90000}]}"#;
        let parsed: NetworkGrant = serde_json::from_str(text).unwrap();
        let limit = &parsed.rate_limits[0];
        assert_eq!(limit.requests_per_second.map(RequestRate::get), Some(0.5));
        assert_eq!(limit.requests_per_second.unwrap().interval().as_secs(), 2);
        assert_eq!(limit.tokens_per_minute, Some(90000));
        let again: NetworkGrant =
            serde_json::from_str(&serde_json::to_string(&parsed).unwrap()).unwrap();
        assert_eq!(again, parsed);
        // A grant without rate limits serializes as before.
        let plain = serde_json::to_value(grant(&["api.openai.com"])).unwrap();
        assert!(plain.get("rateLimits").is_none(), "{plain}");

        for (bad, says) in [
            (r#"{"host": "a.example"}"#, "neither"),
            (
                r#"{"host": "a.example", "requestsPerSecond": 0}"#,
                "not a rate",
            ),
            (
                r#"{"host": "a.example", "requestsPerSecond": -2}"#,
                "not a rate",
            ),
            (
                r#"{"host": "a.example", "requestsPerSecond": 1e9}"#,
                "not a rate",
            ),
            (
                r#"{"host": "a.example", "tokensPerMinute": 0}"#,
                "at least 1",
            ),
            (
                r#"{"host": "a.example", "tokensPerMinute": -5}"#,
                "invalid value",
            ),
            (
                r#"{"host": "a.example", "requestsPerMinute": 5}"#,
                "unknown field",
            ),
            (
                r#"{"host": "https://a.example", "tokensPerMinute": 5}"#,
                "not a URL",
            ),
        ] {
            let text = format!(r#"{{"hosts": ["a.example"], "rateLimits": [{bad}]}}"#);
            let err = serde_json::from_str::<NetworkGrant>(&text).unwrap_err();
            assert!(err.to_string().contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn a_run_adds_rate_limits_but_cannot_lift_the_stored_ones() {
        let limit = |rps: f64| RateLimit {
            host: "api.openai.com".parse().unwrap(),
            requests_per_second: Some(RequestRate::new(rps).unwrap()),
            tokens_per_minute: None,
        };
        let stored = NetworkGrant {
            rate_limits: vec![limit(5.0)],
            ..grant(&["api.openai.com"])
        };
        let asked = NetworkGrant {
            rate_limits: vec![limit(50.0)],
            ..grant(&["api.openai.com"])
        };
        let run = stored.narrow(&asked).unwrap();
        assert_eq!(run.rate_limits, vec![limit(5.0), limit(50.0)]);
        let plain = stored.narrow(&grant(&["api.openai.com"])).unwrap();
        assert_eq!(plain.rate_limits, vec![limit(5.0)]);
    }
}
