//! Parsers of `XINFO STREAM`, `XINFO GROUPS`, `XINFO CONSUMERS` and extended `XPENDING`
//! replies into the snapshot model. Pure: they take `redis::Value`s and never panic.
//!
//! Replies are read as maps by field name (RESP2 flat arrays and RESP3 maps alike), so fields
//! a server version lacks (`lag`, `entries-read`, `inactive`, `entries-added`) are `None`,
//! and fields it adds are ignored.

use redis::Value;

use crate::model::{ConsumerInfo, GroupInfo, PendingEntry, ReadError, StreamId, StreamInfo};

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

/// The fields of one reply element, in reply order (a dozen at most: a linear scan beats a map).
struct Fields<'a>(Vec<(&'a [u8], &'a Value)>);

impl<'a> Fields<'a> {
    fn get(&self, k: &str) -> Option<&'a Value> {
        self.0
            .iter()
            .find(|(n, _)| *n == k.as_bytes())
            .map(|(_, v)| *v)
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
    let mut m = Vec::new();
    match v {
        Value::Map(pairs) => {
            for (k, val) in pairs {
                m.push((
                    name_bytes(k).ok_or_else(|| err(what, "non-text field name"))?,
                    val,
                ));
            }
        }
        Value::Array(items) => {
            if items.len() % 2 != 0 {
                return Err(err(what, format!("odd number of items ({})", items.len())));
            }
            for kv in items.chunks_exact(2) {
                m.push((
                    name_bytes(&kv[0]).ok_or_else(|| err(what, "non-text field name"))?,
                    &kv[1],
                ));
            }
        }
        other => return Err(err(what, format!("expected a map, found {}", kind(other)))),
    }
    Ok(Fields(m))
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

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
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

/// `XINFO GROUPS`.
pub fn groups(v: &Value) -> Result<Vec<GroupInfo>, ParseError> {
    const W: &str = "XINFO GROUPS";
    items(W, v)?
        .iter()
        .map(|g| {
            let m = fields(W, g)?;
            Ok(GroupInfo {
                name: text(req(W, &m, "name")?).ok_or_else(|| err(W, "name is not a string"))?,
                consumers: req_u64(W, &m, "consumers")?,
                pending: req_u64(W, &m, "pending")?,
                last_delivered_id: id(W, req(W, &m, "last-delivered-id")?)?,
                entries_read: opt_u64(W, &m, "entries-read")?,
                lag: opt_u64(W, &m, "lag")?,
            })
        })
        .collect()
}

/// `XINFO CONSUMERS`.
pub fn consumers(v: &Value) -> Result<Vec<ConsumerInfo>, ParseError> {
    const W: &str = "XINFO CONSUMERS";
    items(W, v)?
        .iter()
        .map(|c| {
            let m = fields(W, c)?;
            Ok(ConsumerInfo {
                name: text(req(W, &m, "name")?)
                    .ok_or_else(|| err(W, "name is not a string"))?
                    .into(),
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
                consumer: text(&f[1]).ok_or_else(|| err(W, "consumer is not a string"))?,
                idle_ms: n(&f[2], "idle")?,
                deliveries: n(&f[3], "deliveries")?,
            })
        })
        .collect()
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
}
