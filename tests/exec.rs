//! `quantum-watchdog exec`: a consumer under systemd's own watchdog — a hang restarted by
//! systemd (Result=watchdog), an idle pipeline left alone, orphans reaped, stops mirrored,
//! readiness, Redis gone, and the agent beside it never restarting the unit. Against a real
//! systemd user manager and a real server. See tests/common/mod.rs.

#[macro_use]
mod common;

use std::time::{Duration, Instant};

use common::*;

/// The consumer unit, wrapped: `Type=notify`, `WatchdogSec=`, `exec -- <command>`.
/// `command` defaults to the test consumer; `extra` lands in `[Service]`.
fn exec_unit(
    env: &Env,
    vars: &[(&str, &str)],
    exec_args: &str,
    command: Option<&str>,
    extra: &str,
) {
    exec_unit_in(env, "enforce", vars, exec_args, command, extra)
}

/// As [`exec_unit`], the wrapper in `mode`.
fn exec_unit_in(
    env: &Env,
    mode: &str,
    vars: &[(&str, &str)],
    exec_args: &str,
    command: Option<&str>,
    extra: &str,
) {
    let cfg = env.base.join("exec.toml");
    std::fs::write(&cfg, env.config(mode, &[(UNIT, PREFIX)], "")).unwrap();
    let consumer = format!(
        "{} {} {STREAM} {GROUP} {PREFIX} {}",
        consumer_bin().display(),
        env.consumer_url(),
        env.ack_log(UNIT).display()
    );
    let mut envs = String::new();
    for (k, v) in vars {
        envs.push_str(&format!("Environment={k}={v}\n"));
    }
    let text = format!(
        "[Unit]\nDescription=wrapped consumer\nStartLimitIntervalSec=0\n[Service]\nType=notify\n\
         NotifyAccess=main\nWatchdogSec=3s\nKillMode=mixed\nRestart=on-failure\nRestartSec=3\nTimeoutStopSec=10\n{envs}\
         ExecStart={} --user --config {} exec {exec_args} -- {}\n{extra}\n",
        bin().display(),
        cfg.display(),
        command.map(str::to_string).unwrap_or(consumer),
    );
    std::fs::write(env.unit_dir.join(UNIT), text).unwrap();
    assert_eq!(systemctl(&["daemon-reload"]).0, 0);
}

/// The wrapped child: the one process whose consumer is in the group.
fn child_pid(env: &Env) -> u32 {
    let mut pid = 0;
    let found = wait_until(Duration::from_secs(15), || {
        pid = env
            .consumers()
            .keys()
            .filter(|n| n.starts_with(PREFIX))
            .filter_map(|n| n.rsplit('-').next()?.parse::<u32>().ok())
            .find(|p| std::path::Path::new(&format!("/proc/{p}")).exists())
            .unwrap_or(0);
        pid != 0
    });
    assert!(found, "no live consumer: {:?}", env.consumers());
    pid
}

/// What the wrapper logged (the harness's private journald).
fn journal_of_unit() -> String {
    let (_, out, err) = sh(std::process::Command::new("journalctl").args([
        "--no-pager",
        "-o",
        "cat",
        "SYSLOG_IDENTIFIER=quantum-watchdog",
    ]));
    format!("{out}{err}")
}

/// As `scenario!`, with the harness's private journald running.
macro_rules! with_journal {
    ($name:ident: $($test:ident = $server:ident),+) => {
        mod $name {
            use super::*;
            $(
                #[test]
                fn $test() {
                    in_harness_with(concat!(stringify!($name), "::", stringify!($test)), Server::$server, true, super::$name);
                }
            )+
        }
    };
}

