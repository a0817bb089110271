//! Redis deployments on 127.0.0.1 beside a scenario's own server: TLS certificates made with
//! openssl, a Sentinel set (one master, one replica, three Sentinels) and a three-master
//! cluster — real servers, as tests/deployments.rs uses them.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::process::{sh, wait_until};
use super::server::{Redis, Server};

/// A TCP port free on 127.0.0.1 at the time of asking.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn openssl(dir: &Path, args: &[&str]) {
    let (rc, out, err) = sh(Command::new("openssl").current_dir(dir).args(args));
    assert_eq!(rc, 0, "openssl {args:?}: {out}{err}");
}

/// A CA, a server certificate for 127.0.0.1 and localhost, a client certificate, all signed by
/// the CA — and a second CA that signed none of them.
pub struct Certs {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    pub other_ca: PathBuf,
}

impl Certs {
    pub fn make(dir: &Path) -> Certs {
        std::fs::create_dir_all(dir).unwrap();
        let ec = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        for ca in ["ca", "other-ca"] {
            let key = format!("{ca}.key");
            let pem = format!("{ca}.pem");
            let subj = format!("/CN=quantum-watchdog test {ca}");
            let mut a = vec!["req", "-x509"];
            a.extend(ec);
            a.extend(["-keyout", &key, "-out", &pem, "-days", "2", "-subj", &subj]);
            a.extend(["-addext", "basicConstraints=critical,CA:TRUE"]);
            a.extend(["-addext", "keyUsage=critical,keyCertSign,cRLSign"]);
            openssl(dir, &a);
        }
        for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
            let ext = dir.join(format!("{name}.ext"));
            std::fs::write(
                &ext,
                format!(
                    "basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n"
                ),
            )
            .unwrap();
            let (key, csr, pem) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
            );
            let mut a = vec!["req"];
            a.extend(ec);
            a.extend(["-keyout", &key, "-out", &csr, "-subj", "/CN=localhost"]);
            openssl(dir, &a);
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-out",
                    &pem,
                    "-days",
                    "2",
                    "-extfile",
                    ext.to_str().unwrap(),
                ],
            );
        }
        Certs {
            ca: dir.join("ca.pem"),
            server_cert: dir.join("server.pem"),
            server_key: dir.join("server.key"),
            client_cert: dir.join("client.pem"),
            client_key: dir.join("client.key"),
            other_ca: dir.join("other-ca.pem"),
        }
    }

    /// The server's arguments for a TLS port (client certificates required or not).
    pub fn server_args(&self, port: u16, client_certs: bool) -> Vec<String> {
        let p = |p: &PathBuf| p.display().to_string();
        vec![
            "--tls-port".into(),
            port.to_string(),
            "--tls-cert-file".into(),
            p(&self.server_cert),
            "--tls-key-file".into(),
            p(&self.server_key),
            "--tls-ca-cert-file".into(),
            p(&self.ca),
            "--tls-auth-clients".into(),
            if client_certs { "yes" } else { "no" }.into(),
        ]
    }
}

/// One master, one replica and three Sentinels watching them as `mymaster`.
pub struct SentinelSet {
    pub servers: Vec<Redis>,
    /// The data nodes' ports (TLS ports with TLS), as the Sentinels name them.
    pub data_ports: Vec<u16>,
    pub sentinels: Vec<Child>,
    /// The Sentinels' plain ports (the harness's own queries).
    pub ports: Vec<u16>,
    /// With TLS: the Sentinels' TLS ports (the agent's).
    pub tls_ports: Vec<u16>,
    pub dir: PathBuf,
}

pub const MASTER: &str = "mymaster";

fn query<T: redis::FromRedisValue>(addr: &str, args: &[&str]) -> redis::RedisResult<T> {
    let c = redis::Client::open(format!("redis://{addr}"))?;
    let mut c = c.get_connection_with_timeout(Duration::from_secs(1))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    run(&mut c, args)
}

fn run<T: redis::FromRedisValue>(
    c: &mut redis::Connection,
    args: &[&str],
) -> redis::RedisResult<T> {
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query(c)
}

/// How the set is built: arguments for the data nodes (an ACL user), lines for every
/// Sentinel's configuration, and TLS everywhere the agent connects (replication included).
#[derive(Default)]
pub struct SentinelOpts<'a> {
    pub data_args: Vec<String>,
    pub sentinel_conf: String,
    pub tls: Option<&'a Certs>,
}

