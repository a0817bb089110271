//! Parsers of `XINFO STREAM`, `XINFO GROUPS`, `XINFO CONSUMERS` and extended `XPENDING`
//! replies into the snapshot model. Pure: they take `redis::Value`s and never panic.
//!
//! Replies are read as maps by field name (RESP2 flat arrays and RESP3 maps alike), so fields
//! a server version lacks (`lag`, `entries-read`, `inactive`, `entries-added`) are `None`,
//! and fields it adds are ignored.

use std::borrow::Cow;
use std::sync::Arc;

use redis::Value;

use crate::model::{
    ClaimTrace, ClaimTraces, ConsumerInfo, GroupInfo, PendingEntry, ReadError, StreamId, StreamInfo,
};

/// A reply of an unexpected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected {what} reply: {detail}")]
pub struct ParseError {
    /// The command.
    pub what: &'static str,
    /// What was wrong.
    pub detail: String,
}

impl From<ParseError> for ReadError {
    fn from(e: ParseError) -> ReadError {
        ReadError::Reply(e.to_string())
    }
}

fn err(what: &'static str, detail: impl Into<String>) -> ParseError {
    ParseError {
        what,
        detail: detail.into(),
    }
}

/// The fields of one reply element, as the reply has them (a dozen at most: a linear scan
/// beats a map, and nothing is copied).
enum Fields<'a> {
    /// RESP2: name, value, name, value, …
    Flat(&'a [Value]),
    /// RESP3.
    Map(&'a [(Value, Value)]),
}

impl<'a> Fields<'a> {
    fn get(&self, k: &str) -> Option<&'a Value> {
        let is = |n: &Value| name_bytes(n) == Some(k.as_bytes());
        match self {
            Fields::Flat(items) => items.chunks_exact(2).find(|kv| is(&kv[0])).map(|kv| &kv[1]),
            Fields::Map(pairs) => pairs.iter().find(|(n, _)| is(n)).map(|(_, v)| v),
        }
    }
}

fn name_bytes(v: &Value) -> Option<&[u8]> {
    match v {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

/// A field map of one reply element (RESP2 flat array or RESP3 map).
fn fields<'a>(what: &'static str, v: &'a Value) -> Result<Fields<'a>, ParseError> {
    let is_text = |n: &Value| name_bytes(n).is_some();
    let (f, names_text) = match v {
        Value::Map(pairs) => (Fields::Map(pairs), pairs.iter().all(|(k, _)| is_text(k))),
        Value::Array(items) if items.len() % 2 == 0 => {
            (Fields::Flat(items), items.iter().step_by(2).all(is_text))
        }
        Value::Array(items) => {
            return Err(err(what, format!("odd number of items ({})", items.len())));
        }
        other => return Err(err(what, format!("expected a map, found {}", kind(other)))),
    };
    if !names_text {
        return Err(err(what, "non-text field name"));
    }
    Ok(f)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Nil => "nil",
        Value::Int(_) => "integer",
        Value::BulkString(_) | Value::SimpleString(_) | Value::VerbatimString { .. } => "string",
        Value::Array(_) | Value::Set(_) => "array",
        Value::Map(_) => "map",
        Value::Okay => "OK",
        _ => "other",
    }
}

/// A text value, borrowed where it is valid UTF-8 (bytes that are not become U+FFFD).
fn text(v: &Value) -> Option<Cow<'_, str>> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b)),
        Value::SimpleString(s) => Some(Cow::Borrowed(s)),
        Value::VerbatimString { text, .. } => Some(Cow::Borrowed(text)),
        _ => None,
    }
}

fn int(v: &Value) -> Option<i64> {
    match v {
        Value::Int(i) => Some(*i),
        Value::BulkString(_) | Value::SimpleString(_) => text(v)?.parse().ok(),
        _ => None,
    }
}

fn req<'a>(what: &'static str, m: &Fields<'a>, k: &str) -> Result<&'a Value, ParseError> {
    m.get(k)
        .ok_or_else(|| err(what, format!("missing field {k:?}")))
}

fn req_u64(what: &'static str, m: &Fields<'_>, k: &str) -> Result<u64, ParseError> {
    let v = req(what, m, k)?;
    int(v)
        .and_then(|i| u64::try_from(i).ok())
        .ok_or_else(|| err(what, format!("field {k:?} is not a non-negative integer")))
}

/// An optional integer field: absent or nil is `None`.
fn opt_i64(what: &'static str, m: &Fields<'_>, k: &str) -> Result<Option<i64>, ParseError> {
    match m.get(k) {
        None | Some(Value::Nil) => Ok(None),
        Some(v) => int(v)
            .map(Some)
            .ok_or_else(|| err(what, format!("field {k:?} is not an integer"))),
    }
}

