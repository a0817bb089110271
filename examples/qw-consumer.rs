//! A real Redis Streams consumer for tests and the demo: it reads with XREADGROUP (first its
//! own pending list, then new entries), records every entry it processed in an ack log, and
//! XACKs it. It reads under `<prefix>-<hostname>-<pid>`, like the services of the seeds.
//!
//! Usage: qw-consumer REDIS_URL STREAM GROUP PREFIX ACK_LOG
//! REDIS_URL: `redis://…` or `unix://…`; `sentinel://HOST:PORT,…/MASTER` (the master the
//! Sentinels name, looked up again at every reconnect); `cluster://HOST:PORT,…` (a cluster).
//! Environment: QW_WORK_MS (time per entry, default 0), QW_POISON (a value of field `n` it
//! never acknowledges), QW_BLOCK_MS (default 500), QW_QUIET=1 (start quiet), QW_PEL_EVERY_MS
//! (how often it rereads its own pending list; default 0: before every read), QW_CRASH_ON (a
//! value of `n` that kills it with SIGKILL when read), QW_HANG_ON (a value of `n` it hangs
//! on: alive, reading nothing more), QW_EXIT_AFTER_MS (exit 1 that long after the start,
//! whatever it is doing).
//!
//! Control: SIGSTOP hangs it (systemd still says active/running), SIGKILL crashes it,
//! SIGUSR1 makes it go quiet (alive, reads nothing), SIGUSR2 resumes.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use redis::{ConnectionLike, RedisResult, Value};

static QUIET: AtomicBool = AtomicBool::new(false);

extern "C" fn on_usr1(_: i32) {
    QUIET.store(true, Ordering::SeqCst);
}
extern "C" fn on_usr2(_: i32) {
    QUIET.store(false, Ordering::SeqCst);
}

fn text(v: &Value) -> String {
    match v {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        Value::Int(i) => i.to_string(),
        _ => String::new(),
    }
}

