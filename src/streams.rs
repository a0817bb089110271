//! The Redis Streams adapter: one pipelined snapshot per cycle, and the few writes the agent
//! makes — each claim, requeue and delete is one atomic Lua script, so a consumer's entries are
//! never taken by a race and a consumer holding entries is never deleted.
//!
//! Every call has a timeout (`redis.timeout`); a connection error drops the connection, and the
//! next call reconnects after an exponential backoff.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, IntoConnectionInfo, RedisError, RedisResult, Value};

use std::collections::BTreeMap;

use crate::config::{RedisConfig, redact_url};
use crate::model::{GroupData, GroupKey, PendingEntry, RedisSnapshot, ScanReply, StreamInfo};
use crate::policy::plan::{FetchPlan, GroupFetch, StreamInfoNeed};
use crate::xinfo;

/// What one claim or requeue call should take on the server.
pub const CALL_TARGET: Duration = Duration::from_millis(1);
/// Claim or requeue calls sent in one round trip: two keep the server busy while the client
/// reads a reply, and hold it for at most two calls' time.
pub const PER_TRIP: usize = 2;
/// Chunk sizes (entries per call) the adaptation stays within.
pub const CHUNK_MIN: usize = 10;
/// See [`CHUNK_MIN`].
pub const CHUNK_MAX: usize = 2000;
/// The chunk size a connection starts with.
const CHUNK_START: usize = 100;

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
/// entries that consumer holds at this instant are taken. Returns `{claimed, seen}`: on
/// Redis 7.0+ XCLAIM drops entries no longer in the stream from the list instead of claiming
/// them, so `seen - claimed` were ghosts.
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
/// original ID in a field) and acknowledges each original only after its copy was added. An
/// entry no longer in the stream (a ghost: deleted or trimmed while pending) has no data to
/// lose: it is acknowledged so it leaves the list. Returns `{moved, seen}`; `seen - moved`
/// were ghosts.
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
    moved = moved + 1
  end
  redis.call('XACK', KEYS[1], ARGV[1], id)