fn opt_u64(what: &'static str, m: &Fields<'_>, k: &str) -> Result<Option<u64>, ParseError> {
    opt_i64(what, m, k)?
        .map(|i| u64::try_from(i).map_err(|_| err(what, format!("field {k:?} is negative"))))
        .transpose()
}

fn id(what: &'static str, v: &Value) -> Result<StreamId, ParseError> {
    text(v)
        .ok_or_else(|| err(what, "stream ID is not a string"))?
        .parse()
        .map_err(|e: String| err(what, e))
}

/// `XINFO STREAM`.
pub fn stream_info(v: &Value) -> Result<StreamInfo, ParseError> {
    const W: &str = "XINFO STREAM";
    let m = fields(W, v)?;
    Ok(StreamInfo {
        length: req_u64(W, &m, "length")?,
        last_generated_id: id(W, req(W, &m, "last-generated-id")?)?,
        entries_added: opt_u64(W, &m, "entries-added")?,
    })
}

fn items<'a>(what: &'static str, v: &'a Value) -> Result<&'a [Value], ParseError> {
    match v {
        Value::Array(a) | Value::Set(a) => Ok(a),
        other => Err(err(
            what,
            format!("expected an array, found {}", kind(other)),
        )),
    }
}

const GROUPS: &str = "XINFO GROUPS";

/// One element of `XINFO GROUPS`.
fn group_info(m: &Fields<'_>) -> Result<GroupInfo, ParseError> {
    const W: &str = GROUPS;
    Ok(GroupInfo {
        name: text(req(W, m, "name")?)
            .ok_or_else(|| err(W, "name is not a string"))?
            .into_owned(),
        consumers: req_u64(W, m, "consumers")?,
        pending: req_u64(W, m, "pending")?,
        last_delivered_id: id(W, req(W, m, "last-delivered-id")?)?,
        entries_read: opt_u64(W, m, "entries-read")?,
        lag: opt_u64(W, m, "lag")?,
    })
}

/// `XINFO GROUPS`.
pub fn groups(v: &Value) -> Result<Vec<GroupInfo>, ParseError> {
    items(GROUPS, v)?
        .iter()
        .map(|g| group_info(&fields(GROUPS, g)?))
        .collect()
}

/// The group `name` of an `XINFO GROUPS` reply, if the stream has it (matched by its bytes).
/// The stream's other groups' fields are not parsed: another application's group is none of
/// this look's business. An element that is no field map at all still fails the reply.
pub fn group_named(v: &Value, name: &str) -> Result<Option<GroupInfo>, ParseError> {
    for g in items(GROUPS, v)? {
        let m = fields(GROUPS, g)?;
        if m.get("name").and_then(name_bytes) == Some(name.as_bytes()) {
            return group_info(&m).map(Some);
        }
    }
    Ok(None)
}

/// `XINFO CONSUMERS`.
pub fn consumers(v: &Value) -> Result<Vec<ConsumerInfo>, ParseError> {
    const W: &str = "XINFO CONSUMERS";
    items(W, v)?
        .iter()
        .map(|c| {
            let m = fields(W, c)?;
            Ok(ConsumerInfo {
                name: Arc::from(
                    &*text(req(W, &m, "name")?).ok_or_else(|| err(W, "name is not a string"))?,
                ),
                pending: req_u64(W, &m, "pending")?,
                idle_ms: req_u64(W, &m, "idle")?,
                inactive_ms: opt_i64(W, &m, "inactive")?,
            })
        })
        .collect()
}

/// Extended `XPENDING key group [IDLE ms] start end count [consumer]`: `[id, consumer, idle, deliveries]…`.
pub fn pending_entries(v: &Value) -> Result<Vec<PendingEntry>, ParseError> {
    const W: &str = "XPENDING";
    items(W, v)?
        .iter()
        .map(|e| {
            let f = items(W, e)?;
            if f.len() != 4 {
                return Err(err(W, format!("entry of {} items, expected 4", f.len())));
            }
            let n = |v: &Value, k: &str| {
                int(v)
                    .and_then(|i| u64::try_from(i).ok())
                    .ok_or_else(|| err(W, format!("{k} is not a count")))
            };
            Ok(PendingEntry {
                id: id(W, &f[0])?,
                consumer: text(&f[1])
                    .ok_or_else(|| err(W, "consumer is not a string"))?
                    .into_owned(),
                idle_ms: n(&f[2], "idle")?,
                deliveries: n(&f[3], "deliveries")?,
            })
        })
        .collect()
}

