//! Which servers a client talks to — one server (plain, TLS or a unix socket), the master
//! Sentinel names, or a Redis Cluster — built with the redis crate's own support, and the
//! connection each gives.

use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, ClientTlsConfig, ConnectionAddr, IntoConnectionInfo, RedisResult,
    TlsCertificates, TlsMode, Value,
};

use crate::config::{Deployment, RedisConfig, Secrets, SentinelConfig, TlsConfig};

use super::ClientError;

/// The servers.
pub(super) enum Target {
    /// One server.
    Standalone(Box<redis::Client>),
    /// The master the Sentinels name, found again at every connection.
    Sentinel(Box<SentinelClient>),
    /// A cluster: the crate routes each command to the node owning its slot.
    Cluster(Box<ClusterClient>),
}

/// A connection to the target.
#[derive(Clone)]
pub enum Conn {
    /// To one server (or the Sentinels' master).
    Single(MultiplexedConnection),
    /// To a cluster.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a redis::Cmd) -> redis::RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(cmd, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

fn bad(what: &str, e: impl std::fmt::Display) -> ClientError {
    ClientError::Command(format!("{what}: {e}"))
}

/// The certificates to use beside (or instead of) the system's roots, if any.
fn certificates(s: &Secrets) -> Option<TlsCertificates> {
    if s.ca.is_none() && s.client.is_none() {
        return None;
    }
    Some(TlsCertificates {
        client_tls: s
            .client
            .clone()
            .map(|(client_cert, client_key)| ClientTlsConfig {
                client_cert,
                client_key,
            }),
        root_cert: s.ca.clone().map(|(_, pem)| pem),
    })
}

fn tls_mode(tls: &TlsConfig) -> TlsMode {
    if tls.insecure_skip_verify {
        TlsMode::Insecure
    } else {
        TlsMode::Secure
    }
}

/// `host:port` as an address, TLS or not (validated by the configuration).
fn node(n: &str, tls: &TlsConfig) -> ConnectionAddr {
    let (host, port) = n.rsplit_once(':').unwrap_or((n, "6379"));
    let port = port.parse().unwrap_or(6379);
    if tls.enabled {
        ConnectionAddr::TcpTls {
            host: host.to_string(),
            port,
            insecure: tls.insecure_skip_verify,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host.to_string(), port)
    }
}

/// Builds the target from the configuration and the secrets read for it.
pub(super) fn build(
    cfg: &RedisConfig,
    s: &Secrets,
    timeout: Duration,
) -> Result<Target, ClientError> {
    match cfg.deployment() {
        Deployment::Standalone(url) => standalone(cfg, url, s),
        Deployment::Sentinel(sc) => sentinel(cfg, sc, s),
        Deployment::Cluster(seeds) => cluster(cfg, seeds, s, timeout),
    }
}

/// The master `sc` names, through its sentinels (each with its own user and password).
fn sentinel(cfg: &RedisConfig, sc: &SentinelConfig, s: &Secrets) -> Result<Target, ClientError> {
    let nodes: Vec<ConnectionAddr> = sc.nodes.iter().map(|n| node(n, &cfg.tls)).collect();
    let mut b = SentinelClientBuilder::new(nodes, &sc.master, SentinelServerType::Master)
        .map_err(|e| bad("redis.sentinel", e))?;
    if cfg.tls.enabled {
        let mode = tls_mode(&cfg.tls);
        b = b
            .set_client_to_redis_tls_mode(mode)
            .set_client_to_sentinel_tls_mode(mode);
        if let Some(c) = certificates(s) {
            b = b
                .set_client_to_redis_certificates(c.clone())
                .set_client_to_sentinel_certificates(c);
        }
    }
    if let Some(u) = &cfg.username {
        b = b.set_client_to_redis_username(u);
    }
    if let Some(p) = &s.password {
        b = b.set_client_to_redis_password(p);
    }
    if let Some(u) = &sc.username {
        b = b.set_client_to_sentinel_username(u);
    }
    if let Some(p) = &s.sentinel_password {
        b = b.set_client_to_sentinel_password(p);
    }
    let client = b.build().map_err(|e| bad("redis.sentinel", e))?;
    Ok(Target::Sentinel(Box::new(client)))
}

/// A Redis Cluster, from its seeds.
fn cluster(
    cfg: &RedisConfig,
    seeds: &[String],
    s: &Secrets,
    timeout: Duration,
) -> Result<Target, ClientError> {
    let scheme = if cfg.tls.enabled { "rediss" } else { "redis" };
    let urls: Vec<String> = seeds.iter().map(|n| format!("{scheme}://{n}")).collect();
    let mut b = ClusterClientBuilder::new(urls)
        .connection_timeout(timeout)
        .response_timeout(timeout);
    if cfg.tls.enabled {
        b = b.tls(tls_mode(&cfg.tls));
        if let Some(c) = certificates(s) {
            b = b.certs(c);
        }
    }
    if let Some(u) = &cfg.username {
        b = b.username(u);
    }
    if let Some(p) = &s.password {
        b = b.password(p);
    }
    let client = b.build().map_err(|e| bad("redis.cluster", e))?;
    Ok(Target::Cluster(Box::new(client)))
}

fn standalone(cfg: &RedisConfig, url: &str, s: &Secrets) -> Result<Target, ClientError> {
    let info = url
        .into_connection_info()
        .map_err(|e| bad("redis.url", e))?;
    let addr = match info.addr().clone() {
        ConnectionAddr::TcpTls {
            host,
            port,
            tls_params,
            ..
        } => ConnectionAddr::TcpTls {
            host,
            port,
            insecure: cfg.tls.insecure_skip_verify,
            tls_params,
        },
        other => other,
    };
    let mut rs = info.redis_settings().clone();
    if let Some(u) = &cfg.username {
        rs = rs.set_username(u);
    }
    if let Some(p) = &s.password {
        rs = rs.set_password(p);
    }
    let info = info.set_addr(addr).set_redis_settings(rs);
    let client = match certificates(s) {
        Some(c) => redis::Client::build_with_tls(info, c),
        None => redis::Client::open(info),
    }
    .map_err(|e| bad("redis.tls", e))?;
    Ok(Target::Standalone(Box::new(client)))
}

/// A new connection, and under Sentinel the master's address (looked up again each time:
/// the Sentinels name it, and it must say it is the master).
pub(super) async fn connect(
    t: &mut Target,
    timeout: Duration,
) -> RedisResult<(Conn, Option<String>)> {
    let cfg = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    match t {
        Target::Standalone(c) => c
            .get_multiplexed_async_connection_with_config(&cfg)
            .await
            .map(|c| (Conn::Single(c), None)),
        Target::Sentinel(s) => {
            let client = s.async_get_client().await?;
            let addr = client.get_connection_info().addr().to_string();
            let c = client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await?;
            Ok((Conn::Single(c), Some(addr)))
        }
        Target::Cluster(c) => c
            .get_async_connection()
            .await
            .map(|c| (Conn::Cluster(c), None)),
    }
}
