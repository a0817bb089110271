//! The Redis adapter: one client of one deployment ([`target`]: a server, a Sentinel
//! master, a cluster), every call with a timeout (`redis.timeout`); a connection error drops
//! the connection and the next call reconnects after an exponential backoff (and, under
//! Sentinel, finds the master again). It runs the policy's plan ([`snapshot`]) and the agent's
//! few writes ([`claims`]), and decides nothing.

pub mod claims;
pub mod scripts;
pub mod snapshot;
pub mod target;
pub mod xinfo;

use std::time::{Duration, Instant};

use redis::{RedisError, RedisResult, Value};

use crate::config::{RedisConfig, Secrets};
use crate::model::ReadError;

pub use target::Conn;

pub use claims::{Aside, DeleteOutcome, Moved};
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

/// A client of one Redis deployment.
pub struct RedisClient {
    /// Entries per claim or requeue call, adapted to the measured call time.
    chunk: usize,
    /// Requests sent (a pipeline is one): the agent's own measure of round trips.
    pub round_trips: u64,
    target: target::Target,
    /// The deployment, secrets masked, for messages.
    describe: String,
    /// The CA file the server is verified against, for messages.
    ca_file: Option<std::path::PathBuf>,
    timeout: Duration,
    conn: Option<Conn>,
    next_attempt: Option<Instant>,
    backoff: Duration,
    scripts: scripts::Scripts,
    /// Set by a snapshot: until the next one, calls go only through the connection it read
    /// from. Actions never reach a server (a new master, a restarted one) the cycle did not
    /// look at.
    pinned: bool,
    /// Under Sentinel: the master's address at the last connection.
    master: Option<String>,
}

/// The recovery lease a claim, requeue or delete of another host's consumer runs under: the
/// fenced script checks the lease still has `value`, and extends it by `ms`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    /// The lease's key.
    pub lease: String,
    /// Its value when taken (this host's name and the fencing token).
    pub value: String,
    /// How long it lives from each fenced call (ms).
    pub ms: u64,
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
    /// Whether a client of `[redis]` can be made (certificates and keys parse, the deployment
    /// is one the crate can build), without one and without a word: the command that uses
    /// Redis then makes its own.
    pub fn check(cfg: &RedisConfig, secrets: &Secrets) -> Result<(), ClientError> {
        target::build(cfg, secrets, cfg.timeout.0).map(|_| ())
    }

    /// A client of the deployment `[redis]` describes; `secrets` were read from the files
    /// and credentials it names, never from a URL that is logged.
    pub fn new(cfg: &RedisConfig, secrets: &Secrets) -> Result<RedisClient, ClientError> {
        if cfg.tls.insecure_skip_verify {
            tracing::warn!(
                "redis.tls.insecure_skip_verify = true: the server's certificate and name are not checked; anyone on the path can read and change what the agent sees and does"
            );
        }
        Ok(RedisClient {
            chunk: claims::CHUNK_START,
            round_trips: 0,
            target: target::build(cfg, secrets, cfg.timeout.0)?,
            describe: cfg.describe(),
            ca_file: secrets.ca.as_ref().map(|(p, _)| p.clone()),
            timeout: cfg.timeout.0,
            conn: None,
            next_attempt: None,
            backoff: Duration::ZERO,
            scripts: scripts::Scripts::default(),
            pinned: false,
            master: None,
        })
    }

    /// The deployment, secrets masked.
    pub fn describe(&self) -> &str {
        &self.describe
    }

    /// The target is the master Sentinel names (every read checks it still is).
    pub(crate) fn is_sentinel(&self) -> bool {
        matches!(self.target, target::Target::Sentinel(_))
    }

    /// The target is a cluster (each group is read by its own single-slot pipeline).
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.target, target::Target::Cluster(_))
    }

    async fn conn(&mut self) -> Result<Conn, ClientError> {
        if let Some(c) = &self.conn {
            return Ok(c.clone());
        }
        if self.pinned {
            return Err(ClientError::Unreachable(format!(
                "the connection to {} this cycle read from was lost: nothing is done until the next look",
                self.describe
            )));
        }
        if let Some(t) = self.next_attempt
            && Instant::now() < t
        {
            return Err(ClientError::Unreachable(format!(
                "reconnecting to {} in {}ms",
                self.describe,
                (t - Instant::now()).as_millis()
            )));
        }
        let r = tokio::time::timeout(
            self.timeout * 2,
            target::connect(&mut self.target, self.timeout),
        )
        .await;
        match r {
            Ok(Ok((c, master))) => {
                self.note_master(master);
                self.name(&c).await;
                self.conn = Some(c.clone());
                self.backoff = Duration::ZERO;
                self.next_attempt = None;
                Ok(c)
            }
            Ok(Err(e)) => {
                let e = self.explain(classify(e));
                Err(self.failed(e))
            }
            Err(_) => Err(self.failed(ClientError::Unreachable(format!(
                "connecting to {} timed out",
                self.describe
            )))),
        }
    }

    /// Logs where the Sentinels' master is when it is first found (debug) and when it moved.
    fn note_master(&mut self, master: Option<String>) {
        if master.is_none() || master == self.master {
            return;
        }
        let now = master.as_deref().unwrap_or_default();
        match &self.master {
            Some(was) => tracing::warn!(
                "redis: {} is now served by {now} (was {was}): a failover happened",
                self.describe
            ),
            None => tracing::debug!("redis: {} is served by {now}", self.describe),
        }
        self.master = master;
    }

    /// Names the connection, so that SLOWLOG and CLIENT LIST tell the agent's calls apart
    /// (a cluster's connections are the crate's own).
    async fn name(&self, c: &Conn) {
        if let Conn::Single(c) = c {
            let mut c = c.clone();
            let mut cmd = redis::cmd("CLIENT");
            cmd.arg("SETNAME").arg("quantum-watchdog");
            let _ = tokio::time::timeout(self.timeout, cmd.query_async::<Value>(&mut c)).await;
        }
    }

    /// A TLS failure says which setting it concerns: the CA file (or the system's roots) the
    /// server's certificate was checked against, or the client certificate.
    fn explain(&self, e: ClientError) -> ClientError {
        let ClientError::Unreachable(m) = &e else {
            return e;
        };
        let has = |words: &[&str]| words.iter().any(|w| m.contains(w));
        let hint = if has(&["CertificateRequired"]) {
            "the server requires a client certificate: set redis.tls.cert_file and key_file"
                .to_string()
        } else if has(&[
            "BadCertificate",
            "UnknownCA",
            "CertificateUnknown",
            "DecryptError",
        ]) {
            "the server did not accept the client certificate of redis.tls.cert_file".to_string()
        } else if has(&["NotValidForName", "not valid for name"]) {
            "connect by a name the server's certificate lists".to_string()
        } else if has(&["certificate", "UnknownIssuer", "handshake"]) {
            match &self.ca_file {
                Some(ca) => format!(
                    "the server's certificate was checked against redis.tls.ca_file {}",
                    ca.display()
                ),
                None => "the server's certificate was checked against the system's roots; set redis.tls.ca_file for a private CA".to_string(),
            }
        } else {
            return e;
        };
        ClientError::Unreachable(format!("{m} ({hint})"))
    }

    /// A connection is open (it may turn out closed at the next call).
    fn has_connection(&self) -> bool {
        self.conn.is_some()
    }

    /// The next call may connect at once, whatever the backoff says.
    fn retry_now(&mut self) {
        self.next_attempt = None;
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
        F: AsyncFnOnce(&mut Conn) -> RedisResult<T>,
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