/// `[[stream, [[id, [k, v, …] | nil], …]]]` → `(id, n)`; a nil body (entry deleted) gives `None`.
fn entries(v: &Value) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let Value::Array(streams) = v else { return out };
    for s in streams {
        let Value::Array(kv) = s else { continue };
        let Some(Value::Array(list)) = kv.get(1) else {
            continue;
        };
        for e in list {
            let Value::Array(parts) = e else { continue };
            let id = parts.first().map(text).unwrap_or_default();
            let n = match parts.get(1) {
                Some(Value::Array(f)) => Some(
                    f.chunks(2)
                        .find(|c| c.len() == 2 && text(&c[0]) == "n")
                        .map(|c| text(&c[1]))
                        .unwrap_or_else(|| id.clone()),
                ),
                _ => None,
            };
            out.push((id, n));
        }
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 6 {
        eprintln!("usage: qw-consumer REDIS_URL STREAM GROUP PREFIX ACK_LOG");
        std::process::exit(2);
    }
    let (url, stream, group, prefix, ack_log) = (&args[1], &args[2], &args[3], &args[4], &args[5]);
    let env_ms = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let work_ms = env_ms("QW_WORK_MS", 0);
    let block_ms = env_ms("QW_BLOCK_MS", 500);
    let pel_every = Duration::from_millis(env_ms("QW_PEL_EVERY_MS", 0));
    let poison = std::env::var("QW_POISON").ok();
    if let Some(ms) = std::env::var("QW_EXIT_AFTER_MS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(ms));
            eprintln!("qw-consumer: exiting 1 after {ms} ms (QW_EXIT_AFTER_MS)");
            std::process::exit(1);
        });
    }
    QUIET.store(
        std::env::var("QW_QUIET").is_ok_and(|v| v == "1"),
        Ordering::SeqCst,
    );
    unsafe {
        use nix::sys::signal::{SigHandler, Signal, signal};
        let _ = signal(Signal::SIGUSR1, SigHandler::Handler(on_usr1));
        let _ = signal(Signal::SIGUSR2, SigHandler::Handler(on_usr2));
    }
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = format!("{prefix}-{host}-{}", std::process::id());
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(ack_log)
        .expect("ack log");
    eprintln!("qw-consumer {name} reading {stream} as {group}");
    loop {
        if let Err(e) = run(
            url,
            stream,
            group,
            &name,
            &mut log,
            work_ms,
            block_ms,
            pel_every,
            poison.as_deref(),
        ) {
            eprintln!("qw-consumer {name}: {e}; retrying");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    url: &str,
    stream: &str,
    group: &str,
    name: &str,
    log: &mut std::fs::File,
    work_ms: u64,
    block_ms: u64,
    pel_every: Duration,
    poison: Option<&str>,
) -> RedisResult<()> {
    let mut c = connect(url, Duration::from_millis(block_ms + 2000))?;
    let c = c.as_mut();
    let created: RedisResult<Value> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(group)
        .arg("0")
        .arg("MKSTREAM")
        .query(c);
    if let Err(e) = created
        && e.code() != Some("BUSYGROUP")
    {
        return Err(e);
    }
    let mut last_pel = None;
    loop {
        if QUIET.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        // Own pending list first: entries handed to us, or left by a crash mid-batch.
        let mut batch = Vec::new();
        if last_pel.is_none_or(|t: Instant| t.elapsed() >= pel_every) {
            let mine: Value = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(group)
                .arg(name)
                .arg("COUNT")
                .arg(100)
                .arg("STREAMS")
                .arg(stream)
                .arg("0")
                .query(c)?;
            batch = entries(&mine);
            if batch.is_empty() {
                last_pel = Some(Instant::now());
            }
        }
        let own = !batch.is_empty();
        batch.retain(|(_, n)| !(poison.is_some() && n.as_deref() == poison));
        if batch.is_empty() {
            if own {
                // Only the poison entry is left in our list: keep reading new entries.
                std::thread::sleep(Duration::from_millis(50));
            }
            let new: Value = redis::cmd("XREADGROUP")
                .arg("GROUP")
                .arg(group)
                .arg(name)
                .arg("COUNT")
                .arg(10)
                .arg("BLOCK")
                .arg(block_ms)
                .arg("STREAMS")
                .arg(stream)
                .arg(">")
                .query(c)?;
            batch = entries(&new);
        }
        for (id, n) in batch {
            let Some(n) = n else {
                // Deleted from the stream while pending: nothing to process; acknowledge it.
                let _: i64 = redis::cmd("XACK")
                    .arg(stream)
                    .arg(group)
                    .arg(&id)
                    .query(c)?;
                continue;
            };
            if poison == Some(n.as_str()) {
                continue;
            }
            if std::env::var("QW_CRASH_ON").is_ok_and(|v| v == n) {
                eprintln!("qw-consumer {name}: entry {id} (n={n}) kills me");
                let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            }
            if std::env::var("QW_HANG_ON").is_ok_and(|v| v == n) {
                eprintln!("qw-consumer {name}: entry {id} (n={n}) hangs me");
                loop {
                    std::thread::sleep(Duration::from_secs(3600));
                }
            }
            if work_ms > 0 {
                std::thread::sleep(Duration::from_millis(work_ms));
            }
            // Record first, then acknowledge: a crash in between is a duplicate, never a loss.
            // One write(2) per line: workers of one unit share the log, and `writeln!` would
            // issue one write per piece, so two workers' lines could interleave.
            log.write_all(format!("{id} {n}\n").as_bytes())
                .map_err(redis::RedisError::from)?;
            let _: i64 = redis::cmd("XACK")
                .arg(stream)
                .arg(group)
                .arg(&id)
                .query(c)?;
        }
    }
}

/// A connection to the server `url` names (see the usage above).
fn connect(url: &str, read_timeout: Duration) -> RedisResult<Box<dyn ConnectionLike>> {
    let nodes =
        |list: &str| -> Vec<String> { list.split(',').map(|n| format!("redis://{n}")).collect() };
    if let Some(rest) = url.strip_prefix("sentinel://") {
        let (list, master) = rest.split_once('/').unwrap_or((rest, "mymaster"));
        let mut s = redis::sentinel::Sentinel::build(nodes(list))?;
        let client = s.master_for(master, None)?;
        let c = client.get_connection_with_timeout(Duration::from_secs(2))?;
        c.set_read_timeout(Some(read_timeout))?;
        return Ok(Box::new(c));
    }
    if let Some(list) = url.strip_prefix("cluster://") {
        let client = redis::cluster::ClusterClientBuilder::new(nodes(list))
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(read_timeout)
            .build()?;
        return Ok(Box::new(client.get_connection()?));
    }
    let client = redis::Client::open(url)?;
    let c = client.get_connection_with_timeout(Duration::from_secs(2))?;
    c.set_read_timeout(Some(read_timeout))?;
    Ok(Box::new(c))
}
