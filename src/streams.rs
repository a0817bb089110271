//! The Redis Streams adapter: one pipelined snapshot per cycle, and the few writes the agent
//! makes — each claim, requeue and delete is one atomic Lua script, so a consumer's entries are
//! never taken by a race and a consumer holding entries is never deleted.
//!
//! Every call has a timeout (`redis.timeout`); a connection error drops the connection, and the
//! next call reconnects after an exponential backoff.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, RedisError, RedisResult, Value};

use crate::config::{Config, RedisConfig, redact_url};
use crate::model::{GroupData, GroupKey, RedisSnapshot, StreamInfo};
use crate::policy::group_bindings;
use crate::xinfo;

/// How many of a group's oldest pending entries each snapshot looks at for poison entries.
const OLDEST_PENDING: usize = 10;

/// Moves one entry to the dead-letter stream KEYS[2] if (checked atomically) it is still
/// pending in group ARGV[1] with at least ARGV[3] deliveries: XADD a copy with its original ID,
/// group, consumer and delivery count, then XACK the original. 1 moved, 0 gone, -1 not due.
const DEAD_LETTER_LUA: &str = r#"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 then return 0 end
local e = p[1]
if tonumber(e[4]) < tonumber(ARGV[3]) then return -1 end
local f = {'original-id', ARGV[2], 'group', ARGV[1], 'consumer', e[2], 'deliveries', tostring(e[4])}
local r = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if #r == 1 and r[1][2] then
  for _, v in ipairs(r[1][2]) do f[#f + 1] = v end
end
redis.call('XADD', KEYS[2], '*', unpack(f))
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
return 1
"#;

/// Field that `requeue` adds to the copy: the ID of the original entry.
pub const REQUEUED_FROM_FIELD: &str = "quantum-watchdog-requeued-from";

/// Claims up to ARGV[4] of one consumer's pending entries to another, atomically: only the
/// entries that consumer holds at this instant are taken.
const CLAIM_LUA: &str = r#"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', tonumber(ARGV[4]), ARGV[2])
if #p == 0 then return {0, 0} end
local args = {'XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0}
for _, e in ipairs(p) do args[#args + 1] = e[1] end
args[#args + 1] = 'JUSTID'
local claimed = redis.call(unpack(args))
return {#claimed, #p}
"#;

/// Copies up to ARGV[3] of one consumer's pending entries to the stream's end (with the
/// original ID in a field) and acknowledges each original only after its copy was added.
const REQUEUE_LUA: &str = r#"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', tonumber(ARGV[3]), ARGV[2])
local moved = 0
for _, e in ipairs(p) do
  local id = e[1]
  local r = redis.call('XRANGE', KEYS[1], id, id)
  if #r == 1 and r[1][2] then
    local f = r[1][2]
    f[#f + 1] = ARGV[4]
    f[#f + 1] = id
    redis.call('XADD', KEYS[1], '*', unpack(f))
    redis.call('XACK', KEYS[1], ARGV[1], id)
    moved = moved + 1
  end
end
return {moved, #p}
"#;

/// Deletes a consumer only if it holds no pending entry and has been idle ARGV[3] ms.
/// Returns the DELCONSUMER reply (always 0), or -1 gone, -2 holds entries, -3 not idle enough.
const DELETE_LUA: &str = r#"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p > 0 then return -2 end
local min_idle = tonumber(ARGV[3])
local found = false
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local name, idle
  for i = 1, #c, 2 do
    if c[i] == 'name' then name = c[i + 1] elseif c[i] == 'idle' then idle = c[i + 1] end
  end
  if name == ARGV[2] then
    found = true
    if idle < min_idle then return -3 end
  end
end
if not found then return -1 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
"#;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamsError {
    /// Connection refused, timed out, dropped: nothing can be seen.
    #[error("redis unreachable: {0}")]
    Unreachable(String),
    /// The server answered with an error (NOGROUP, WRONGTYPE, NOPERM, …).
    #[error("redis: {0}")]
    Command(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Deleted; DELCONSUMER's count of entries it held (0, checked in the same script).
    Deleted(u64),
    Gone,
    KeptHoldsPending,
    KeptNotIdle,
}

/// What a claim or requeue moved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Moved {
    pub moved: u64,
    /// Entries seen in the consumer's list that could not be moved (deleted from the stream).
    pub skipped: u64,
    /// The consumer's list is empty now (false: the time budget ran out first).
    pub done: bool,
}

pub struct Streams {
    /// Groups whose last reply had a non-null lag (no XINFO STREAM needed for them).
    lag_known: std::collections::HashSet<GroupKey>,
    /// Groups that held no pending entry at the last look.
    quiet: std::collections::HashSet<GroupKey>,
    /// Requests sent (a pipeline is one): the agent's own measure of round trips.
    pub round_trips: u64,
    client: redis::Client,
    url: String,
    timeout: Duration,
    conn: Option<MultiplexedConnection>,
    next_attempt: Option<Instant>,
    backoff: Duration,
    claim: redis::Script,
    requeue: redis::Script,
    delete: redis::Script,
    dead_letter: redis::Script,
}

fn is_unreachable(e: &RedisError) -> bool {
    e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal()
}

fn classify(e: RedisError) -> StreamsError {
    if is_unreachable(&e) {
        StreamsError::Unreachable(e.to_string())
    } else {
        StreamsError::Command(e.to_string())
    }
}

impl Streams {
    /// `password` comes from `redis.password_file` or the credentials directory, never the URL log.
    pub fn new(cfg: &RedisConfig, password: Option<String>) -> Result<Streams, StreamsError> {
        let mut info = cfg.url.as_str().into_connection_info().map_err(|e| {
            StreamsError::Command(format!("bad redis.url {}: {e}", redact_url(&cfg.url)))
        })?;
        if let Some(pw) = password {
            let rs = info
                .redis_settings()
                .clone()
                .set_password(pw.trim_end_matches(['\n', '\r']));
            info = info.set_redis_settings(rs);
        }
        let client = redis::Client::open(info).map_err(|e| StreamsError::Command(e.to_string()))?;
        Ok(Streams {
            lag_known: Default::default(),
            quiet: Default::default(),
            round_trips: 0,
            client,
            url: redact_url(&cfg.url),
            timeout: cfg.timeout.0,
            conn: None,
            next_attempt: None,
            backoff: Duration::ZERO,
            claim: redis::Script::new(CLAIM_LUA),
            requeue: redis::Script::new(REQUEUE_LUA),
            delete: redis::Script::new(DELETE_LUA),
            dead_letter: redis::Script::new(DEAD_LETTER_LUA),
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    async fn conn(&mut self) -> Result<MultiplexedConnection, StreamsError> {
        if let Some(c) = &self.conn {
            return Ok(c.clone());
        }
        if let Some(t) = self.next_attempt
            && Instant::now() < t
        {
            return Err(StreamsError::Unreachable(format!(
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
            Ok(Ok(c)) => {
                self.conn = Some(c.clone());
                self.backoff = Duration::ZERO;
                self.next_attempt = None;
                Ok(c)
            }
            Ok(Err(e)) => Err(self.failed(classify(e))),
            Err(_) => Err(self.failed(StreamsError::Unreachable(format!(
                "connecting to {} timed out",
                self.url
            )))),
        }
    }

    /// Drops the connection after an unreachable error and schedules the next attempt.
    fn failed(&mut self, e: StreamsError) -> StreamsError {
        if matches!(e, StreamsError::Unreachable(_)) {
            self.conn = None;
            self.backoff =
                (self.backoff * 2).clamp(Duration::from_millis(500), Duration::from_secs(30));
            self.next_attempt = Some(Instant::now() + self.backoff);
        }
        e
    }

    async fn run<T, F>(&mut self, f: F) -> Result<T, StreamsError>
    where
        F: AsyncFnOnce(&mut MultiplexedConnection) -> RedisResult<T>,
    {
        let mut c = self.conn().await?;
        self.round_trips += 1;
        match tokio::time::timeout(self.timeout + Duration::from_millis(100), f(&mut c)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(self.failed(classify(e))),
            Err(_) => Err(self.failed(StreamsError::Unreachable("response timed out".into()))),
        }
    }

    /// PING: the snapshot's round trip when nothing is bound.
    pub async fn ping(&mut self) -> Result<(), StreamsError> {
        self.run(async |c| {
            redis::cmd("PING")
                .query_async::<String>(c)
                .await
                .map(|_| ())
        })
        .await
    }

    /// One pipelined round trip for all bindings: per distinct `(stream, group)` `XINFO STREAM`,
    /// `XINFO GROUPS`, `XINFO CONSUMERS`; per binding with a current consumer,
    /// `XPENDING … IDLE hung_after - + 1 consumer`. In the same round trip: `XINFO STREAM` and
    /// `XINFO GROUPS` of every pipeline stream, and `GET` of every key of `[[gauge]]`/`[[flag]]`
    /// (`keys`, placeholders expanded).
    pub async fn snapshot(
        &mut self,
        cfg: &Config,
        current: &[Option<String>],
        keys: &[String],
    ) -> Result<RedisSnapshot, StreamsError> {
        let groups = group_bindings(cfg);
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let group_keys: Vec<&GroupKey> = groups.keys().collect();
        // XINFO STREAM only where the group's lag was null (or not seen yet): otherwise lag
        // answers "work waiting" and entries-added = entries-read + lag.
        let with_stream: Vec<bool> = group_keys
            .iter()
            .map(|k| !self.lag_known.contains(*k))
            .collect();
        for (k, ws) in group_keys.iter().zip(&with_stream) {
            if *ws {
                pipe.cmd("XINFO").arg("STREAM").arg(&k.stream);
            }
            pipe.cmd("XINFO").arg("GROUPS").arg(&k.stream);
            pipe.cmd("XINFO")
                .arg("CONSUMERS")
                .arg(&k.stream)
                .arg(&k.group);
            if !self.quiet.contains(*k) {
                pipe.cmd("XPENDING")
                    .arg(&k.stream)
                    .arg(&k.group)
                    .arg("-")
                    .arg("+")
                    .arg(OLDEST_PENDING);
            }
        }
        // A group that held nothing at the last look can hold no entry idle for hung_after now
        // (interval < hung_after) and no poison yet: its XPENDINGs wait for a cycle that needs them.
        let quiet = std::mem::take(&mut self.quiet);
        let mut stale_idx = Vec::new();
        for (i, w) in cfg.watch.iter().enumerate() {
            let key = GroupKey {
                stream: w.stream.clone(),
                group: w.group.clone(),
            };
            if quiet.contains(&key) {
                continue;
            }
            if let Some(Some(c)) = current.get(i) {
                pipe.cmd("XPENDING")
                    .arg(&w.stream)
                    .arg(&w.group)
                    .arg("IDLE")
                    .arg(w.params.hung_after.as_millis())
                    .arg("-")
                    .arg("+")
                    .arg(1)
                    .arg(c);
                stale_idx.push(i);
            }
        }
        let flow_streams = crate::pipeline::pipeline_streams(cfg);
        for st in &flow_streams {
            pipe.cmd("XINFO").arg("STREAM").arg(st);
            pipe.cmd("XINFO").arg("GROUPS").arg(st);
        }
        for k in keys {
            pipe.cmd("GET").arg(k);
        }
        let mut out = RedisSnapshot::default();
        if pipe.is_empty() {
            self.ping().await?;
            return Ok(out);
        }
        let replies: Vec<RedisResult<Value>> =
            self.run(async |c| pipe.query_async(c).await).await?;
        // A connection-level failure inside the pipeline fails the whole snapshot.
        if let Some(Err(e)) = replies
            .iter()
            .find(|r| r.as_ref().is_err_and(is_unreachable))
        {
            let e = StreamsError::Unreachable(e.to_string());
            return Err(self.failed(e));
        }
        let mut it = replies.into_iter();
        let mut refetch = Vec::new();
        for (k, ws) in group_keys.into_iter().zip(with_stream) {
            let s = if ws { it.next() } else { None };
            let (g, c) = (it.next(), it.next());
            let p = if quiet.contains(k) { None } else { it.next() };
            match group_data(k, s, g, c) {
                Ok(GroupParts::Complete(d)) => {
                    if d.group.lag.is_some() {
                        self.lag_known.insert(k.clone());
                    } else {
                        self.lag_known.remove(k);
                    }
                    if d.group.pending == 0 {
                        self.quiet.insert(k.clone());
                    }
                    out.groups.insert(k.clone(), Ok(d));
                }
                // The lag turned null since the last cycle: this group needs XINFO STREAM now.
                Ok(GroupParts::NeedStream(group, consumers)) => {
                    self.lag_known.remove(k);
                    refetch.push((k.clone(), group, consumers));
                }
                Err(e) => {
                    self.lag_known.remove(k);
                    out.groups.insert(k.clone(), Err(e));
                }
            }
            if let Some(Ok(v)) = p
                && let Ok(entries) = xinfo::pending_entries(&v)
            {
                out.oldest_pending.insert(k.clone(), entries);
            }
        }
        for i in stale_idx {
            let e = match it.next() {
                Some(Ok(v)) => xinfo::pending_entries(&v).ok().and_then(|mut v| v.pop()),
                _ => None,
            };
            out.stale.insert(i, e);
        }
        if !refetch.is_empty() {
            // Rare: a second round trip, only for groups whose lag has just become null.
            let mut pipe = redis::pipe();
            pipe.ignore_errors();
            for (k, ..) in &refetch {
                pipe.cmd("XINFO").arg("STREAM").arg(&k.stream);
            }
            let replies: Vec<RedisResult<Value>> =
                self.run(async |c| pipe.query_async(c).await).await?;
            for ((k, group, consumers), r) in refetch.into_iter().zip(replies) {
                let d = match r {
                    Ok(v) => xinfo::stream_info(&v)
                        .map(|stream| GroupData {
                            stream,
                            group,
                            consumers,
                        })
                        .map_err(|e| e.to_string()),
                    Err(e) => Err(format!("XINFO STREAM {}: {}", k.stream, server_error(&e))),
                };
                out.groups.insert(k, d);
            }
        }
        for st in flow_streams {
            let (info, groups) = (it.next(), it.next());
            let r = match (info, groups) {
                (Some(Ok(i)), Some(Ok(g))) => xinfo::stream_info(&i)
                    .and_then(|i| Ok((i, xinfo::groups(&g)?)))
                    .map_err(|e| e.to_string()),
                (Some(Err(e)), _) | (_, Some(Err(e))) => Err(format!("{st}: {}", server_error(&e))),
                _ => Err("no reply".into()),
            };
            out.streams.insert(st, r);
        }
        for k in keys {
            let v = match it.next() {
                Some(Ok(Value::Nil)) => Ok(None),
                Some(Ok(v)) => redis::from_redis_value::<String>(v)
                    .map(Some)
                    .map_err(|e| e.to_string()),
                Some(Err(e)) => Err(server_error(&e)),
                None => Err("no reply".into()),
            };
            out.keys.insert(k.clone(), v);
        }
        Ok(out)
    }

    /// Moves all of `from`'s pending entries to `to`, until `from` holds nothing or `deadline`
    /// passes.
    pub async fn claim_all(
        &mut self,
        stream: &str,
        group: &str,
        from: &str,
        to: &str,
        deadline: Instant,
    ) -> Result<Moved, StreamsError> {
        let script = self.claim.clone();
        self.chunked(&script, stream, &[group, from, to], &[], deadline)
            .await
    }

    /// Requeues all of `from`'s pending entries (see [`REQUEUE_LUA`]).
    pub async fn requeue_all(
        &mut self,
        stream: &str,
        group: &str,
        from: &str,
        deadline: Instant,
    ) -> Result<Moved, StreamsError> {
        let script = self.requeue.clone();
        self.chunked(
            &script,
            stream,
            &[group, from],
            &[REQUEUED_FROM_FIELD],
            deadline,
        )
        .await
    }

    /// Runs `script` (KEYS[1] = stream, ARGV = `before`, chunk size, `after`) until the
    /// consumer's list is empty or `deadline` passes; `PER_TRIP` invocations a round trip.
    async fn chunked(
        &mut self,
        script: &redis::Script,
        stream: &str,
        before: &[&str],
        after: &[&str],
        deadline: Instant,
    ) -> Result<Moved, StreamsError> {
        const CHUNK: usize = 1000;
        const PER_TRIP: usize = 8;
        let mut total = Moved::default();
        // Load once; EVALSHA in the pipeline afterwards.
        let load = script.prepare_invoke();
        self.run(async |c| load.load_async(c).await.map(|_| ()))
            .await?;
        loop {
            let mut pipe = redis::pipe();
            for _ in 0..PER_TRIP {
                pipe.cmd("EVALSHA")
                    .arg(script.get_hash())
                    .arg(1)
                    .arg(stream)
                    .arg(before)
                    .arg(CHUNK)
                    .arg(after);
            }
            let replies: Vec<(u64, u64)> = self.run(async |c| pipe.query_async(c).await).await?;
            for (moved, seen) in replies {
                total.moved += moved;
                total.skipped += seen - moved.min(seen);
                if seen == 0 || moved == 0 {
                    // Empty, or only entries that cannot be moved are left.
                    total.done = seen == 0;
                    return Ok(total);
                }
            }
            if Instant::now() >= deadline {
                return Ok(total);
            }
        }
    }

    /// Moves entry `id` to `<stream>:dead` (see [`DEAD_LETTER_LUA`]); `Ok(true)` if it moved.
    pub async fn dead_letter(
        &mut self,
        stream: &str,
        group: &str,
        id: &str,
        min_deliveries: u64,
    ) -> Result<bool, StreamsError> {
        let script = self.dead_letter.clone();
        let mut inv = script.prepare_invoke();
        inv.key(stream)
            .key(format!("{stream}:dead"))
            .arg(group)
            .arg(id)
            .arg(min_deliveries);
        let r: i64 = self.run(async |c| inv.invoke_async(c).await).await?;
        Ok(r == 1)
    }

    /// Check-and-delete in one script: never deletes a consumer that holds entries.
    pub async fn delete_consumer(
        &mut self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle_ms: u64,
    ) -> Result<DeleteOutcome, StreamsError> {
        let script = self.delete.clone();
        let mut inv = script.prepare_invoke();
        inv.key(stream).arg(group).arg(consumer).arg(min_idle_ms);
        let r: i64 = self.run(async |c| inv.invoke_async(c).await).await?;
        Ok(match r {
            -1 => DeleteOutcome::Gone,
            -2 => DeleteOutcome::KeptHoldsPending,
            -3 => DeleteOutcome::KeptNotIdle,
            n => DeleteOutcome::Deleted(n.max(0) as u64),
        })
    }
}

enum GroupParts {
    Complete(GroupData),
    /// Lag is null and XINFO STREAM was not asked: fetch it, then complete.
    NeedStream(crate::model::GroupInfo, Vec<crate::model::ConsumerInfo>),
}

fn group_data(
    k: &GroupKey,
    s: Option<RedisResult<Value>>,
    g: Option<RedisResult<Value>>,
    c: Option<RedisResult<Value>>,
) -> Result<GroupParts, String> {
    let take = |r: Option<RedisResult<Value>>, what: &str| -> Result<Value, String> {
        match r {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(format!("{what} {}: {}", k.stream, server_error(&e))),
            None => Err(format!("{what}: no reply")),
        }
    };
    let stream = match s {
        Some(r) => {
            Some(xinfo::stream_info(&take(Some(r), "XINFO STREAM")?).map_err(|e| e.to_string())?)
        }
        None => None,
    };
    let groups = xinfo::groups(&take(g, "XINFO GROUPS")?).map_err(|e| e.to_string())?;
    let group = groups
        .into_iter()
        .find(|x| x.name == k.group)
        .ok_or_else(|| {
            format!(
                "NOGROUP: stream {} has no consumer group {}",
                k.stream, k.group
            )
        })?;
    let consumers = xinfo::consumers(&take(c, "XINFO CONSUMERS")?).map_err(|e| e.to_string())?;
    let stream = match (stream, group.lag) {
        (Some(s), _) => s,
        // Known lag: what the policy and the metrics need follows from the group alone.
        (None, Some(lag)) => StreamInfo {
            length: 0,
            last_generated_id: group.last_delivered_id,
            entries_added: group.entries_read.map(|r| r + lag),
        },
        (None, None) => return Ok(GroupParts::NeedStream(group, consumers)),
    };
    Ok(GroupParts::Complete(GroupData {
        stream,
        group,
        consumers,
    }))
}

/// `NOGROUP …`, `ERR no such key`, `WRONGTYPE …`, `NOPERM …` as the server said it.
fn server_error(e: &RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        _ => e.to_string(),
    }
}

/// Reads the Redis password: `$CREDENTIALS_DIRECTORY/redis-password` (systemd
/// `LoadCredential=`) first, then `redis.password_file`. A file that exists but cannot be read
/// is an error naming its path and mode.
pub fn read_password(cfg: &RedisConfig) -> Result<Option<String>, String> {
    let mut candidates = Vec::new();
    if let Some(dir) = std::env::var_os("CREDENTIALS_DIRECTORY") {
        let p = std::path::Path::new(&dir).join("redis-password");
        if p.exists() {
            candidates.push(p);
        }
    }
    if let Some(p) = &cfg.password_file {
        candidates.push(p.clone());
    }
    match candidates.first() {
        None => Ok(None),
        Some(p) => std::fs::read_to_string(p)
            .map(|s| Some(s.trim_end_matches(['\n', '\r']).to_string()))
            .map_err(|e| {
                format!(
                    "redis.password_file {}: {}",
                    p.display(),
                    crate::config::read_error_reason(p, &e)
                )
            }),
    }
}
