//! The agent's writes: claims, requeues, dead-lettering and check-and-delete, each one Lua
//! script (see [`super::scripts`]); claims and requeues in chunks sized to the measured call
//! time, so no call holds the server long.

use std::time::{Duration, Instant};

use super::scripts::REQUEUED_FROM_FIELD;
use super::{ClientError, Fence, RedisClient};

/// What one claim or requeue call should take on the server.
pub const CALL_TARGET: Duration = Duration::from_millis(1);
/// Claim or requeue calls sent in one round trip: two keep the server busy while the client
/// reads a reply, and hold it for at most two calls' time.
pub const PER_TRIP: usize = 2;
/// Chunk sizes (entries per call) the adaptation stays within.
pub const CHUNK_MIN: usize = 10;
/// See [`CHUNK_MIN`].
pub const CHUNK_MAX: usize = 2000;
/// The chunk size a client starts with.
pub const CHUNK_START: usize = 100;
/// How long [`RedisClient::serves_writes`] waits for its answer (at most `redis.timeout`).
pub const PROBE_WAIT: Duration = Duration::from_millis(500);

/// What check-and-delete did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    /// Deleted; DELCONSUMER's count of entries it held (0, checked in the same script).
    Deleted(u64),
    /// There was no such consumer.
    Gone,
    /// Kept: it holds entries at this instant.
    KeptHoldsPending,
    /// Kept: it read within the idle time required (a zombie that came back).
    KeptNotIdle,
}

/// How an entry is moved aside (dead-lettered or quarantined).
pub struct Aside<'a> {
    /// It must have been delivered at least this often (0: any).
    pub min_deliveries: u64,
    /// It must be held by this consumer, if given.
    pub holder: Option<&'a str>,
    /// More fields for the copy (`crashes`, `exit-status`).
    pub fields: Vec<(&'a str, String)>,
}

/// One chunked script's keys and arguments besides the stream and the chunk size.
struct Call<'a> {
    stream: &'a str,
    /// The recovery lease it runs under, if any.
    fence: Option<&'a Fence>,
    /// Keys after the stream (and the lease, when fenced).
    keys: &'a [&'a str],
    /// Arguments before the chunk size.
    before: &'a [&'a str],
    /// Arguments after it.
    after: &'a [&'a str],
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

impl RedisClient {
    /// Moves all of `from`'s pending entries to `to`, until `from` holds nothing or `deadline`
    /// passes. Entries no longer in the stream are dropped from the list by Redis 7.0+ and
    /// counted as ghosts (6.2 moves them along with the rest).
    /// `to_active_ms`: when `to` last really read (server ms), for the claim's trace.
    pub async fn claim_all(
        &mut self,
        stream: &str,
        group: &str,
        (from, to): (&str, &str),
        to_active_ms: Option<u64>,
        (fence, deadline): (Option<&Fence>, Instant),
    ) -> Result<Moved, ClientError> {
        let script = pick(&self.scripts, fence, |s| &s.claim, |s| &s.claim_fenced);
        let trace = crate::config::claims_key(stream, group);
        let active = to_active_ms.map(|t| t.to_string()).unwrap_or_default();
        let call = Call {
            stream,
            fence,
            keys: &[&trace],
            before: &[group, from, to],
            after: &[&active],
        };
        self.chunked(&script, call, deadline).await
    }

    /// Requeues all of `from`'s pending entries (see [`REQUEUE_LUA`]); ghosts are acknowledged.
    pub async fn requeue_all(
        &mut self,
        stream: &str,
        group: &str,
        from: &str,
        (fence, deadline): (Option<&Fence>, Instant),
    ) -> Result<Moved, ClientError> {
        let script = pick(&self.scripts, fence, |s| &s.requeue, |s| &s.requeue_fenced);
        let call = Call {
            stream,
            fence,
            keys: &[],
            before: &[group, from],
            after: &[REQUEUED_FROM_FIELD],
        };
        self.chunked(&script, call, deadline).await
    }

