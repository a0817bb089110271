//! Test harness: a real `systemd --user` manager ([`harness`]) and a real Redis or Valkey
//! server on a private unix socket ([`server`]), with the real `quantum-watchdog` binary and
//! the real test consumer (examples/qw-consumer.rs) in a scenario's [`env`]. Needs root,
//! `unshare`, `redis-server` and `dbus-user-session` (`.ci/run` installs them).

#![allow(dead_code)]

pub mod deploy;
pub mod env;
pub mod harness;
pub mod process;
pub mod server;
pub mod systemd;

#[allow(unused_imports)]
pub use deploy::*;
pub use env::*;
pub use harness::*;
pub use process::*;
pub use server::*;
pub use systemd::*;

pub const STREAM: &str = "quantum:stream:trade.intent";
pub const GROUP: &str = "quantum:group:execution:trade.intent";
/// The consumer unit most scenarios run, and its consumer name prefix.
pub const UNIT: &str = "quantum-execution.service";
pub const PREFIX: &str = "execution";

/// Declares a scenario's tests, one per server: `scenario!(name: fn_name = Server, …)`, run
/// by `in_harness`; `scenario!(with RUNNER; name: …)` runs them by another harness function
/// of the same shape (`in_harness_alone`: no other harness test running, it measures server
/// time; a fleet's host name).
#[macro_export]
macro_rules! scenario {
    ($name:ident: $($test:ident = $server:ident),+) => {
        scenario!(with in_harness; $name: $($test = $server),+);
    };
    (with $run:path; $name:ident: $($test:ident = $server:ident),+) => {
        mod $name {
            use super::*;
            $(
                #[test]
                fn $test() {
                    $run(concat!(stringify!($name), "::", stringify!($test)), Server::$server, super::$name);
                }
            )+
        }
    };
}

/// A detection scenario: on every server of the version matrix.
#[macro_export]
macro_rules! on_all {
    ($name:ident) => {
        scenario!($name: redis62 = Redis62, redis70 = Redis70, valkey8 = Valkey8, redis80 = Redis80);
    };
}

/// On Debian's Redis 7.0 and on Valkey 8 (7.2+ semantics).
#[macro_export]
macro_rules! on_both {
    ($name:ident) => {
        scenario!($name: redis70 = Redis70, valkey8 = Valkey8);
    };
}

#[macro_export]
macro_rules! on_redis70 {
    ($name:ident) => {
        scenario!($name: redis70 = Redis70);
    };
}