/// A group's claim traces from `TIME`, `HLEN` and `HRANDFIELD … WITHVALUES` of their key.
/// Never fails the group: what cannot be read is said in `error` (a key of another type, more
/// fields than any group of ours has recipients), and a field that is not `<at> <active>` (not
/// written by a claim of ours) is passed over.
pub fn claim_traces(
    time: Result<Value, ReadError>,
    count: Result<Value, ReadError>,
    fields: Result<Value, ReadError>,
) -> ClaimTraces {
    let unread = |why: String| ClaimTraces {
        error: Some(why),
        ..ClaimTraces::default()
    };
    let now_ms = match time.map(|t| server_time_ms(&t)) {
        Ok(Some(ms)) => ms,
        Ok(None) => return unread("TIME: unexpected reply".into()),
        Err(e) => return unread(e.to_string()),
    };
    let said = |why: String| ClaimTraces {
        now_ms,
        ..unread(why)
    };
    match count.map(|n| int(&n)) {
        Ok(Some(n)) if n as u64 > super::scripts::TRACES_MAX => {
            return said(format!(
                "claim traces: {n} fields, more than any group has recipients"
            ));
        }
        Ok(Some(_)) => {}
        Ok(None) => return said("claim traces: unexpected reply".into()),
        Err(e) => return said(e.to_string()),
    }
    let fields = match fields {
        Ok(Value::Array(a)) => a,
        Ok(_) => return said("claim traces: unexpected reply".into()),
        Err(e) => return said(e.to_string()),
    };
    let by_consumer = fields
        .chunks_exact(2)
        .filter_map(|kv| Some((text(&kv[0])?.into_owned(), trace(&text(&kv[1])?)?)))
        .collect();
    ClaimTraces {
        now_ms,
        by_consumer,
        error: None,
    }
}

/// `TIME`'s reply, in ms.
fn server_time_ms(v: &Value) -> Option<u64> {
    let Value::Array(t) = v else { return None };
    let (s, us) = (int(t.first()?)?, int(t.get(1)?)?);
    Some((s.max(0) as u64).saturating_mul(1000) + us.max(0) as u64 / 1000)
}

