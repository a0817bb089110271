//! Runs the policy's [`FetchPlan`] in one pipelined round trip (one per node on a cluster)
//! and parses the replies into the snapshot. Decides nothing: what to ask comes from the plan.

use std::collections::BTreeMap;

use redis::{RedisResult, Value};

use crate::config::FleetConfig;
use crate::model::fleet::{FleetView, Heartbeat, HostBeat};
use crate::model::plan::{FetchPlan, FleetPublish, GroupFetch, Scan, StreamInfoNeed};
use crate::model::{
    GroupData, GroupKey, PendingEntry, ReadError, RedisSnapshot, ScanReply, StreamInfo,
};

use super::{ClientError, RedisClient, command_error, is_unreachable, xinfo};

/// One thing the plan reads, and so one slot on a cluster.
#[derive(Clone, Copy)]
enum Part<'a> {
    Group(&'a GroupFetch),
    Stream(&'a str),
    Key(&'a str),
    Fleet(&'a FleetPublish),
}

fn parts(plan: &FetchPlan) -> Vec<Part<'_>> {
    plan.groups
        .iter()
        .map(Part::Group)
        .chain(plan.pipeline_streams.iter().map(|s| Part::Stream(s)))
        .chain(plan.keys.iter().map(|k| Part::Key(k)))
        .chain(plan.fleet.iter().map(Part::Fleet))
        .collect()
}

/// `plan` with every group's consumers to be read.
fn without_known(plan: &FetchPlan) -> FetchPlan {
    let mut p = plan.clone();
    for g in &mut p.groups {
        g.known = None;
    }
    p
}

/// One pipeline for `batch`, after `ROLE` when the master must be checked (Sentinel).
fn pipeline_of(batch: &[Part<'_>], role: bool) -> redis::Pipeline {
    let mut pipe = redis::pipe();
    pipe.ignore_errors();
    if role {
        pipe.cmd("ROLE");
    }
    for p in batch {
        match p {
            Part::Group(g) => queue_group(&mut pipe, g),
            Part::Stream(st) => {
                pipe.cmd("XINFO").arg("STREAM").arg(*st);
                pipe.cmd("XINFO").arg("GROUPS").arg(*st);
            }
            Part::Key(k) => {
                pipe.cmd("GET").arg(*k);
            }
            Part::Fleet(f) => {
                pipe.cmd("EVAL")
                    .arg(super::scripts::FLEET_LUA)
                    .arg(3)
                    .arg(FleetConfig::hosts_key())
                    .arg(FleetConfig::heartbeat_key(&f.host))
                    .arg(FleetConfig::meta_key())
                    .arg(&f.host)
                    .arg(match (&f.payload, f.unchanged) {
                        (None, _) => "",
                        (Some(_), true) => "=",
                        (Some(p), false) => p.as_str(),
                    })
                    .arg(f.ttl_ms)
                    .arg(f.forget_ms)
                    .arg(FleetConfig::heartbeat_key(""))
                    .arg(super::scripts::HEARTBEAT_MAX)
                    .arg(format!("{} {}", f.instance, f.as_of_ms))
                    .arg(f.since_ms)
                    .arg(format!("{:016x}", f.digest));
            }
        }
    }
    pipe
}

type BatchReply = Result<Vec<RedisResult<Value>>, ClientError>;

impl RedisClient {
    /// Runs the cycle's [`FetchPlan`]: per group `XINFO STREAM` (when the plan says so),
    /// `XINFO GROUPS`, `XINFO CONSUMERS` (unless the plan knows them and the group's entry is
    /// unchanged), the heads, the scan window and the re-checks; then
    /// `XINFO STREAM` and `XINFO GROUPS` of every pipeline stream and `GET` of every key. In
    /// one pipelined round trip — on a cluster, one single-slot pipeline per group, stream
    /// and key, all sent at once and routed by the crate (which follows MOVED and ASK). Under
    /// Sentinel the pipeline starts with `ROLE`: a server that is no longer the master is
    /// read nothing from. A second round trip only for groups whose lag has just turned null
    /// or whose known consumers no longer stand.
    ///
    /// A connection that turns out closed (a failover, a server restart, an idle timeout) is
    /// replaced at once and the look made again on the new one, so a switch of master costs
    /// one cycle, not two; a server that does not answer in time is not asked again.
    pub async fn snapshot(&mut self, plan: &FetchPlan) -> Result<RedisSnapshot, ClientError> {
        let had = self.has_connection();
        let t = std::time::Instant::now();
        match self.read(plan, had).await {
            Err(ClientError::Unreachable(e)) if had && t.elapsed() < self.timeout / 2 => {
                tracing::debug!("redis: {e}; connecting again at once");
                self.retry_now();
                self.read(plan, false).await
            }
            r => r,
        }
    }

    /// `known`: the plan's known consumers may stand (the connection is the one they were
    /// read on); on a new connection — a restart of the server, a failover, a new `[redis]` —
    /// every group's consumers are read.
    async fn read(&mut self, plan: &FetchPlan, known: bool) -> Result<RedisSnapshot, ClientError> {
        let unknown;
        let plan = if known || plan.groups.iter().all(|g| g.known.is_none()) {
            plan
        } else {
            unknown = without_known(plan);
            &unknown
        };
        let parts = parts(plan);
        let mut out = RedisSnapshot::default();
        self.pinned = false;
        if parts.is_empty() {
            self.ping().await?;
            self.pinned = true;
            return Ok(out);
        }
        let batches: Vec<Vec<Part<'_>>> = if self.is_cluster() {
            parts.into_iter().map(|p| vec![p]).collect()
        } else {
            vec![parts]
        };
        let role = self.is_sentinel();
        let pipes = batches.iter().map(|b| pipeline_of(b, role)).collect();
        let replies = self.query_batches(pipes).await?;
        self.pinned = true;
        let mut refetch = Vec::new();
        for (batch, reply) in batches.iter().zip(replies) {
            let mut it = match reply {
                Ok(r) => r.into_iter(),
                Err(e) => {
                    for p in batch {
                        put_error(&mut out, p, ReadError::from(e.clone()));
                    }
                    continue;
                }
            };
            if role {
                self.check_master(it.next())?;
            }
            for p in batch {
                take_part(p, &mut it, &mut out, &mut refetch);
            }
        }
        if !refetch.is_empty() {
            self.complete_groups(refetch, &mut out).await?;
        }
        Ok(out)
    }

    /// Sends the pipelines at once on one connection. Fails as a whole when nothing could be
    /// read (or, on one server, when the connection failed); on a cluster a node that fails
    /// fails only its own batches.
    async fn query_batches(
        &mut self,
        pipes: Vec<redis::Pipeline>,
    ) -> Result<Vec<BatchReply>, ClientError> {
        let conn = self.conn().await?;
        self.round_trips += 1;
        let wait = self.timeout + std::time::Duration::from_millis(100);
        let asks = pipes.iter().map(|p| {
            let mut c = conn.clone();
            async move {
                match tokio::time::timeout(wait, p.query_async::<Vec<RedisResult<Value>>>(&mut c))
                    .await
                {
                    Err(_) => Err(ClientError::Unreachable("response timed out".into())),
                    Ok(Err(e)) => Err(super::classify(e)),
                    // A connection-level failure inside the pipeline fails the pipeline.
                    Ok(Ok(v)) => match v.iter().find(|r| r.as_ref().is_err_and(is_unreachable)) {
                        Some(Err(e)) => Err(ClientError::Unreachable(e.to_string())),
                        _ => Ok(v),
                    },
                }
            }
        });
        let replies: Vec<BatchReply> = futures_util::future::join_all(asks).await;
        let unreachable = |r: &BatchReply| matches!(r, Err(ClientError::Unreachable(_)));
        let fatal = if self.is_cluster() {
            replies.iter().all(unreachable)
        } else {
            replies.iter().any(unreachable)
        };
        if fatal && let Some(Err(e)) = replies.iter().find(|r| unreachable(r)) {
            return Err(self.failed(e.clone()));
        }
        Ok(replies)
    }

    /// Under Sentinel: the server must still be the master, or nothing it said is used (a
    /// failover demoted it); the connection is dropped and the master looked up again.
    fn check_master(&mut self, role: Option<RedisResult<Value>>) -> Result<(), ClientError> {
        let role = match role {
            Some(Ok(Value::Array(v))) => v.first().and_then(|r| match r {
                Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
                Value::SimpleString(s) => Some(s.clone()),
                _ => None,
            }),
            _ => None,
        };
        if role.as_deref() == Some("master") {
            return Ok(());
        }
        let e = ClientError::Unreachable(format!(
            "the server Sentinel named is no longer the master (ROLE {}): a failover is under way; nothing read from it is used",
            role.as_deref().unwrap_or("unknown")
        ));
        Err(self.failed(e))
    }

    /// The second round trip, for the groups that need it alone: `XINFO STREAM` of those
    /// whose lag turned null in this look, `XINFO CONSUMERS` of quiet ones that changed.
    async fn complete_groups(
        &mut self,
        refetch: Vec<(GroupKey, Incomplete)>,
        out: &mut RedisSnapshot,
    ) -> Result<(), ClientError> {
        let role = self.is_sentinel();
        let pipes = refetch
            .iter()
            .map(|(k, inc)| {
                let mut pipe = redis::pipe();
                pipe.ignore_errors();
                if role {
                    pipe.cmd("ROLE");
                }
                if inc.stream {
                    pipe.cmd("XINFO").arg("STREAM").arg(&k.stream);
                }
                if inc.consumers {
                    queue_consumers(&mut pipe, k);
                }
                pipe
            })
            .collect();
        tracing::debug!("redis: a second round trip for {} group(s)", refetch.len());
        // A failure here fails these groups only: the others were read.
        let replies = match self.query_batches(pipes).await {
            Ok(r) => r,
            Err(e) => {
                for (k, _) in refetch {
                    out.groups.insert(k, Err(ReadError::from(e.clone())));
                }
                return Ok(());
            }
        };
        for ((k, inc), r) in refetch.into_iter().zip(replies) {
            let r = match r {
                Ok(mut v) if role => {
                    let first = (!v.is_empty()).then(|| v.remove(0));
                    self.check_master(first)?;
                    complete(&k, inc, v)
                }
                Ok(v) => complete(&k, inc, v),
                Err(e) => Err(ReadError::from(e)),
            };
            out.groups.insert(k, r);
        }
        Ok(())
    }
}

/// The lease value of a lease key that could not be read.
pub const UNREADABLE_LEASE: &str = "(unreadable)/0";

/// A group's recovery lease from `GET` and `PTTL` of its key. A key that cannot be read (of
/// another type) is a lease nobody here holds: no other host's consumer is recovered, the
/// group is judged as usual. A lease without a time to live is none of ours (every agent sets
/// one): it counts as free, and the next lease taken replaces it — a lease always expires.
fn lease(v: Result<Value, ReadError>, ttl: Result<Value, ReadError>) -> Option<String> {
    let value = v
        .ok()
        .and_then(|v| redis::from_redis_value::<Option<String>>(v).ok())
        .unwrap_or_else(|| Some(UNREADABLE_LEASE.to_string()))?;
    let forever = matches!(ttl, Ok(Value::Int(-1)));
    (!forever).then_some(value)
}

/// One part's error (its node could not be read).
fn put_error(out: &mut RedisSnapshot, p: &Part<'_>, e: ReadError) {
    match p {
        Part::Group(g) => {
            out.groups.insert(g.key.clone(), Err(e));
        }
        Part::Stream(st) => {
            out.streams.insert(st.to_string(), Err(e));
        }
        Part::Key(k) => {
            out.keys.insert(k.to_string(), Err(e));
        }
        Part::Fleet(_) => out.fleet = Some(Err(e)),
    }
}

/// One part's replies, in plan order.
fn take_part(
    p: &Part<'_>,
    it: &mut Replies,
    out: &mut RedisSnapshot,
    refetch: &mut Vec<(GroupKey, Incomplete)>,
) {
    match p {
        Part::Group(g) => match take_group(g, it) {
            Ok(GroupParts::Complete(d)) => {
                out.groups.insert(g.key.clone(), Ok(d));
            }
            Ok(GroupParts::Incomplete(d)) => refetch.push((g.key.clone(), d)),
            Err(e) => {
                out.groups.insert(g.key.clone(), Err(e));
            }
        },
        Part::Stream(st) => {
            let r = match (it.next(), it.next()) {
                (Some(Ok(i)), Some(Ok(g))) => xinfo::stream_info(&i)
                    .and_then(|i| Ok((i, xinfo::groups(&g)?)))
                    .map_err(ReadError::from),
                (Some(Err(e)), _) | (_, Some(Err(e))) => Err(command_error(st, &e)),
                _ => Err(ReadError::Reply("no reply".into())),
            };
            out.streams.insert(st.to_string(), r);
        }
        Part::Key(k) => {
            let v = match it.next() {
                Some(Ok(Value::Nil)) => Ok(None),
                Some(Ok(v)) => redis::from_redis_value::<String>(v)
                    .map(Some)
                    .map_err(|e| ReadError::Reply(e.to_string())),
                Some(Err(e)) => Err(command_error(k, &e)),
                None => Err(ReadError::Reply("no reply".into())),
            };
            out.keys.insert(k.to_string(), v);
        }
        Part::Fleet(f) => {
            let written = f.payload.is_some().then_some(f.digest);
            out.fleet = Some(match it.next() {
                Some(Ok(v)) => fleet_view(&v).map(|view| FleetView { written, ..view }),
                Some(Err(e)) => Err(command_error("the fleet's heartbeats", &e)),
                None => Err(ReadError::Reply("no reply".into())),
            });
        }
    }
}

/// The heartbeat script's reply (see [`super::scripts::FLEET_LUA`]). A heartbeat that does
/// not parse counts as none: that host's consumers are judged as if its agent were silent.
fn fleet_view(v: &Value) -> Result<FleetView, ReadError> {
    let bad = || ReadError::Reply("the fleet's heartbeats: unexpected reply".into());
    let Value::Array(items) = v else {
        return Err(bad());
    };
    let int = |v: &Value| redis::from_redis_value::<u64>(v.clone()).map_err(|_| bad());
    let text = |v: &Value| redis::from_redis_value::<Vec<u8>>(v.clone()).map_err(|_| bad());
    let [now, before, resend, rest @ ..] = items.as_slice() else {
        return Err(bad());
    };
    let mut view = FleetView {
        now_ms: int(now)?,
        hosts: Vec::new(),
        own_before: String::from_utf8_lossy(&text(before)?).into_owned(),
        resend: int(resend)? == 1,
        written: None,
    };
    for h in rest.chunks(5) {
        let [host, last, meta, present, beat] = h else {
            return Err(bad());
        };
        let (beat, meta) = (text(beat)?, text(meta)?);
        let mut hb = HostBeat {
            host: String::from_utf8_lossy(&text(host)?).into_owned(),
            last_beat_ms: int(last)?,
            beat: parse_beat(&beat).map(std::sync::Arc::new),
            as_of_ms: 0,
            instance: String::new(),
            unchanged: beat.is_empty() && int(present)? == 1,
        };
        from_meta(&mut hb, &String::from_utf8_lossy(&meta));
        view.hosts.push(hb);
    }
    Ok(view)
}

/// A heartbeat as written; the policy looks names up by binary search, and a writer is not
/// trusted to have sorted them, nor to have kept to the limits.
fn parse_beat(text: &[u8]) -> Option<Heartbeat> {
    let mut beat = serde_json::from_slice::<Heartbeat>(text).ok()?;
    for v in &mut beat.groups {
        v.live.truncate(crate::model::fleet::LIVE_NAMED);
        v.dead.truncate(crate::model::fleet::DEAD_NAMED);
        v.live.sort();
        v.dead.sort();
    }
    Some(beat)
}

/// `<instance> <as_of_ms> <changed_ms>` into the host's read; without it (an agent of an earlier
/// version), what its heartbeat says.
fn from_meta(hb: &mut HostBeat, meta: &str) {
    let mut parts = meta.split(' ');
    if let (Some(i), Some(a)) = (parts.next(), parts.next().and_then(|a| a.parse().ok())) {
        hb.instance = i.to_string();
        hb.as_of_ms = a;
    } else if let Some(b) = &hb.beat {
        hb.instance = b.instance.clone();
        hb.as_of_ms = b.as_of_ms;
    }
}

enum GroupParts {
    Complete(GroupData),
    /// What is missing is read in a second round trip.
    Incomplete(Incomplete),
}

/// A group's data lacking what only a second round trip can tell.
struct Incomplete {
    data: GroupData,
    /// Lag is null and `XINFO STREAM` was not asked.
    stream: bool,
    /// `XINFO CONSUMERS` was not asked, and the group is no longer as it was when its known
    /// consumers were read.
    consumers: bool,
}

fn queue_consumers(pipe: &mut redis::Pipeline, k: &GroupKey) {
    pipe.cmd("XINFO")
        .arg("CONSUMERS")
        .arg(&k.stream)
        .arg(&k.group);
}

/// Queues one group's commands in plan order.
fn queue_group(pipe: &mut redis::Pipeline, g: &GroupFetch) {
    let k = &g.key;
    if g.stream_info == StreamInfoNeed::Always {
        pipe.cmd("XINFO").arg("STREAM").arg(&k.stream);
    }
    pipe.cmd("XINFO").arg("GROUPS").arg(&k.stream);
    if g.known.is_none() {
        queue_consumers(pipe, k);
    }
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
    if let Some(l) = &g.lease {
        pipe.cmd("GET").arg(l);
        pipe.cmd("PTTL").arg(l);
    }
    // Read commands only (no script: a server that holds writes back holds scripts too, and
    // would hold the whole look): its time, the traces' count, and at most TRACES_MAX of them
    // (HRANDFIELD with a count never walks a larger hash).
    if let Some(c) = &g.claims {
        pipe.cmd("TIME");
        pipe.cmd("HLEN").arg(c);
        pipe.cmd("HRANDFIELD")
            .arg(c)
            .arg(super::scripts::TRACES_MAX)
            .arg("WITHVALUES");
    }
}

type Replies = std::vec::IntoIter<RedisResult<Value>>;

/// The next reply, or the error naming what was asked of `stream`.
fn next_reply(it: &mut Replies, what: &str, stream: &str) -> Result<Value, ReadError> {
    match it.next() {
        Some(Ok(v)) => Ok(v),
        Some(Err(e)) => Err(command_error(&format!("{what} {stream}"), &e)),
        None => Err(ReadError::Reply(format!("{what}: no reply"))),
    }
}

/// Takes one group's replies in plan order; any error makes the group's error, naming what
/// was asked.
/// One group's replies, in plan order.
struct GroupReplies {
    stream: Option<Result<Value, ReadError>>,
    groups: Result<Value, ReadError>,
    consumers: Option<Result<Value, ReadError>>,
    heads: Vec<(String, Result<Value, ReadError>)>,
    scan: Option<(Scan, Result<Value, ReadError>)>,
    rechecks: Vec<Result<Value, ReadError>>,
    lease: Option<[Result<Value, ReadError>; 2]>,
    claims: Option<[Result<Value, ReadError>; 3]>,
}

/// Takes every reply of the group first, so that an error leaves the others in step.
fn take_replies(g: &GroupFetch, it: &mut Replies) -> GroupReplies {
    let k = &g.key;
    let mut take = |what: &str| next_reply(it, what, &k.stream);
    GroupReplies {
        stream: (g.stream_info == StreamInfoNeed::Always).then(|| take("XINFO STREAM")),
        groups: take("XINFO GROUPS"),
        consumers: g.known.is_none().then(|| take("XINFO CONSUMERS")),
        heads: g
            .heads
            .iter()
            .map(|name| (name.clone(), take("XPENDING (oldest entry)")))
            .collect(),
        scan: g.scan.map(|s| (s, take("XPENDING (scan)"))),
        rechecks: g
            .recheck
            .iter()
            .map(|_| take("XPENDING (re-check)"))
            .collect(),
        lease: g
            .lease
            .as_ref()
            .map(|_| [take("GET (recovery lease)"), take("PTTL (recovery lease)")]),
        claims: g.claims.as_ref().map(|_| {
            [
                take("TIME"),
                take("HLEN (claim traces)"),
                take("HRANDFIELD (claim traces)"),
            ]
        }),
    }
}

fn pending(v: Result<Value, ReadError>) -> Result<Vec<PendingEntry>, ReadError> {
    Ok(xinfo::pending_entries(&v?)?)
}

/// One group's data from its replies; any error is the group's error, naming what was asked.
fn take_group(g: &GroupFetch, it: &mut Replies) -> Result<GroupParts, ReadError> {
    let r = take_replies(g, it);
    let stream = r
        .stream
        .map(|s| Ok::<_, ReadError>(xinfo::stream_info(&s?)?))
        .transpose()?;
    let group = xinfo::group_named(&r.groups?, &g.key.group)?.ok_or_else(|| {
        ReadError::Server(format!(
            "NOGROUP: stream {} has no consumer group {}",
            g.key.stream, g.key.group
        ))
    })?;
    let mut d = GroupData {
        stream: stream.clone().unwrap_or(StreamInfo {
            length: 0,
            last_generated_id: group.last_delivered_id,
            entries_added: None,
        }),
        consumers: Vec::new(),
        heads: BTreeMap::new(),
        scan: None,
        rechecked: None,
        lease: None,
        consumers_read_usec: None,
        claims: r.claims.map(|[t, n, f]| xinfo::claim_traces(t, n, f)),
        group,
    };
    let need_consumers = !take_consumers(r.consumers, g, &mut d)?;
    take_pending(&mut d, r.heads, r.scan, r.rechecks)?;
    if let Some([v, ttl]) = r.lease {
        d.lease = lease(v, ttl);
    }
    let need_stream = match (stream, d.group.lag) {
        (Some(_), _) => false,
        // Known lag: what the policy and the metrics need follows from the group alone.
        (None, Some(lag)) => {
            d.stream.entries_added = d.group.entries_read.map(|r| r.saturating_add(lag));
            false
        }
        (None, None) => true,
    };
    Ok(if need_stream || need_consumers {
        GroupParts::Incomplete(Incomplete {
            data: d,
            stream: need_stream,
            consumers: need_consumers,
        })
    } else {
        GroupParts::Complete(d)
    })
}

/// The group's pending-list replies into `d`: each head, the poison scan's window and the
/// suspects re-checked.
fn take_pending(
    d: &mut GroupData,
    heads: Vec<(String, Result<Value, ReadError>)>,
    scan: Option<(Scan, Result<Value, ReadError>)>,
    rechecks: Vec<Result<Value, ReadError>>,
) -> Result<(), ReadError> {
    for (name, v) in heads {
        d.heads.insert(name, pending(v)?.into_iter().next());
    }
    if let Some((s, v)) = scan {
        d.scan = Some(ScanReply {
            after: s.after,
            count: s.count,
            entries: pending(v)?,
        });
        let mut still = Vec::new();
        for v in rechecks {
            still.extend(pending(v)?);
        }
        d.rechecked = Some(still);
    }
    Ok(())
}

/// The group's consumers: as read, or as the plan knows them if its entry is unchanged.
/// `false`: neither (the group changed since they were read).
fn take_consumers(
    read: Option<Result<Value, ReadError>>,
    g: &GroupFetch,
    d: &mut GroupData,
) -> Result<bool, ReadError> {
    match (read, &g.known) {
        (Some(v), _) => d.consumers = xinfo::consumers(&v?)?,
        (None, Some(k)) if k.group == d.group => {
            d.consumers = k.consumers.clone();
            d.consumers_read_usec = Some(k.read_usec);
        }
        (None, _) => return Ok(false),
    }
    Ok(true)
}

/// An incomplete group's data with the second round trip's replies.
fn complete(
    k: &GroupKey,
    mut inc: Incomplete,
    replies: Vec<RedisResult<Value>>,
) -> Result<GroupData, ReadError> {
    let mut it = replies.into_iter();
    let mut next = |what: &str| next_reply(&mut it, what, &k.stream);
    if inc.stream {
        inc.data.stream = xinfo::stream_info(&next("XINFO STREAM")?)?;
    }
    if inc.consumers {
        inc.data.consumers = xinfo::consumers(&next("XINFO CONSUMERS")?)?;
    }
    Ok(inc.data)
}