impl SentinelSet {
    pub fn start(dir: &Path, o: &SentinelOpts<'_>) -> SentinelSet {
        let (m, r) = (free_port(), free_port());
        let port_arg = if o.tls.is_some() {
            "--tls-port"
        } else {
            "--port"
        };
        let data = |port: u16, replica_of: Option<u16>| {
            let mut a = vec![port_arg.to_string(), port.to_string()];
            if let Some(c) = o.tls {
                a.extend(c.server_args(port, false)[2..].iter().cloned());
                a.extend(["--tls-replication".into(), "yes".into()]);
            }
            if let Some(p) = replica_of {
                a.extend(["--replicaof".into(), "127.0.0.1".into(), p.to_string()]);
            }
            a.extend_from_slice(&o.data_args);
            a
        };
        let master = Redis::start_with(Server::Redis70, &dir.join("master"), false, &data(m, None));
        let replica = Redis::start_with(
            Server::Redis70,
            &dir.join("replica"),
            false,
            &data(r, Some(m)),
        );
        let mut set = SentinelSet {
            servers: vec![master, replica],
            data_ports: vec![m, r],
            sentinels: Vec::new(),
            ports: Vec::new(),
            tls_ports: Vec::new(),
            dir: dir.to_path_buf(),
        };
        for i in 0..3 {
            set.spawn_sentinel(i, m, o);
        }
        set.wait_ready();
        set
    }