/// `<at> <active>`, both server ms.
fn trace(s: &str) -> Option<ClaimTrace> {
    let (at, active) = s.split_once(' ')?;
    Some(ClaimTrace {
        at_ms: at.parse().ok()?,
        active_ms: active.parse().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn flat(pairs: &[(&str, Value)]) -> Value {
        Value::Array(pairs.iter().flat_map(|(k, v)| [b(k), v.clone()]).collect())
    }

    #[test]
    fn consumers_7_0_and_7_2() {
        let v70 = Value::Array(vec![flat(&[
            ("name", b("a-1")),
            ("pending", Value::Int(3)),
            ("idle", Value::Int(11776068)),
        ])]);
        let c = consumers(&v70).unwrap();
        assert_eq!(c[0].inactive_ms, None);
        assert_eq!(c[0].idle_ms, 11776068);
        let v72 = Value::Array(vec![Value::Map(vec![
            (b("name"), b("a-2")),
            (b("pending"), Value::Int(0)),
            (b("idle"), Value::Int(5)),
            (b("inactive"), Value::Int(-1)),
        ])]);
        assert_eq!(consumers(&v72).unwrap()[0].inactive_ms, Some(-1));
    }

    #[test]
    fn groups_with_null_and_missing_lag() {
        let g = |lag: Option<Value>| {
            let mut p = vec![
                ("name", b("g")),
                ("consumers", Value::Int(1)),
                ("pending", Value::Int(2)),
                ("last-delivered-id", b("1700000000000-3")),
            ];
            if let Some(l) = lag {
                p.push(("entries-read", Value::Int(7)));
                p.push(("lag", l));
            }
            Value::Array(vec![flat(&p)])
        };
        assert_eq!(groups(&g(Some(Value::Int(4)))).unwrap()[0].lag, Some(4));
        assert_eq!(
            groups(&g(Some(Value::Nil))).unwrap()[0].lag,
            None,
            "7.0+: null lag"
        );
        let six = groups(&g(None)).unwrap();
        assert_eq!(
            (six[0].lag, six[0].entries_read),
            (None, None),
            "6.2 has neither field"
        );
        assert_eq!(six[0].last_delivered_id.to_string(), "1700000000000-3");
    }

    #[test]
    fn only_the_named_group_is_parsed() {
        let ours = flat(&[
            ("name", b("router")),
            ("consumers", Value::Int(2)),
            ("pending", Value::Int(3)),
            ("last-delivered-id", b("5-0")),
            ("entries-read", Value::Int(9)),
            ("lag", Value::Int(1)),
        ]);
        // Another application's group, in a shape this agent would not accept.
        let theirs = flat(&[("name", b("audit")), ("pending", b("many"))]);
        let v = Value::Array(vec![theirs, ours]);
        let g = group_named(&v, "router").unwrap().unwrap();
        assert_eq!((g.name.as_str(), g.pending, g.lag), ("router", 3, Some(1)));
        assert_eq!(group_named(&v, "missing").unwrap(), None);
        assert!(
            group_named(&v, "audit").is_err(),
            "a malformed group of ours is an error"
        );
        assert!(
            groups(&v).is_err(),
            "every group parsed: the malformed one fails"
        );
        let resp3 = Value::Array(vec![Value::Map(vec![
            (b("name"), b("router")),
            (b("consumers"), Value::Int(0)),
            (b("pending"), Value::Int(0)),
            (b("last-delivered-id"), b("0-0")),
        ])]);
        assert_eq!(group_named(&resp3, "router").unwrap().unwrap().lag, None);
    }

    #[test]
    fn stream_and_pending() {
        let s = flat(&[
            ("length", Value::Int(10)),
            ("last-generated-id", b("5-1")),
            ("first-entry", Value::Nil),
            ("entries-added", Value::Int(12)),
        ]);
        let s = stream_info(&s).unwrap();
        assert_eq!(
            (s.length, s.last_generated_id.to_string(), s.entries_added),
            (10, "5-1".into(), Some(12))
        );
        let p = Value::Array(vec![Value::Array(vec![
            b("5-0"),
            b("c"),
            Value::Int(90000),
            Value::Int(2),
        ])]);
        let p = pending_entries(&p).unwrap();
        assert_eq!((p[0].idle_ms, p[0].deliveries), (90000, 2));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let bad = [
            Value::Nil,
            Value::Int(3),
            Value::Array(vec![b("name")]),
            Value::Array(vec![Value::Array(vec![
                b("name"),
                Value::Int(1),
                b("pending"),
            ])]),
            Value::Array(vec![flat(&[
                ("name", b("x")),
                ("pending", Value::Int(-1)),
                ("idle", Value::Int(0)),
            ])]),
            Value::Array(vec![flat(&[
                ("name", b("x")),
                ("pending", b("lots")),
                ("idle", Value::Int(0)),
            ])]),
        ];
        for v in &bad {
            assert!(consumers(v).is_err(), "{v:?}");
            assert!(groups(v).is_err(), "{v:?}");
            assert!(stream_info(v).is_err(), "{v:?}");
            assert!(
                pending_entries(v).is_err() || matches!(v, Value::Array(a) if a.is_empty()),
                "{v:?}"
            );
        }
    }
    /// The server's time, the count, then fields; a field that is not `<at> <active>` is
    /// passed over; a refused read is said, never the group's error.
    #[test]
    fn claim_traces_are_read_or_said() {
        let arr = |v: Vec<Value>| Value::Array(v);
        let time = || Ok(arr(vec![b("1800000000"), b("250000")]));
        let fields = arr(vec![
            b("c-1"),
            b("1800000000100 1799999980000"),
            b("c-2"),
            b("garbage"),
            b("c-3"),
            b("1 2 3"),
        ]);
        let t = claim_traces(time(), Ok(Value::Int(3)), Ok(fields));
        assert_eq!(t.now_ms, 1_800_000_000_250);
        assert_eq!(t.error, None);
        assert_eq!(
            t.by_consumer.get("c-1"),
            Some(&ClaimTrace {
                at_ms: 1_800_000_000_100,
                active_ms: 1_799_999_980_000
            })
        );
        assert_eq!(t.by_consumer.len(), 1);
        let t = claim_traces(time(), Ok(Value::Int(5000)), Ok(arr(vec![])));
        assert!(t.error.unwrap().contains("5000 fields"));
        let wrong = || Err(ReadError::Server("WRONGTYPE not a hash".into()));
        let t = claim_traces(time(), wrong(), wrong());
        assert_eq!(t.now_ms, 1_800_000_000_250);
        assert!(t.error.unwrap().contains("WRONGTYPE"));
        let t = claim_traces(
            Err(ReadError::Server("NOPERM time".into())),
            wrong(),
            wrong(),
        );
        assert!(t.error.unwrap().contains("NOPERM"));
        assert!(
            claim_traces(Ok(b("x")), Ok(Value::Int(0)), Ok(arr(vec![])))
                .error
                .is_some()
        );
    }
}
