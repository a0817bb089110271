//! The Redis adapter: one client with one multiplexed connection, every call with a timeout
//! (`redis.timeout`); a connection error drops the connection and the next call reconnects
//! after an exponential backoff. It runs the policy's plan ([`snapshot`]) and the agent's few
//! writes ([`claims`]), and decides nothing.

pub mod claims;
pub mod scripts;
pub mod snapshot;
pub mod xinfo;

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, RedisError, RedisResult, Value};

use crate::config::{RedisConfig, redact_url};
use crate::model::ReadError;

pub use claims::{DeleteOutcome, Moved};
pub use scripts::REQUEUED_FROM_FIELD;

/// Why a Redis call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// Connection refused, timed out, dropped: nothing can be seen.
    #[error("redis unreachable: {0}")]
    Unreachable(String),
    /// The server answered with an error (NOGROUP, WRONGTYPE, NOPERM, …).
    #[error("redis: {0}")]
    Command(String),
}

impl From<ClientError> for ReadError {
    fn from(e: ClientError) -> ReadError {
        match e {
            ClientError::Unreachable(_) => ReadError::Unreachable(e.to_string()),
            ClientError::Command(m) if m.contains("NOPERM") => ReadError::Denied(m),
            ClientError::Command(m) => ReadError::Server(m),
        }
    }
}

/// A client of one Redis server.
pub struct RedisClient {
    /// Entries per claim or requeue call, adapted to the measured call time.
    chunk: usize,
    /// Requests sent (a pipeline is one): the agent's own measure of round trips.
    pub round_trips: u64,
    client: redis::Client,
    url: String,
    timeout: Duration,
    conn: Option<MultiplexedConnection>,
    next_attempt: Option<Instant>,
    backoff: Duration,
    scripts: scripts::Scripts,
}

/// A connection-level failure: nothing was answered.
pub(crate) fn is_unreachable(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

fn classify(e: RedisError) -> ClientError {
    if is_unreachable(&e) {
        ClientError::Unreachable(e.to_string())
    } else {
        ClientError::Command(e.to_string())
    }
}

impl RedisClient {
    /// `password` comes from `redis.password_file` or the credentials directory, never the URL log.
    pub fn new(cfg: &RedisConfig, password: Option<String>) -> Result<RedisClient, ClientError> {
        let mut info = cfg.url.as_str().into_connection_info().map_err(|e| {
            ClientError::Command(format!("bad redis.url {}: {e}", redact_url(&cfg.url)))
        })?;
        if let Some(pw) = password {
            let rs = info
                .redis_settings()
                .clone()
                .set_password(pw.trim_end_matches(['\n', '\r']));
            info = info.set_redis_settings(rs);
        }
        let client = redis::Client::open(info).map_err(|e| ClientError::Command(e.to_string()))?;
        Ok(RedisClient {
            chunk: claims::CHUNK_START,
            round_trips: 0,
            client,
            url: redact_url(&cfg.url),
            timeout: cfg.timeout.0,
            conn: None,
            next_attempt: None,
            backoff: Duration::ZERO,
            scripts: scripts::Scripts::default(),
        })
    }

    /// The server's URL, password masked.
    pub fn url(&self) -> &str {
        &self.url
    }

    async fn conn(&mut self) -> Result<MultiplexedConnection, ClientError> {
        if let Some(c) = &self.conn {
            return Ok(c.clone());
        }
        if let Some(t) = self.next_attempt
            && Instant::now() < t
        {
            return Err(ClientError::Unreachable(format!(
                "reconnecting to {} in {}ms",
                self.url,
                (t - Instant::now()).as_millis()
            )));
        }
        let cfg = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout))
            .set_response_timeout(Some(self.timeout));
        let r = tokio::time::timeout(
            self.timeout * 2,
            self.client
                .get_multiplexed_async_connection_with_config(&cfg),
        )
        .await;
        match r {
            Ok(Ok(mut c)) => {
                // Named, so that SLOWLOG and CLIENT LIST tell the agent's calls apart.
                let _ = tokio::time::timeout(
                    self.timeout,
                    redis::cmd("CLIENT")
                        .arg("SETNAME")
                        .arg("quantum-watchdog")
                        .query_async::<Value>(&mut c),
                )
                .await;
                self.conn = Some(c.clone());
                self.backoff = Duration::ZERO;
                self.next_attempt = None;
                Ok(c)
            }
            Ok(Err(e)) => Err(self.failed(classify(e))),
            Err(_) => Err(self.failed(ClientError::Unreachable(format!(
                "connecting to {} timed out",
                self.url
            )))),
        }
    }

    /// Drops the connection after an unreachable error and schedules the next attempt.
    fn failed(&mut self, e: ClientError) -> ClientError {
        if matches!(e, ClientError::Unreachable(_)) {
            self.conn = None;
            self.backoff =
                (self.backoff * 2).clamp(Duration::from_millis(500), Duration::from_secs(30));
            self.next_attempt = Some(Instant::now() + self.backoff);
        }
        e
    }

    async fn run<T, F>(&mut self, f: F) -> Result<T, ClientError>
    where
        F: AsyncFnOnce(&mut MultiplexedConnection) -> RedisResult<T>,
    {
        let mut c = self.conn().await?;
        self.round_trips += 1;
        match tokio::time::timeout(self.timeout + Duration::from_millis(100), f(&mut c)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.failed(classify(e))),
            Err(_) => Err(self.failed(ClientError::Unreachable("response timed out".into()))),
        }
    }

    /// PING: the snapshot's round trip when nothing is bound.
    pub async fn ping(&mut self) -> Result<(), ClientError> {
        self.run(async |c| {
            redis::cmd("PING")
                .query_async::<String>(c)
                .await
                .map(|_| ())
        })
        .await
    }
}

/// `NOGROUP …`, `ERR no such key`, `WRONGTYPE …`, `NOPERM …` as the server said it.
/// The server's error for `what`: `NOPERM …` as denied, anything else as the server said it.
pub(crate) fn command_error(what: &str, e: &RedisError) -> ReadError {
    let m = format!("{what}: {}", server_error(e));
    if e.code() == Some("NOPERM") {
        ReadError::Denied(m)
    } else {
        ReadError::Server(m)
    }
}

pub(crate) fn server_error(e: &RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => e.to_string(),
    }
}