/// The child hangs while work waits: the wrapper stops pinging, systemd kills it with
/// `WatchdogSignal=` (Result=watchdog) and restarts it; the new child gets the old consumer's
/// entries, the old consumer is deleted, every entry is processed. The agent beside it
/// reports the unit and never restarts it.
fn hang_is_a_watchdog_restart(env: &mut Env) {
    env.create_group();
    exec_unit(env, &[("QW_WORK_MS", "20")], "", None, "");
    env.start(UNIT);
    let wrapper = main_pid(UNIT);
    let old = child_pid(env);
    assert_ne!(old, wrapper, "the child is not the main process");
    let agent = env.agent(&env.config("enforce", &[(UNIT, PREFIX)], ""));
    env.xadd(1, 600);
    std::thread::sleep(Duration::from_millis(500));
    let stopped = Instant::now();
    kill("STOP", old);
    // Result=watchdog and the signal are visible until the restart (RestartSec=3).
    let mut seen = (String::new(), String::new());
    assert!(
        wait_until(Duration::from_secs(30), || {
            seen = (show(UNIT, "Result"), show(UNIT, "ExecMainStatus"));
            seen.0 == "watchdog"
        }),
        "never Result=watchdog: {seen:?}\n{}",
        journal_of_unit()
    );
    let killed = stopped.elapsed();
    assert_eq!(
        seen.1, "6",
        "the wrapper ended as its child did: by SIGABRT"
    );
    assert!(
        wait_until(Duration::from_secs(20), || show(UNIT, "NRestarts") == "1"
            && main_pid(UNIT) != 0
            && main_pid(UNIT) != wrapper),
        "not restarted"
    );
    let old_name = env.consumer_name(PREFIX, old);
    assert!(
        wait_until(Duration::from_secs(30), || !env
            .consumers()
            .contains_key(&old_name)
            && env.acked(UNIT).keys().filter(|n| **n <= 600).count() == 600
            && env.group_pending() == 0),
        "consumers {:?}, acked {}\n{}",
        env.consumers(),
        env.acked(UNIT).len(),
        journal_of_unit()
    );
    let consuming = stopped.elapsed();
    let log = agent.log();
    assert!(!log.contains("restarting quantum-execution"), "{log}");
    assert!(
        log.contains("restarted by systemd's watchdog") || !log.contains("-> hung"),
        "{log}"
    );
    assert!(journal_of_unit().contains("triggering systemd's watchdog"));
    println!(
        "MEASURE exec-hang {:?} sigstop_to_killed={killed:?} sigstop_to_all_acked={consuming:?}",
        env.server()
    );
}
with_journal!(hang_is_a_watchdog_restart: redis70 = Redis70, valkey8 = Valkey8);

/// Signals forwarded to a child that survives them: SIGQUIT (a thread dump) changes nothing,
/// SIGTERM that the child ignores is a drain of at most `--stop-timeout` (3 s here), and a hang
/// after both is still caught by systemd's watchdog.
fn a_signal_is_not_a_stop(env: &mut Env) {
    env.create_group();
    let consumer = format!(
        "/bin/bash -c 'trap \"\" QUIT TERM; exec {} {} {STREAM} {GROUP} {PREFIX} {}'",
        consumer_bin().display(),
        env.consumer_url(),
        env.ack_log(UNIT).display()
    );
    exec_unit(
        env,
        &[("QW_WORK_MS", "20")],
        "--stop-timeout 3s",
        Some(&consumer),
        "",
    );
    env.start(UNIT);
    let wrapper = main_pid(UNIT);
    let child = child_pid(env);
    env.xadd(1, 600);
    std::thread::sleep(Duration::from_millis(500));
    kill("QUIT", wrapper);
    kill("TERM", wrapper);
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        show(UNIT, "ActiveState"),
        "active",
        "the child survives both"
    );
    let stopped = Instant::now();
    kill("STOP", child);
    // hung_after 4s, confirm 2 looks at 1s, the drain 3s from the SIGTERM, WatchdogSec 3s.
    assert!(
        wait_until(Duration::from_secs(25), || show(UNIT, "Result")
            == "watchdog"),
        "a hang after SIGQUIT and SIGTERM was never triggered ({}):\n{}",
        show(UNIT, "ActiveState"),
        journal_of_unit()
    );
    println!(
        "MEASURE exec hang after SIGQUIT+SIGTERM caught after {:?}",
        stopped.elapsed()
    );
}
with_journal!(a_signal_is_not_a_stop: redis70 = Redis70);

/// `systemctl stop` of a child that takes 8 s to stop and reads nothing meanwhile while work
/// waits (past `hung_after` 4 s, within `TimeoutStopSec=10s` and the default `--stop-timeout`
/// of 90 s): systemd honours WATCHDOG=trigger during a stop, so the wrapper sends none, and
/// the stop ends clean.
fn a_slow_stop_is_not_cut_short(env: &mut Env) {
    env.create_group();
    let consumer = format!(
        "/bin/bash -c '{} {} {STREAM} {GROUP} {PREFIX} {} & c=$$!; \
         trap \"kill -STOP $$c; sleep 8; kill -KILL $$c; exit 0\" TERM; wait; wait'",
        consumer_bin().display(),
        env.consumer_url(),
        env.ack_log(UNIT).display()
    );
    exec_unit(env, &[("QW_WORK_MS", "20")], "", Some(&consumer), "");
    env.start(UNIT);
    child_pid(env);
    env.xadd(1, 600);
    std::thread::sleep(Duration::from_millis(500));
    let t = Instant::now();
    assert_eq!(systemctl(&["stop", UNIT]).0, 0);
    let took = t.elapsed();
    let seen = (show(UNIT, "ActiveState"), show(UNIT, "Result"));
    assert_eq!(
        seen,
        ("inactive".to_string(), "success".to_string()),
        "a slow stop was cut short after {took:?}:\n{}",
        journal_of_unit()
    );
    assert!(took >= Duration::from_secs(7), "{took:?}");
    assert!(!journal_of_unit().contains("triggering systemd's watchdog"));
}
with_journal!(a_slow_stop_is_not_cut_short: redis70 = Redis70);