end
return {moved, #p}
"#;

/// Deletes a consumer only if it holds no pending entry and has been idle ARGV[3] ms.
/// Returns the DELCONSUMER reply (always 0), or -1 gone, -2 holds entries, -3 not idle enough.
/// The idle time is only looked up when one is required (zombies): listing the consumers
/// costs time in proportion to their number.
const DELETE_LUA: &str = r#"
local p = redis.call('XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if #p > 0 then return -2 end
local min_idle = tonumber(ARGV[3])
if min_idle == 0 then
  return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
end
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
    /// Entries moved (claimed, or copied and acknowledged).
    pub moved: u64,
    /// Entries no longer in the stream that left the list (nothing to move).
    pub ghosts: u64,
    /// The consumer's list is empty now (false: the time budget ran out first).
    pub done: bool,
    /// Script calls made.
    pub calls: u64,
    /// The longest call, as the client saw it.
    pub longest: Duration,
}

pub struct Streams {
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
            chunk: CHUNK_START,
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

    /// Runs the cycle's [`FetchPlan`] in one pipelined round trip: per group `XINFO STREAM`
    /// (when the plan says so), `XINFO GROUPS`, `XINFO CONSUMERS`, the heads, the scan window
    /// and the re-checks; then `XINFO STREAM` and `XINFO GROUPS` of every pipeline stream and
    /// `GET` of every key. A second round trip only for groups whose lag has just turned null.
    pub async fn snapshot(&mut self, plan: &FetchPlan) -> Result<RedisSnapshot, StreamsError> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for g in &plan.groups {
            queue_group(&mut pipe, g);
        }
        for st in &plan.pipeline_streams {
            pipe.cmd("XINFO").arg("STREAM").arg(st);
            pipe.cmd("XINFO").arg("GROUPS").arg(st);
        }
        for k in &plan.keys {
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
        for g in &plan.groups {
            match take_group(g, &mut it) {
                Ok(GroupParts::Complete(d)) => {
                    out.groups.insert(g.key.clone(), Ok(d));
                }
                Ok(GroupParts::NeedStream(d)) => refetch.push((g.key.clone(), d)),
                Err(e) => {
                    out.groups.insert(g.key.clone(), Err(e));
                }
            }
        }
        for st in &plan.pipeline_streams {
            let (info, groups) = (it.next(), it.next());
            let r = match (info, groups) {
                (Some(Ok(i)), Some(Ok(g))) => xinfo::stream_info(&i)
                    .and_then(|i| Ok((i, xinfo::groups(&g)?)))
                    .map_err(|e| e.to_string()),
                (Some(Err(e)), _) | (_, Some(Err(e))) => Err(format!("{st}: {}", server_error(&e))),
                _ => Err("no reply".into()),
            };
            out.streams.insert(st.clone(), r);
        }
        for k in &plan.keys {
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
        if !refetch.is_empty() {
            self.complete_streams(refetch, &mut out).await?;
        }
        Ok(out)
    }

    /// The second round trip: `XINFO STREAM` of groups whose lag turned null this cycle.
    async fn complete_streams(
        &mut self,
        refetch: Vec<(GroupKey, GroupData)>,
        out: &mut RedisSnapshot,
    ) -> Result<(), StreamsError> {
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        for (k, _) in &refetch {
            pipe.cmd("XINFO").arg("STREAM").arg(&k.stream);
        }
        let replies: Vec<RedisResult<Value>> =
            self.run(async |c| pipe.query_async(c).await).await?;
        for ((k, mut d), r) in refetch.into_iter().zip(replies) {
            let r = match r {
                Ok(v) => xinfo::stream_info(&v)
                    .map(|stream| {
                        d.stream = stream;
                        d
                    })
                    .map_err(|e| e.to_string()),
                Err(e) => Err(format!("XINFO STREAM {}: {}", k.stream, server_error(&e))),
            };
            out.groups.insert(k, r);
        }
        Ok(())
    }

    /// Moves all of `from`'s pending entries to `to`, until `from` holds nothing or `deadline`
    /// passes. Entries no longer in the stream are dropped from the list by Redis 7.0+ and
    /// counted as ghosts (6.2 moves them along with the rest).
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

    /// Requeues all of `from`'s pending entries (see [`REQUEUE_LUA`]); ghosts are acknowledged.
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

    /// Runs `script` (KEYS[1] = stream, ARGV = `before`, chunk size, `after`; it returns
    /// `{moved, seen}`) [`PER_TRIP`] calls a round trip — few, so other clients are served
    /// between round trips — until the consumer's list is empty or `deadline` passes. The
    /// chunk size follows the measured time of each call ([`next_chunk`]), so no call holds
    /// the server long.
    async fn chunked(
        &mut self,
        script: &redis::Script,
        stream: &str,
        before: &[&str],
        after: &[&str],
        deadline: Instant,
    ) -> Result<Moved, StreamsError> {
        let mut total = Moved::default();
        // Load once; EVALSHA afterwards.
        let load = script.prepare_invoke();
        self.run(async |c| load.load_async(c).await.map(|_| ()))
            .await?;
        loop {
            let chunk = self.chunk;
            let mut pipe = redis::pipe();
            for _ in 0..PER_TRIP {
                pipe.cmd("EVALSHA")
                    .arg(script.get_hash())
                    .arg(1)
                    .arg(stream)
                    .arg(before)
                    .arg(chunk)
                    .arg(after);
            }
            let t = Instant::now();
            let replies: Vec<(u64, u64)> = self.run(async |c| pipe.query_async(c).await).await?;
            let per_call = t.elapsed() / PER_TRIP as u32;
            total.calls += PER_TRIP as u64;
            total.longest = total.longest.max(per_call);
            self.chunk = next_chunk(chunk, per_call);
            for (moved, seen) in replies {
                total.moved += moved;
                total.ghosts += seen.saturating_sub(moved);
                total.done |= seen < chunk as u64;
            }
            if total.done || Instant::now() >= deadline {
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
    NeedStream(GroupData),
}

/// Queues one group's commands in plan order.
fn queue_group(pipe: &mut redis::Pipeline, g: &GroupFetch) {
    let k = &g.key;
    if g.stream_info == StreamInfoNeed::Always {
        pipe.cmd("XINFO").arg("STREAM").arg(&k.stream);
    }
    pipe.cmd("XINFO").arg("GROUPS").arg(&k.stream);
    pipe.cmd("XINFO")
        .arg("CONSUMERS")
        .arg(&k.stream)
        .arg(&k.group);
    for c in &g.heads {
        pipe.cmd("XPENDING")
            .arg(&k.stream)
            .arg(&k.group)
            .arg("-")
            .arg("+")
            .arg(1)
            .arg(c);
    }
    if let Some(s) = &g.scan {
        let start = s.after.map_or("-".to_string(), |id| format!("({id}"));
        pipe.cmd("XPENDING")
            .arg(&k.stream)
            .arg(&k.group)
            .arg(start)
            .arg("+")
            .arg(s.count);
    }
    for id in &g.recheck {
        let id = id.to_string();
        pipe.cmd("XPENDING")
            .arg(&k.stream)
            .arg(&k.group)
            .arg(&id)
            .arg(&id)
            .arg(1);
    }
}

type Replies = std::vec::IntoIter<RedisResult<Value>>;

/// Takes one group's replies in plan order; any error makes the group's error, naming what
/// was asked.
fn take_group(g: &GroupFetch, it: &mut Replies) -> Result<GroupParts, String> {
    let k = &g.key;
    let mut take = |what: &str| -> Result<Value, String> {
        match it.next() {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(format!("{what} {}: {}", k.stream, server_error(&e))),
            None => Err(format!("{what}: no reply")),
        }
    };
    // Take every reply of the group first, so an error leaves the others in step.
    let s = (g.stream_info == StreamInfoNeed::Always).then(|| take("XINFO STREAM"));
    let gr = take("XINFO GROUPS");
    let c = take("XINFO CONSUMERS");
    let heads: Vec<(String, Result<Value, String>)> = g
        .heads
        .iter()
        .map(|name| (name.clone(), take("XPENDING (oldest entry)")))
        .collect();
    let scan = g.scan.map(|s| (s, take("XPENDING (scan)")));
    let rechecks: Vec<Result<Value, String>> = g
        .recheck
        .iter()
        .map(|_| take("XPENDING (re-check)"))
        .collect();
    let stream = match s {
        Some(r) => Some(xinfo::stream_info(&r?).map_err(|e| e.to_string())?),
        None => None,
    };
    let groups = xinfo::groups(&gr?).map_err(|e| e.to_string())?;
    let group = groups
        .into_iter()
        .find(|x| x.name == k.group)
        .ok_or_else(|| {
            format!(
                "NOGROUP: stream {} has no consumer group {}",
                k.stream, k.group
            )
        })?;
    let consumers = xinfo::consumers(&c?).map_err(|e| e.to_string())?;
    let pending = |v: Result<Value, String>| -> Result<Vec<PendingEntry>, String> {
        xinfo::pending_entries(&v?).map_err(|e| e.to_string())
    };
    let mut d = GroupData {
        stream: stream.clone().unwrap_or(StreamInfo {
            length: 0,
            last_generated_id: group.last_delivered_id,
            entries_added: None,
        }),
        heads: BTreeMap::new(),
        scan: None,
        rechecked: None,
        group,
        consumers,
    };
    for (name, v) in heads {
        d.heads.insert(name, pending(v)?.into_iter().next());
    }
    if let Some((s, v)) = scan {
        d.scan = Some(ScanReply {
            after: s.after,
            count: s.count,
            entries: pending(v)?,
        });
    }
    if g.scan.is_some() {
        let mut still = Vec::new();
        for v in rechecks {
            still.extend(pending(v)?);
        }
        d.rechecked = Some(still);
    }
    match (stream, d.group.lag) {
        (Some(_), _) => Ok(GroupParts::Complete(d)),
        // Known lag: what the policy and the metrics need follows from the group alone.
        (None, Some(lag)) => {
            d.stream.entries_added = d.group.entries_read.map(|r| r.saturating_add(lag));
            Ok(GroupParts::Complete(d))
        }
        (None, None) => Ok(GroupParts::NeedStream(d)),
    }
}

/// The chunk size for the next claim or requeue call, from how long the last one took: it
/// aims at [`CALL_TARGET`] per call (well under the 5 ms no command of ours may reach), grows
/// at most twofold a step, and stays within [`CHUNK_MIN`]..=[`CHUNK_MAX`].
pub fn next_chunk(current: usize, took: Duration) -> usize {
    let took_us = took.as_micros().max(1) as f64;
    let target_us = CALL_TARGET.as_micros() as f64;
    let ideal = (current as f64 * target_us / took_us).round();
    let capped = ideal.min(current as f64 * 2.0);
    (capped as usize).clamp(CHUNK_MIN, CHUNK_MAX)
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
    let Some(p) = candidates.first() else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(p).map_err(|e| {
        format!(
            "redis.password_file {}: {}",
            p.display(),
            crate::config::read_error_reason(p, &e)
        )
    })?;
    let pw = text.trim_end_matches(['\n', '\r']);
    if pw.is_empty() {
        return Err(format!(
            "redis.password_file {}: the file is empty; expected the password",
            p.display()
        ));
    }
    Ok(Some(pw.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_follow_the_measured_call_time() {
        let ms = Duration::from_millis;
        let us = Duration::from_micros;
        for (current, took, want) in [
            (100, ms(1), 100),              // on target: unchanged
            (100, us(500), 200),            // twice as fast: twice as many
            (100, us(100), 200),            // ten times as fast: at most twofold a step
            (1000, ms(12), 83),             // far too slow: shrinks at once
            (100, ms(50), CHUNK_MIN),       // a stall: never below the floor
            (CHUNK_MAX, us(10), CHUNK_MAX), // never above the ceiling
            (100, Duration::ZERO, 200),     // a zero reading is no division by zero
        ] {
            assert_eq!(next_chunk(current, took), want, "{current} in {took:?}");
        }
    }
}