    /// Runs `script` (KEYS = stream, the lease when fenced, `call.keys`; ARGV = `before`, the
    /// chunk size, `after`; it returns `{moved, seen}`) [`PER_TRIP`] calls a round trip — few,
    /// so other clients are served between round trips — until the consumer's list is empty
    /// or `deadline` passes. The chunk size follows the measured time of each call
    /// ([`next_chunk`]), so no call holds the server long.
    async fn chunked(
        &mut self,
        script: &redis::Script,
        call: Call<'_>,
        deadline: Instant,
    ) -> Result<Moved, ClientError> {
        let Call {
            stream,
            fence,
            keys,
            before,
            after,
        } = call;
        let mut total = Moved::default();
        // Load once; EVALSHA afterwards.
        let load = script.prepare_invoke();
        self.run(async |c| load.load_async(c).await.map(|_| ()))
            .await?;
        loop {
            let chunk = self.chunk;
            let mut pipe = redis::pipe();
            for _ in 0..PER_TRIP {
                let cmd = pipe.cmd("EVALSHA").arg(script.get_hash());
                match fence {
                    None => cmd.arg(1 + keys.len()).arg(stream).arg(keys),
                    Some(f) => cmd
                        .arg(2 + keys.len())
                        .arg(stream)
                        .arg(&f.lease)
                        .arg(keys)
                        .arg(&f.value)
                        .arg(f.ms),
                };
                cmd.arg(before).arg(chunk).arg(after);
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

    /// Moves entry `id` to the stream `dead` (see [`super::scripts::DEAD_LETTER_LUA`]); `Ok(true)` if it
    /// moved.
    /// `aside.holder`: only if that consumer holds it; `aside.fields`: more fields for the copy.
    pub async fn dead_letter(
        &mut self,
        stream: &str,
        dead: &str,
        group: &str,
        id: &str,
        aside: &Aside<'_>,
    ) -> Result<bool, ClientError> {
        let script = self.scripts.dead_letter.clone();
        let mut inv = script.prepare_invoke();
        inv.key(stream)
            .key(dead)
            .arg(group)
            .arg(id)
            .arg(aside.min_deliveries)
            .arg(aside.holder.unwrap_or(""));
        for (k, v) in &aside.fields {
            inv.arg(*k).arg(v);
        }
        let r: i64 = self.run(async |c| inv.invoke_async(c).await).await?;
        Ok(r == 1)
    }

    /// Whether the server of `stream` runs a script that may write within [`PROBE_WAIT`]
    /// ([`super::scripts::PROBE_LUA`], which writes nothing), on a connection of its own so
    /// that a held-back call blocks nothing else. `Ok(false)`: it holds writes back.
    pub async fn serves_writes(&mut self, stream: &str) -> Result<bool, ClientError> {
        let wait = self.timeout.min(PROBE_WAIT);
        let mut c = match tokio::time::timeout(
            self.timeout * 2,
            super::target::connect(&mut self.target, self.timeout),
        )
        .await
        {
            Ok(Ok((c, _))) => c,
            Ok(Err(e)) => return Err(super::classify(e)),
            Err(_) => return Err(ClientError::Unreachable("connecting timed out".into())),
        };
        let script = self.scripts.probe.clone();
        let mut inv = script.prepare_invoke();
        inv.key(stream);
        match tokio::time::timeout(wait, inv.invoke_async::<i64>(&mut c)).await {
            Ok(Ok(_)) => Ok(true),
            Ok(Err(e)) => Err(super::classify(e)),
            Err(_) => Ok(false),
        }
    }

    /// Check-and-delete in one script: never deletes a consumer that holds entries.
    pub async fn delete_consumer(
        &mut self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle_ms: u64,
        fence: Option<&Fence>,
    ) -> Result<DeleteOutcome, ClientError> {
        let script = pick(&self.scripts, fence, |s| &s.delete, |s| &s.delete_fenced);
        let mut inv = script.prepare_invoke();
        inv.key(stream);
        if let Some(f) = fence {
            inv.key(&f.lease).arg(&f.value).arg(f.ms);
        }
        inv.key(crate::config::claims_key(stream, group));
        inv.arg(group)
            .arg(consumer)
            .arg(min_idle_ms)
            .arg(super::scripts::DELETE_RECHECK_MAX);
        let r: i64 = self.run(async |c| inv.invoke_async(c).await).await?;
        Ok(match r {
            -1 => DeleteOutcome::Gone,
            -2 => DeleteOutcome::KeptHoldsPending,
            -3 => DeleteOutcome::KeptNotIdle,
            n => DeleteOutcome::Deleted(n.max(0) as u64),
        })
    }
}

/// The plain script, or its fenced variant under a recovery lease.
fn pick(
    scripts: &super::scripts::Scripts,
    fence: Option<&Fence>,
    plain: impl Fn(&super::scripts::Scripts) -> &redis::Script,
    fenced: impl Fn(&super::scripts::Scripts) -> &redis::Script,
) -> redis::Script {
    match fence {
        None => plain(scripts).clone(),
        Some(_) => fenced(scripts).clone(),
    }
}

impl RedisClient {
    /// Takes or extends the recovery lease of `(stream, group)` for `me`, `ms` long (see
    /// [`super::scripts::LEASE_LUA`]): its value, another host's if that one holds it.
    pub async fn take_lease(
        &mut self,
        stream: &str,
        group: &str,
        me: &str,
        ms: u64,
    ) -> Result<String, ClientError> {
        let script = self.scripts.lease.clone();
        let mut inv = script.prepare_invoke();
        inv.key(crate::config::FleetConfig::lease_key(stream, group))
            .key(crate::config::FleetConfig::fence_key(stream, group))
            .arg(me)
            .arg(ms);
        self.run(async |c| inv.invoke_async(c).await).await
    }

    /// What a wrapped unit's crash streak needs (`exec`): the oldest entry `consumer` holds,
    /// and `unit`'s record in the group's crash streaks (as written).
    pub async fn crash_look(
        &mut self,
        stream: &str,
        group: &str,
        consumer: &str,
        unit: &str,
    ) -> Result<(Option<crate::model::PendingEntry>, Option<String>), ClientError> {
        let mut pipe = redis::pipe();
        pipe.cmd("XPENDING")
            .arg(stream)
            .arg(group)
            .arg("-")
            .arg("+")
            .arg(1)
            .arg(consumer);
        pipe.cmd("HGET")
            .arg(crate::config::crashes_key(stream, group))
            .arg(unit);
        let (head, record): (redis::Value, Option<String>) =
            self.run(async |c| pipe.query_async(c).await).await?;
        let head = super::xinfo::pending_entries(&head)
            .map_err(|e| ClientError::Command(format!("XPENDING: {e}")))?;
        Ok((head.into_iter().next(), record))
    }

    /// Writes `unit`'s crash streak record (a day to live), or removes it (`None`).
    pub async fn note_crash(
        &mut self,
        stream: &str,
        group: &str,
        unit: &str,
        record: Option<&str>,
    ) -> Result<(), ClientError> {
        let key = crate::config::crashes_key(stream, group);
        let mut pipe = redis::pipe();
        match record {
            Some(r) => pipe
                .cmd("HSET")
                .arg(&key)
                .arg(unit)
                .arg(r)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(86_400_000)
                .ignore(),
            None => pipe.cmd("HDEL").arg(&key).arg(unit).ignore(),
        };
        self.run(async |c| pipe.query_async::<()>(c).await).await
    }

    /// A clean stop: removes this host's heartbeat and its name from the fleet (see
    /// [`super::scripts::LEAVE_LUA`]).
    pub async fn leave_fleet(&mut self, host: &str) -> Result<(), ClientError> {
        let script = redis::Script::new(super::scripts::LEAVE_LUA);
        let mut inv = script.prepare_invoke();
        inv.key(crate::config::FleetConfig::hosts_key())
            .key(crate::config::FleetConfig::heartbeat_key(host))
            .arg(host);
        self.run(async |c| inv.invoke_async::<i64>(c).await)
            .await
            .map(|_| ())
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
