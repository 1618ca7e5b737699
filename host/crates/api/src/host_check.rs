//! The `Host` allow-list (`assay serve --allowed-host`): a defence against
//! DNS rebinding.
//!
//! A web page on `http://evil.example:4111` can make its own name resolve
//! to 127.0.0.1 and then read a loopback server as if it were same-origin;
//! the browser still sends `Host: evil.example:4111`. A server on loopback
//! therefore answers only requests whose `Host` names it: `localhost`,
//! `127.0.0.1`, `::1` and the address it is bound to (any port). A server
//! on another address answers any `Host` unless `--allowed-host` is given.
//! A request without a `Host` (HTTP/1.0) comes from no browser and passes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

/// Host names a loopback server always answers to.
pub const LOOPBACK_NAMES: [&str; 3] = ["localhost", "127.0.0.1", "::1"];

/// Which `Host` header values the server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPolicy {
    /// Any host.
    Any,
    /// Only these host names (lowercase, no port, IPv6 without brackets).
    Only(Vec<String>),
}

impl HostPolicy {
    /// The policy for a server bound to `addr` given the `--allowed-host`
    /// values: the values themselves (`*` means any) when there are some;
    /// otherwise the loopback names plus the bound address on loopback, and
    /// any host elsewhere.
    pub fn for_addr<S: AsRef<str>>(addr: SocketAddr, allowed: &[S]) -> Self {
        if !allowed.is_empty() {
            if allowed.iter().any(|h| h.as_ref().trim() == "*") {
                return HostPolicy::Any;
            }
            let mut names: Vec<String> = allowed.iter().map(|h| normalize(h.as_ref())).collect();
            names.dedup();
            return HostPolicy::Only(names);
        }
        if !addr.ip().is_loopback() {
            return HostPolicy::Any;
        }
        let mut names: Vec<String> = LOOPBACK_NAMES.iter().map(|s| s.to_string()).collect();
        let bound = addr.ip().to_string();
        if !names.contains(&bound) {
            names.push(bound);
        }
        HostPolicy::Only(names)
    }

    /// Whether a request with this `Host` value is answered.
    pub fn allows(&self, host: &str) -> bool {
        match self {
            HostPolicy::Any => true,
            HostPolicy::Only(names) => {
                let name = normalize(strip_port(host));
                names.contains(&name)
            }
        }
    }
}

/// Lowercase, without IPv6 brackets or a trailing dot.
fn normalize(host: &str) -> String {
    let host = host.trim();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    host.trim_end_matches('.').to_ascii_lowercase()
}

/// `host` of `host:port`, `[v6]` of `[v6]:port`.
fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => &authority[..=end],
            None => authority,
        };
    }
    match authority.rsplit_once(':') {
        // A bare IPv6 address has several colons and no port.
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host
        }
        _ => authority,
    }
}

/// Middleware: 403 `host_not_allowed` for a request whose `Host` the
/// policy refuses.
pub async fn check(
    State(policy): State<Arc<HostPolicy>>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|v| v.to_str().unwrap_or("\u{fffd}").to_string())
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    match host {
        Some(host) if !policy.allows(&host) => {
            tracing::warn!(host, "request refused: Host not in the allow-list");
            ApiError::new(
                StatusCode::FORBIDDEN,
                "host_not_allowed",
                format!(
                    "this server does not answer to Host `{host}` (a defence against DNS \
                     rebinding); start it with `--allowed-host {}` to allow that name",
                    normalize(strip_port(&host))
                ),
            )
            .into_response()
        }
        _ => next.run(request).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn loopback_servers_answer_only_their_own_names() {
        let p = HostPolicy::for_addr::<&str>(addr("127.0.0.1:4111"), &[]);
        for ok in [
            "localhost",
            "localhost:4111",
            "LOCALHOST:1",
            "localhost.:4111",
            "127.0.0.1:4111",
            "[::1]:4111",
            "::1",
        ] {
            assert!(p.allows(ok), "{ok}");
        }
        for bad in [
            "evil.example:4111",
            "evil.example",
            "localhost.evil.example",
            "127.0.0.1.nip.io:4111",
            "",
        ] {
            assert!(!p.allows(bad), "{bad}");
        }
        let p = HostPolicy::for_addr::<&str>(addr("127.0.0.2:80"), &[]);
        assert!(p.allows("127.0.0.2"));
        let p = HostPolicy::for_addr::<&str>(addr("[::1]:80"), &[]);
        assert!(p.allows("[::1]:80"));
    }

    #[test]
    fn other_addresses_answer_any_host_unless_told() {
        assert_eq!(
            HostPolicy::for_addr::<&str>(addr("0.0.0.0:4111"), &[]),
            HostPolicy::Any
        );
        let p = HostPolicy::for_addr(addr("0.0.0.0:4111"), &["Assay.Internal"]);
        assert!(p.allows("assay.internal:4111"));
        assert!(!p.allows("localhost:4111"));
        assert_eq!(
            HostPolicy::for_addr(addr("127.0.0.1:4111"), &["*"]),
            HostPolicy::Any
        );
    }
}