/// Two units share a consumer template in one group. The sibling runs, holding entries while
/// it works on them: neither the wrapper of the other unit at its start nor
/// `recover --unit <the other>` (with `claim_policy = "park"`) takes them — the sibling's PID
/// runs in the sibling, so its consumer lives.
fn a_sibling_units_entries_are_not_taken(env: &mut Env) {
    let sibling = "quantum-sibling.service";
    env.create_group();
    env.xadd(1, 3);
    env.consumer_unit(sibling, PREFIX, &[("QW_WORK_MS", "120000")], "");
    env.start(sibling);
    let theirs = env.consumer_name(PREFIX, main_pid(sibling));
    assert!(
        wait_until(Duration::from_secs(10), || env
            .consumers()
            .get(&theirs)
            .is_some_and(|c| c.0 == 3)),
        "{:?}",
        env.consumers()
    );
    let both = env.config("enforce", &[(UNIT, PREFIX), (sibling, PREFIX)], "");
    exec_unit(env, &[], "--ready-timeout 2s", None, "");
    std::fs::write(env.base.join("exec.toml"), &both).unwrap();
    env.start(UNIT);
    let ours = env.consumer_name(PREFIX, child_pid(env));
    std::thread::sleep(Duration::from_secs(4));
    let held = |name: &str| env.consumers().get(name).map(|c| c.0);
    assert_eq!(
        held(&theirs),
        Some(3),
        "the wrapper took a live sibling's entries: {:?}\n{}",
        env.consumers(),
        journal_of_unit()
    );
    assert!(env.acked(UNIT).is_empty(), "{:?}", env.acked(UNIT));
    let park = env.config(
        "enforce",
        &[(UNIT, PREFIX), (sibling, PREFIX)],
        "claim_policy = \"park\"\n",
    );
    let t = Instant::now();
    let (rc, log) = env.oneshot(&park, &["recover", "--unit", UNIT]);
    let took = t.elapsed();
    assert_eq!(rc, 0, "{log}");
    assert_eq!(held(&theirs), Some(3), "recover --unit parked them: {log}");
    assert!(
        !env.consumers().keys().any(|n| n.contains("parked")),
        "{:?}",
        env.consumers()
    );
    assert!(held(&ours).is_some(), "{:?}", env.consumers());
    println!("MEASURE recover --unit beside a live sibling took {took:?}");
}
with_journal!(a_sibling_units_entries_are_not_taken: redis70 = Redis70);

/// One entry kills every child that reads it (SIGKILL); systemd restarts the wrapped unit each
/// time and each new wrapper hands the dead child's entries to its own. The wrapper ends with
/// its child, so the streak lives in Redis: after `poison_after_crashes = 3` deaths on the
/// same entry, the dying wrapper moves it to the dead-letter stream, and the rest flows — no
/// agent involved, and systemd's start limit never reached.
fn crash_loop_under_exec_is_quarantined(env: &mut Env) {
    env.create_group();
    exec_unit(
        env,
        &[("QW_CRASH_ON", "7")],
        "--ready-timeout 1s",
        None,
        "Restart=always\nRestartSec=1",
    );
    let cfg = env.config("enforce", &[(UNIT, PREFIX)], "poison_after_crashes = 3\n");
    std::fs::write(env.base.join("exec.toml"), cfg).unwrap();
    env.start(UNIT);
    child_pid(env);
    let first = Instant::now();
    env.xadd(1, 20);
    let flowing = || env.acked(UNIT).keys().filter(|n| **n <= 20).count() == 19;
    let dead = || env.entries(&format!("{STREAM}:dead"));
    assert!(
        wait_until(Duration::from_secs(60), || flowing()
            && env.group_pending() == 0),
        "acked {:?}, pending {}, dead {:?}, NRestarts {}\n{}",
        env.acked(UNIT),
        env.group_pending(),
        dead(),
        show(UNIT, "NRestarts"),
        journal_of_unit()
    );
    let took = first.elapsed();
    let dead = dead();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let f = &dead[0].1;
    assert_eq!(f["n"], "7");
    assert_eq!(f["reason"], "crash-loop", "{f:?}");
    assert_eq!(f["crashes"], "3", "{f:?}");
    assert_eq!(f["exit-status"], "killed KILL", "{f:?}");
    assert!(!env.acked(UNIT).contains_key(&7));
    let restarts: u32 = show(UNIT, "NRestarts").parse().unwrap();
    assert!(restarts <= 4, "NRestarts {restarts}");
    assert_eq!(show(UNIT, "ActiveState"), "active");
    println!(
        "MEASURE exec crash loop: entry 7 quarantined, the rest flowing after {took:?} ({restarts} restarts)"
    );
}
with_journal!(crash_loop_under_exec_is_quarantined: redis70 = Redis70);

