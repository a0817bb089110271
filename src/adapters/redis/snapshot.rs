//! Runs the policy's [`FetchPlan`] in one pipelined round trip and parses the replies into
//! the snapshot. Decides nothing: what to ask comes from the plan.

use std::collections::BTreeMap;

use redis::{RedisResult, Value};

use crate::model::plan::{FetchPlan, GroupFetch, Scan, StreamInfoNeed};
use crate::model::{
    GroupData, GroupKey, PendingEntry, ReadError, RedisSnapshot, ScanReply, StreamInfo,
};

use super::{ClientError, RedisClient, command_error, is_unreachable, xinfo};

impl RedisClient {
    /// Runs the cycle's [`FetchPlan`] in one pipelined round trip: per group `XINFO STREAM`
    /// (when the plan says so), `XINFO GROUPS`, `XINFO CONSUMERS`, the heads, the scan window
    /// and the re-checks; then `XINFO STREAM` and `XINFO GROUPS` of every pipeline stream and
    /// `GET` of every key. A second round trip only for groups whose lag has just turned null.
    pub async fn snapshot(&mut self, plan: &FetchPlan) -> Result<RedisSnapshot, ClientError> {
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
            let e = ClientError::Unreachable(e.to_string());
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
        take_streams_and_keys(plan, &mut it, &mut out);
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
    ) -> Result<(), ClientError> {
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
                    .map_err(ReadError::from),
                Err(e) => Err(command_error(&format!("XINFO STREAM {}", k.stream), &e)),
            };
            out.groups.insert(k, r);
        }
        Ok(())
    }
}

enum GroupParts {
    Complete(GroupData),
    /// Lag is null and XINFO STREAM was not asked: fetch it, then complete.
    NeedStream(GroupData),
}

/// The pipeline streams' and the keys' replies.
fn take_streams_and_keys(plan: &FetchPlan, it: &mut Replies, out: &mut RedisSnapshot) {
    for st in &plan.pipeline_streams {
        let (info, groups) = (it.next(), it.next());
        let r = match (info, groups) {
            (Some(Ok(i)), Some(Ok(g))) => xinfo::stream_info(&i)
                .and_then(|i| Ok((i, xinfo::groups(&g)?)))
                .map_err(ReadError::from),
            (Some(Err(e)), _) | (_, Some(Err(e))) => Err(command_error(st, &e)),
            _ => Err(ReadError::Reply("no reply".into())),
        };
        out.streams.insert(st.clone(), r);
    }
    for k in &plan.keys {
        let v = match it.next() {
            Some(Ok(Value::Nil)) => Ok(None),
            Some(Ok(v)) => redis::from_redis_value::<String>(v)
                .map(Some)
                .map_err(|e| ReadError::Reply(e.to_string())),
            Some(Err(e)) => Err(command_error(k, &e)),
            None => Err(ReadError::Reply("no reply".into())),
        };
        out.keys.insert(k.clone(), v);
    }
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
/// One group's replies, in plan order.
struct GroupReplies {
    stream: Option<Result<Value, ReadError>>,
    groups: Result<Value, ReadError>,
    consumers: Result<Value, ReadError>,
    heads: Vec<(String, Result<Value, ReadError>)>,
    scan: Option<(Scan, Result<Value, ReadError>)>,
    rechecks: Vec<Result<Value, ReadError>>,
}

/// Takes every reply of the group first, so that an error leaves the others in step.
fn take_replies(g: &GroupFetch, it: &mut Replies) -> GroupReplies {
    let k = &g.key;
    let mut take = |what: &str| -> Result<Value, ReadError> {
        match it.next() {
            Some(Ok(v)) => Ok(v),
            Some(Err(e)) => Err(command_error(&format!("{what} {}", k.stream), &e)),
            None => Err(ReadError::Reply(format!("{what}: no reply"))),
        }
    };
    GroupReplies {
        stream: (g.stream_info == StreamInfoNeed::Always).then(|| take("XINFO STREAM")),
        groups: take("XINFO GROUPS"),
        consumers: take("XINFO CONSUMERS"),
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
    let group = xinfo::groups(&r.groups?)?
        .into_iter()
        .find(|x| x.name == g.key.group)
        .ok_or_else(|| {
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
        consumers: xinfo::consumers(&r.consumers?)?,
        heads: BTreeMap::new(),
        scan: None,
        rechecked: None,
        group,
    };
    for (name, v) in r.heads {
        d.heads.insert(name, pending(v)?.into_iter().next());
    }
    if let Some((s, v)) = r.scan {
        let entries = pending(v)?;
        d.scan = Some(ScanReply {
            after: s.after,
            count: s.count,
            entries,
        });
        let mut still = Vec::new();
        for v in r.rechecks {
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
