//! [`NetworkAccess`]: what one call may reach (a [`NetworkGrant`]), the
//! secrets it may put in request headers, and how host names are resolved.

use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::BoxFuture;

use crate::grant::NetworkGrant;
use crate::net_pool::ConnectionPool;
use crate::net_rate::RateLimiters;
use crate::secrets::Secrets;

/// The network one plugin call is given. The default grants nothing: every
/// request the plugin makes is denied before any connection.
#[derive(Clone)]
pub struct NetworkAccess {
    /// Hosts, scheme and limits the call's requests are checked against.
    pub grant: NetworkGrant,
    /// Values the call's request headers may use as `{{secret.NAME}}`.
    pub secrets: Arc<Secrets>,
    /// Resolves host names on the host side (the guest never does).
    pub resolver: Arc<dyn Resolver>,
    /// The grant's per-host rate limits. Shared by every clone of this
    /// access, so build one access per run and plugin and clone it per
    /// call: the limits then hold across all of the run's calls.
    pub rate_limits: Arc<RateLimiters>,
    /// Keep-alive connections, shared by every clone of this access like
    /// the rate limits: reused between the calls of one run's plugin.
    pub connections: Arc<ConnectionPool>,
}

impl Default for NetworkAccess {
    fn default() -> Self {
        Self::new(NetworkGrant::default(), Arc::default())
    }
}

impl NetworkAccess {
    /// No network at all.
    pub fn none() -> Self {
        Self::default()
    }

    /// A grant and its secrets, resolved with the system resolver, with
    /// fresh limiters for the grant's rate limits.
    pub fn new(grant: NetworkGrant, secrets: Arc<Secrets>) -> Self {
        Self {
            rate_limits: Arc::new(RateLimiters::new(&grant.rate_limits)),
            connections: Arc::default(),
            grant,
            secrets,
            resolver: Arc::new(SystemResolver),
        }
    }

    /// The same access, resolving names with `resolver` (tests map names
    /// to loopback addresses with a [`StaticResolver`]).
    pub fn with_resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }
}

impl fmt::Debug for NetworkAccess {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkAccess")
            .field("grant", &self.grant)
            .field("secrets", &self.secrets.names().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

/// Turns a host name into addresses. The host resolves once per request,
/// checks every address, and connects to a checked one: there is no second
/// lookup that could answer differently (no DNS rebinding window).
pub trait Resolver: Send + Sync + 'static {
    /// The addresses of `host` (a name, never an IP literal) at `port`.
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>>;
}

/// The operating system's resolver (`tokio::net::lookup_host`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        Box::pin(async move { Ok(tokio::net::lookup_host((host, port)).await?.collect()) })
    }
}

/// A fixed name → addresses table; names not in it do not resolve.
#[derive(Debug, Clone, Default)]
pub struct StaticResolver {
    names: HashMap<String, Vec<std::net::IpAddr>>,
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Maps `name` to `addresses`.
    pub fn with(mut self, name: &str, addresses: &[std::net::IpAddr]) -> Self {
        self.names
            .insert(name.to_ascii_lowercase(), addresses.to_vec());
        self
    }
}

impl Resolver for StaticResolver {
    fn resolve<'a>(
        &'a self,
        host: &'a str,
        port: u16,
    ) -> BoxFuture<'a, io::Result<Vec<SocketAddr>>> {
        let found = self
            .names
            .get(&host.to_ascii_lowercase())
            .map(|ips| ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect());
        Box::pin(async move {
            found.ok_or_else(|| {
                io::Error::new(io::ErrorKind::NotFound, format!("{host} does not resolve"))
            })
        })
    }
}