/// No traffic for three times `hung_after`: idle with no work waiting is healthy.
fn idle_never_triggers(env: &mut Env) {
    env.create_group();
    exec_unit(env, &[], "--ready-timeout 2s", None, "");
    env.start(UNIT);
    let wrapper = main_pid(UNIT);
    env.xadd(1, 3);
    std::thread::sleep(Duration::from_secs(13));
    assert_eq!(main_pid(UNIT), wrapper);
    assert_eq!(show(UNIT, "NRestarts"), "0");
    assert!(
        show(UNIT, "StatusText").starts_with("exec enforce: healthy: "),
        "{}",
        show(UNIT, "StatusText")
    );
}
scenario!(idle_never_triggers: redis70 = Redis70, valkey8 = Valkey8);

/// The processes of the unit's cgroup (from `/proc/*/cgroup`) and their states.
fn unit_processes() -> Vec<(u32, char)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cg = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap_or_default();
        if !cg
            .lines()
            .any(|l| l.starts_with("0::") && l.ends_with(&format!("/{UNIT}")))
        {
            continue;
        }
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit(')')
            .next()
            .and_then(|r| r.trim_start().chars().next());
        out.push((pid, state.unwrap_or('?')));
    }
    out
}

/// Orphans of the service (double-forked daemons) are reaped by the wrapper: no zombie stays
/// in the cgroup, and the unit stops cleanly.
fn orphans_are_reaped(env: &mut Env) {
    env.create_group();
    let cmd = format!(
        "/bin/bash -c '(sleep 1 &); (sleep 2 &); (sleep 300 &); exec {} {} {STREAM} {GROUP} {PREFIX} {}'",
        consumer_bin().display(),
        env.consumer_url(),
        env.ack_log(UNIT).display()
    );
    exec_unit(env, &[], "--ready-timeout 2s", Some(&cmd), "");
    env.start(UNIT);
    std::thread::sleep(Duration::from_secs(4));
    let procs = unit_processes();
    let zombies: Vec<&(u32, char)> = procs.iter().filter(|(_, st)| *st == 'Z').collect();
    assert!(zombies.is_empty(), "zombies {zombies:?} in {procs:?}");
    assert_eq!(procs.len(), 3, "wrapper, consumer, sleep 300: {procs:?}");
    assert_eq!(systemctl(&["stop", UNIT]).0, 0);
    assert_eq!(show(UNIT, "ActiveState"), "inactive");
    assert_eq!(show(UNIT, "Result"), "success");
}
scenario!(orphans_are_reaped: redis70 = Redis70);

/// `systemctl stop`: the child gets SIGTERM; ending on it is a clean stop, an exit code or
/// another signal is a failure systemd shows as it would for the unwrapped service. At stop the
/// child's empty consumer is deleted.
fn stop_mirrors_the_child(env: &mut Env) {
    env.create_group();
    exec_unit(env, &[], "--ready-timeout 2s", None, "");
    env.start(UNIT);
    let child = child_pid(env);
    let name = env.consumer_name(PREFIX, child);
    assert_eq!(systemctl(&["stop", UNIT]).0, 0);
    assert_eq!(show(UNIT, "ActiveState"), "inactive");
    assert_eq!(show(UNIT, "Result"), "success");
    assert!(
        !env.consumers().contains_key(&name),
        "its empty consumer deleted at stop"
    );
    for (cmd, result, code, status) in [
        (
            "/bin/bash -c 'trap \"exit 3\" TERM; sleep 300 & wait'",
            "exit-code",
            "1",
            "3",
        ),
        (
            "/bin/bash -c 'sleep 2; kill -KILL $$$$'",
            "signal",
            "2",
            "9",
        ),
    ] {
        let _ = systemctl(&["reset-failed", UNIT]);
        exec_unit(env, &[], "--ready-timeout 1s", Some(cmd), "Restart=no");
        env.start(UNIT);
        if result == "exit-code" {
            std::thread::sleep(Duration::from_millis(500));
            let _ = systemctl(&["stop", UNIT]);
        }
        assert!(
            wait_until(Duration::from_secs(10), || show(UNIT, "ActiveState")
                == "failed"),
            "{cmd}: {}",
            show(UNIT, "ActiveState")
        );
        let seen = (
            show(UNIT, "Result"),
            show(UNIT, "ExecMainCode"),
            show(UNIT, "ExecMainStatus"),
        );
        let want = (result.to_string(), code.to_string(), status.to_string());
        assert_eq!(seen, want, "{cmd}\n{}", journal_of_unit());
    }
}
with_journal!(stop_mirrors_the_child: redis70 = Redis70);