    fn spawn_sentinel(&mut self, i: usize, master_port: u16, o: &SentinelOpts<'_>) {
        let port = free_port();
        let d = self.dir.join(format!("sentinel{i}"));
        std::fs::create_dir_all(&d).unwrap();
        let mut conf = format!(
            "port {port}\nbind 127.0.0.1\ndir {}\nlogfile {}\n\
             sentinel monitor {MASTER} 127.0.0.1 {master_port} 2\n\
             sentinel down-after-milliseconds {MASTER} 2000\n\
             sentinel failover-timeout {MASTER} 5000\n{}\n",
            d.display(),
            d.join("sentinel.log").display(),
            o.sentinel_conf
        );
        if let Some(c) = o.tls {
            let tls = free_port();
            conf += &format!(
                "tls-port {tls}\ntls-cert-file {}\ntls-key-file {}\ntls-ca-cert-file {}\n\
                 tls-auth-clients no\ntls-replication yes\n",
                c.server_cert.display(),
                c.server_key.display(),
                c.ca.display()
            );
            self.tls_ports.push(tls);
        }
        let path = d.join("sentinel.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new(Server::Redis70.binary())
            .arg(&path)
            .arg("--sentinel")
            .stdin(Stdio::null())
            .spawn()
            .expect("start a sentinel");
        self.sentinels.push(child);
        self.ports.push(port);
    }

    /// The replica is in sync, and every Sentinel knows the master, the replica and the two
    /// other Sentinels.
    fn wait_ready(&self) {
        let ok = wait_until(Duration::from_secs(30), || {
            run::<String>(&mut self.servers[1].conn(), &["INFO", "replication"])
                .is_ok_and(|i| i.contains("master_link_status:up"))
        });
        assert!(ok, "the replica never synced");
        let ok = wait_until(Duration::from_secs(30), || {
            self.plain_nodes().iter().all(|s| {
                let replicas: Vec<Vec<String>> =
                    query(s, &["SENTINEL", "REPLICAS", MASTER]).unwrap_or_default();
                let others: Vec<Vec<String>> =
                    query(s, &["SENTINEL", "SENTINELS", MASTER]).unwrap_or_default();
                replicas.len() == 1 && others.len() == 2
            })
        });
        assert!(ok, "the Sentinels never saw the replica and each other");
    }

    fn plain_nodes(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// The Sentinels as the agent reaches them, `host:port` (TLS ports with TLS).
    pub fn nodes(&self) -> Vec<String> {
        if self.tls_ports.is_empty() {
            self.plain_nodes()
        } else {
            self.tls_ports
                .iter()
                .map(|p| format!("127.0.0.1:{p}"))
                .collect()
        }
    }

    /// The master's `host:port`, as the first Sentinel names it.
    pub fn master(&self) -> String {
        let v: Vec<String> = query(
            &self.plain_nodes()[0],
            &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER],
        )
        .unwrap();
        format!("{}:{}", v[0], v[1])
    }

    /// The data node at `addr`, by its unix socket.
    pub fn server_at(&self, addr: &str) -> &Redis {
        let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
        let i = self.data_ports.iter().position(|p| *p == port).unwrap();
        &self.servers[i]
    }

    /// What `ROLE` says the data node at `addr` is.
    pub fn role(&self, addr: &str) -> Option<String> {
        let v: Vec<redis::Value> = run(&mut self.server_at(addr).conn(), &["ROLE"]).ok()?;
        redis::from_redis_value(v.first()?.clone()).ok()
    }

    /// `SENTINEL FAILOVER`, then waits until a Sentinel names the other server and it says it
    /// is the master. Returns the new master.
    pub fn failover(&self) -> String {
        let old = self.master();
        // Everything written so far reached the replica (a real failover may lose the rest).
        let synced: i64 = run(&mut self.server_at(&old).conn(), &["WAIT", "1", "5000"]).unwrap();
        assert_eq!(synced, 1, "the replica did not acknowledge the writes");
        let _: String = query(&self.plain_nodes()[0], &["SENTINEL", "FAILOVER", MASTER]).unwrap();
        let mut new = old.clone();
        let ok = wait_until(Duration::from_secs(30), || {
            new = self.master();
            new != old && self.role(&new).as_deref() == Some("master")
        });
        assert!(ok, "no failover from {old}");
        new
    }
}

impl Drop for SentinelSet {
    fn drop(&mut self) {
        for c in &mut self.sentinels {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Three masters in cluster mode, all slots assigned.
pub struct Cluster {
    pub nodes: Vec<Redis>,
    pub ports: Vec<u16>,
}

impl Cluster {
    /// Three nodes, each with `extra` arguments (an ACL user, say).
    pub fn start(dir: &Path, extra: &[String]) -> Cluster {
        let mut nodes = Vec::new();
        let mut ports = Vec::new();
        for i in 0..3 {
            let (port, bus) = (free_port(), free_port());
            let d = dir.join(format!("node{i}"));
            let args: Vec<String> = [
                "--port",
                &port.to_string(),
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                &bus.to_string(),
                "--cluster-config-file",
                d.join("nodes.conf").to_str().unwrap(),
                "--cluster-node-timeout",
                "3000",
            ]
            .iter()
            .map(|s| s.to_string())
            .chain(extra.iter().cloned())
            .collect();
            nodes.push(Redis::start_with(Server::Redis70, &d, false, &args));
            ports.push(port);
        }
        let c = Cluster { nodes, ports };
        let seeds = c.seeds();
        let (rc, out, err) = sh(Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&seeds)
            .args(["--cluster-replicas", "0", "--cluster-yes"]));
        assert_eq!(rc, 0, "redis-cli --cluster create: {out}{err}");
        let ok = wait_until(Duration::from_secs(30), || {
            seeds.iter().all(|s| {
                query::<String>(s, &["CLUSTER", "INFO"])
                    .is_ok_and(|i| i.contains("cluster_state:ok"))
            })
        });
        assert!(ok, "the cluster never reached cluster_state:ok");
        c
    }

    /// The nodes, `host:port`.
    pub fn seeds(&self) -> Vec<String> {
        self.ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect()
    }

    /// `CLUSTER KEYSLOT key`.
    pub fn slot(&self, key: &str) -> u16 {
        query(&self.seeds()[0], &["CLUSTER", "KEYSLOT", key]).unwrap()
    }

    /// The node (index) that owns `slot`.
    pub fn owner(&self, slot: u16) -> usize {
        let shards: Vec<redis::Value> = query(&self.seeds()[0], &["CLUSTER", "SLOTS"]).unwrap();
        for s in shards {
            let v: Vec<redis::Value> = redis::from_redis_value(s).unwrap();
            let lo: u16 = redis::from_redis_value(v[0].clone()).unwrap();
            let hi: u16 = redis::from_redis_value(v[1].clone()).unwrap();
            let node: Vec<redis::Value> = redis::from_redis_value(v[2].clone()).unwrap();
            let port: u16 = redis::from_redis_value(node[1].clone()).unwrap();
            if (lo..=hi).contains(&slot) {
                return self.ports.iter().position(|p| *p == port).unwrap();
            }
        }
        panic!("slot {slot} has no owner")
    }

    fn id(&self, node: usize) -> String {
        query(&self.seeds()[node], &["CLUSTER", "MYID"]).unwrap()
    }

    /// Moves `slot` and its keys from its owner to node `to`, as an operator would (SETSLOT
    /// IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE); returns how many keys moved.
    pub fn migrate_slot(&self, slot: u16, to: usize) -> usize {
        let from = self.owner(slot);
        assert_ne!(from, to);
        let (src, dst) = (&self.seeds()[from], &self.seeds()[to]);
        let (src_id, dst_id) = (self.id(from), self.id(to));
        let s = slot.to_string();
        let _: String = query(dst, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &src_id]).unwrap();
        let _: String = query(src, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &dst_id]).unwrap();
        let mut moved = 0;
        loop {
            let keys: Vec<String> = query(src, &["CLUSTER", "GETKEYSINSLOT", &s, "100"]).unwrap();
            if keys.is_empty() {
                break;
            }
            let port = self.ports[to].to_string();
            let mut args = vec!["MIGRATE", "127.0.0.1", &port, "", "0", "5000", "KEYS"];
            args.extend(keys.iter().map(String::as_str));
            let _: String = query(src, &args).unwrap();
            moved += keys.len();
        }
        for n in self.seeds() {
            let _: String = query(&n, &["CLUSTER", "SETSLOT", &s, "NODE", &dst_id]).unwrap();
        }
        moved
    }
}
