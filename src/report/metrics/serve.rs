//! `GET /metrics` over a unix socket or TCP, safe against a local flood: a bounded number of
//! connections, idle ones dropped, any accept error survived.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Metrics;

/// At most this many scrapes are answered at once; further connections wait in the kernel's
/// backlog (they hold none of the agent's file descriptors).
const MAX_CONNECTIONS: usize = 32;

enum Listener {
    Unix(tokio::net::UnixListener),
    Tcp(tokio::net::TcpListener),
}

/// Whether two `metrics.listen` values name one address: a socket path however it is spelt
/// (`/run//x.sock`, `/run/./x.sock`), else the same text. A reload that only respells the
/// socket must not unlink the socket it serves on.
pub fn same_address(a: &str, b: &str) -> bool {
    match (a.strip_prefix("unix:"), b.strip_prefix("unix:")) {
        (Some(a), Some(b)) => {
            let norm = |p: &str| Path::new(p).components().collect::<std::path::PathBuf>();
            norm(a) == norm(b)
        }
        _ => a == b,
    }
}

/// Serves `GET /metrics` on `listen` (`unix:/path` or `HOST:PORT`) until the task is dropped.
/// It survives any accept error (EMFILE included: it backs off and accepts again), answers at
/// most [`MAX_CONNECTIONS`] at once and drops a connection idle for 2 s.
pub async fn serve(
    listen: &str,
    metrics: Arc<Metrics>,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let l = if let Some(path) = listen.strip_prefix("unix:") {
        let _ = std::fs::remove_file(path);
        if let Some(dir) = Path::new(path).parent() {
            std::fs::create_dir_all(dir)?;
        }
        let l = tokio::net::UnixListener::bind(path)?;
        use std::os::unix::fs::PermissionsExt;
        // The agent and its group (and root): not every local user.
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
        Listener::Unix(l)
    } else {
        Listener::Tcp(tokio::net::TcpListener::bind(listen).await?)
    };
    Ok(tokio::spawn(accept_loop(l, metrics)))
}

async fn accept_loop(l: Listener, metrics: Arc<Metrics>) {
    let permits = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut backoff = Duration::ZERO;
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let m = metrics.clone();
        let accepted = match &l {
            Listener::Unix(l) => l.accept().await.map(|(s, _)| {
                tokio::spawn(async move {
                    answer(s, m).await;
                    drop(permit);
                });
            }),
            Listener::Tcp(l) => l.accept().await.map(|(s, _)| {
                tokio::spawn(async move {
                    answer(s, m).await;
                    drop(permit);
                });
            }),
        };
        match accepted {
            Ok(()) => backoff = Duration::ZERO,
            Err(e) => {
                if backoff.is_zero() {
                    tracing::warn!("metrics: accept failed: {e}; backing off and accepting again");
                }
                backoff = (backoff * 2).clamp(Duration::from_millis(10), Duration::from_secs(1));
                tokio::time::sleep(backoff).await;
            }
        }
    }
}

async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut s: S,
    m: Arc<Metrics>,
) {
    let mut buf = vec![0u8; 8192];
    let mut n = 0;
    let read = tokio::time::timeout(Duration::from_secs(2), async {
        while n < buf.len() {
            match s.read(&mut buf[n..]).await {
                Ok(0) | Err(_) => break,
                Ok(k) => n += k,
            }
            if buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    if read.is_err() {
        return;
    }
    let req = String::from_utf8_lossy(&buf[..n]);
    let first = req.lines().next().unwrap_or("");
    let (status, ctype, body) = if first.starts_with("GET /metrics ") || first == "GET /metrics" {
        (
            "200 OK",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
            m.encode(),
        )
    } else {
        ("404 Not Found", "text/plain", "try /metrics\n".to_string())
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        let _ = s.write_all(head.as_bytes()).await;
        let _ = s.write_all(body.as_bytes()).await;
        let _ = s.shutdown().await;
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::same_address;

    #[test]
    fn a_respelt_socket_is_the_same_address() {
        assert!(same_address("unix:/run/q/m.sock", "unix:/run/q//m.sock"));
        assert!(same_address("unix:/run/q/m.sock", "unix:/run/./q/m.sock"));
        assert!(!same_address("unix:/run/q/m.sock", "unix:/run/q/n.sock"));
        assert!(same_address("127.0.0.1:9632", "127.0.0.1:9632"));
        assert!(!same_address("127.0.0.1:9632", "0.0.0.0:9632"));
        assert!(!same_address("", "unix:/x"));
    }
}