/// `systemctl start` returns once the consumer is in its group; a consumer that is not listed
/// (one that has not read yet; before Redis 7.2 one blocked on a quiet stream) makes it ready
/// only at `--ready-timeout`, with a warning.
fn readiness_waits_for_the_consumer(env: &mut Env) {
    env.create_group();
    env.xadd(1, 5);
    exec_unit(env, &[], "--ready-timeout 20s", None, "");
    let t = Instant::now();
    env.start(UNIT);
    let took = t.elapsed();
    let child = child_pid(env);
    assert!(
        env.consumers()
            .contains_key(&env.consumer_name(PREFIX, child))
    );
    assert!(took < Duration::from_secs(10), "{took:?}");
    // `quantum-watchdog exec` became the small wrapper program, in the same process.
    let exe = std::fs::read_link(format!("/proc/{}/exe", main_pid(UNIT))).unwrap();
    assert!(exe.ends_with("quantum-watchdog-exec"), "{exe:?}");
    assert_eq!(systemctl(&["stop", UNIT]).0, 0);
    // A consumer that never reads is never listed: ready by the timeout, with a warning.
    exec_unit(env, &[("QW_QUIET", "1")], "--ready-timeout 3s", None, "");
    let t = Instant::now();
    env.start(UNIT);
    let took = t.elapsed();
    assert!(took >= Duration::from_secs(3), "{took:?}");
    assert!(
        journal_of_unit().contains("ready anyway"),
        "{}",
        journal_of_unit()
    );
    println!("MEASURE exec-ready-timeout {:?} {took:?}", env.server());
}
with_journal!(readiness_waits_for_the_consumer: redis70 = Redis70);

/// Redis goes away mid-run: no trigger, STATUS says so; when it returns, the look recovers.
fn redis_gone_is_no_hang(env: &mut Env) {
    env.create_group();
    exec_unit(env, &[], "--ready-timeout 2s", None, "");
    env.start(UNIT);
    let wrapper = main_pid(UNIT);
    child_pid(env);
    env.redis.stop();
    assert!(
        wait_until(Duration::from_secs(10), || show(UNIT, "StatusText")
            .contains("redis unreachable")),
        "{}",
        show(UNIT, "StatusText")
    );
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(main_pid(UNIT), wrapper);
    assert_eq!(show(UNIT, "NRestarts"), "0");
    env.redis.spawn();
    assert!(
        wait_until(Duration::from_secs(20), || show(UNIT, "StatusText")
            .starts_with("exec enforce: healthy")),
        "{}",
        show(UNIT, "StatusText")
    );
    assert_eq!(main_pid(UNIT), wrapper);
}
scenario!(redis_gone_is_no_hang: redis70 = Redis70);

/// A wrapper in observe mode triggers nothing and says so in its status: the agent beside it
/// restarts the hung unit as any other.
fn observe_wrapper_leaves_it_to_the_agent(env: &mut Env) {
    env.create_group();
    exec_unit_in(env, "observe", &[("QW_WORK_MS", "20")], "", None, "");
    env.start(UNIT);
    let wrapper = main_pid(UNIT);
    let old = child_pid(env);
    assert!(
        wait_until(Duration::from_secs(5), || show(UNIT, "StatusText")
            .starts_with("exec observe:")),
        "{}",
        show(UNIT, "StatusText")
    );
    let agent = env.agent(&env.config("enforce", &[(UNIT, PREFIX)], ""));
    env.xadd(1, 600);
    std::thread::sleep(Duration::from_millis(500));
    kill("STOP", old);
    assert!(
        wait_until(Duration::from_secs(30), || main_pid(UNIT) != wrapper),
        "not restarted:\n{}",
        tail(&agent.log(), 30)
    );
    assert!(agent.log().contains("restarting quantum-execution.service"));
    assert_ne!(show(UNIT, "Result"), "watchdog");
}
scenario!(observe_wrapper_leaves_it_to_the_agent: redis70 = Redis70);
