//! End-to-end scenarios against a real systemd user manager and a real Redis/Valkey, each
//! asserting on systemd's and the server's own state. See tests/common/mod.rs.

#[macro_use]
mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::*;

/// Scenario 1: the consumer hangs (SIGSTOP) while messages arrive.
fn hung_consumer_is_restarted(env: &mut Env) {
    let pid1 = started_consumer(env, "100");
    let agent = env.agent(&env.config("enforce", &[(UNIT, PREFIX)], ""));
    env.xadd(1, 40);
    // Let it take a batch (it holds entries in flight), then hang it with work waiting.
    let me = env.consumer_name(PREFIX, pid1);
    assert!(wait_until(Duration::from_secs(10), || env
        .consumers()
        .get(&me)
        .is_some_and(|c| c.0 > 0)));
    kill("STOP", pid1);
    let stopped = Instant::now();
    env.xadd(41, 20);
    // Restarted within hung_after + 2 × interval + startup_grace.
    let bound = Duration::from_secs(4 + 2 + 2);
    assert!(
        wait_until(bound + Duration::from_secs(5), || {
            let p = main_pid(UNIT);
            p != 0 && p != pid1 && show(UNIT, "ActiveState") == "active"
        }),
        "not restarted; agent log:\n{}",
        tail(&agent.log(), 60)
    );
    let latency = stopped.elapsed();
    println!(
        "MEASURE scenario1 {:?} detection_latency_ms={} bound_ms={}",
        env.server(),
        latency.as_millis(),
        bound.as_millis()
    );
    assert!(
        latency <= bound,
        "restart took {latency:?}, bound {bound:?}"
    );
    let pid2 = main_pid(UNIT);
    assert!(
        agent.log().contains("restarting quantum-execution.service"),
        "{}",
        agent.log()
    );
    // The old consumer's entries are handed to the new consumer, then it is deleted.
    let new = env.consumer_name(PREFIX, pid2);
    assert!(
        wait_until(Duration::from_secs(20), || {
            let c = env.consumers();
            !c.contains_key(&me)
                && env.group_pending() == 0
                && env.acked(UNIT).keys().filter(|n| **n <= 60).count() == 60
        }),
        "consumers {:?}, pending {}, acked {}; agent log:\n{}",
        env.consumers(),
        env.group_pending(),
        env.acked(UNIT).len(),
        tail(&agent.log(), 60)
    );
    assert!(env.consumers().contains_key(&new));
    // Every message acknowledged; duplicates (recorded, then killed before XACK) are counted.
    let acked = env.acked(UNIT);
    let dups: u32 = acked.values().map(|c| c - 1).sum();
    println!(
        "MEASURE scenario1 {:?} messages=60 acked={} duplicates={dups}",
        env.server(),
        acked.keys().filter(|n| **n <= 60).count()
    );
    assert!(
        agent.log().contains("action=handoff") || agent.log().contains("claimed"),
        "{}",
        agent.log()
    );
}
on_all!(hung_consumer_is_restarted);

/// Scenario 2: a consumer idle for a long time with no traffic is never restarted.
fn idle_consumer_is_left_alone(env: &mut Env) {
    // Rereading its own pending list resets `idle` on 7.0; this one only blocks on new entries.
    let pid = started_consumer_with(env, &[("QW_PEL_EVERY_MS", "600000")]);
    env.xadd(1, 5);
    assert!(wait_until(Duration::from_secs(10), || env.group_pending()
        == 0
        && env.acked(UNIT).len() >= 5));
    let mut agent = env.agent(&env.config("enforce", &[(UNIT, PREFIX)], ""));
    // Cross hung_after (4s) twice, and then some.
    std::thread::sleep(Duration::from_secs(11));
    assert_eq!(
        main_pid(UNIT),
        pid,
        "restarted an idle consumer:\n{}",
        agent.log()
    );
    assert!(!agent.log().contains("restarting"), "{}", agent.log());
    let (st, rc) = env.status();
    assert_eq!(rc, 0, "{st:#}");
    assert_eq!(st["units"][0]["verdict"], "healthy", "{st:#}");
    let idle = st["units"][0]["bindings"][0]["idle_ms"].as_u64().unwrap();
    println!(
        "MEASURE scenario2 {:?} idle_ms={idle} verdict=healthy",
        env.server()
    );
    if !env.server().is_7_2_plus() {
        assert!(
            idle > 8000,
            "before 7.2 a blocked reader's idle grows: {idle}"
        );
    }
    assert!(agent.alive());
}
on_all!(idle_consumer_is_left_alone);

/// Scenario 3: observe mode with a hung consumer logs "would restart" and changes nothing.
fn observe_mode_changes_nothing(env: &mut Env) {
    let pid = started_consumer(env, "0");
    let me = env.consumer_name(PREFIX, pid);
    kill("STOP", pid);
    env.xadd(1, 10);
    let before = env.consumers();
    let agent = env.agent(&env.config("observe", &[(UNIT, PREFIX)], ""));
    assert!(
        agent.wait_log(
            "would restart quantum-execution.service",
            Duration::from_secs(15)
        ),
        "{}",
        agent.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(main_pid(UNIT), pid);
    assert_eq!(show(UNIT, "ActiveState"), "active");
    let after = env.consumers();
    assert_eq!(
        before.keys().collect::<Vec<_>>(),
        after.keys().collect::<Vec<_>>()
    );
    assert_eq!(before[&me].0, after[&me].0, "pending unchanged");
    let (st, rc) = env.status();
    assert_eq!(rc, 2, "hung is critical: {st:#}");
    kill("CONT", pid);
}
on_redis70!(observe_mode_changes_nothing);

/// Starts the consumer unit, waits for its consumer, then starts the agent in enforce mode.
fn consumer_then_agent(env: &Env) -> (u32, Agent) {
    env.consumer_unit(UNIT, PREFIX, &[], "");
    env.start(UNIT);
    let pid = main_pid(UNIT);
    wait_consumer(env, pid);
    (
        pid,
        env.agent(&env.config("enforce", &[(UNIT, PREFIX)], "")),
    )
}

/// Scenario 4: a dead consumer of a previous PID holding 10 000 entries.
fn dead_consumer_is_handed_off(env: &mut Env) {
    env.create_group();
    env.xadd(1, 10_000);
    let dead = env.consumer_name(PREFIX, dead_pid());
    env.hold(&dead, 10_000);
    assert_eq!(env.consumers()[&dead].0, 10_000);
    let (pid, agent) = consumer_then_agent(env);
    assert!(
        wait_until(Duration::from_secs(30), || !env
            .consumers()
            .contains_key(&dead)),
        "dead consumer still there: {:?}\n{}",
        env.consumers(),
        tail(&agent.log(), 40)
    );
    assert!(
        wait_until(Duration::from_secs(60), || env.group_pending() == 0),
        "pending {}",
        env.group_pending()
    );
    let acked = env.acked(UNIT);
    let missing: Vec<u64> = (1..=10_000)
        .filter(|n| !acked.contains_key(n))
        .take(10)
        .collect();
    assert!(missing.is_empty(), "lost: {missing:?}");
    let log = agent.log();
    let line = log
        .lines()
        .find(|l| l.contains("claimed 10000"))
        .unwrap_or_else(|| panic!("{log}"));
    println!(
        "MEASURE scenario4 {:?} {}",
        env.server(),
        line.split("claimed")
            .nth(1)
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
    );
    assert_eq!(main_pid(UNIT), pid, "a handoff is no reason to restart");
    let m = env.scrape();
    assert_eq!(
        env.metric(
            &m,
            "quantum_stream_recovery_claimed_total{unit=\"quantum-execution.service\""
        ),
        Some(10_000.0),
        "{m}"
    );
    assert_eq!(
        env.metric(&m, "quantum_stream_recovery_deleted_total{"),
        Some(1.0),
        "{m}"
    );
}
on_all!(dead_consumer_is_handed_off);

/// Scenario 5: a zombie of unknown liveness is deleted when it holds nothing, kept otherwise.
fn zombies_of_unknown_liveness(env: &mut Env) {
    let pid = started_consumer(env, "0");
    assert!(wait_until(Duration::from_secs(10), || env.group_pending() == 0));
    let mut c = env.redis.conn();
    let _: i64 = redis::cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg(STREAM)
        .arg(GROUP)
        .arg("execution-otherhost-4242")
        .query(&mut c)
        .unwrap();
    // A consumer of unknown liveness holding entries: stop ours so it can take them.
    assert_eq!(systemctl(&["stop", UNIT]).0, 0);
    env.xadd(1, 3);
    env.hold("recover-1234", 3);
    env.start(UNIT);
    let pid2 = main_pid(UNIT);
    assert_ne!(pid, pid2);
    let agent = env.agent(&env.config("enforce", &[(UNIT, PREFIX)], ""));
    assert!(
        wait_until(Duration::from_secs(15), || !env
            .consumers()
            .contains_key("execution-otherhost-4242")),
        "{:?}\n{}",
        env.consumers(),
        agent.log()
    );
    std::thread::sleep(Duration::from_secs(3));
    let cs = env.consumers();
    assert_eq!(
        cs.get("recover-1234").map(|c| c.0),
        Some(3),
        "kept with its entries: {cs:?}"
    );
    // The previous PID's consumer (holding nothing) is dead and gone.
    assert!(!cs.contains_key(&env.consumer_name(PREFIX, pid)), "{cs:?}");
    let (st, rc) = env.status();
    assert_eq!(rc, 1, "entries stuck on a zombie are a warning: {st:#}");
}
on_all!(zombies_of_unknown_liveness);

/// Scenario 6: a unit that hangs again after every restart exhausts its budget.
fn restart_budget_is_respected(env: &mut Env) {
    env.consumer_unit(UNIT, PREFIX, &[("QW_QUIET", "1")], "");
    env.create_group();
    env.start(UNIT);
    env.xadd(1, 5);
    let cfg = env
        .config("enforce", &[(UNIT, PREFIX)], "")
        .replace("max = 3", "max = 2");
    let agent = env.agent(&cfg);
    let mut pids = BTreeSet::new();
    let end = Instant::now() + Duration::from_secs(40);
    while Instant::now() < end {
        let p = main_pid(UNIT);
        if p != 0 {
            pids.insert(p);
        }
        if agent.log().contains("-> gave-up") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(agent.log().contains("-> gave-up"), "{}", agent.log());
    std::thread::sleep(Duration::from_secs(8));
    pids.insert(main_pid(UNIT));
    assert_eq!(
        pids.len(),
        3,
        "the first PID and two restarts: {pids:?}\n{}",
        agent.log()
    );
    assert_eq!(
        agent
            .log()
            .matches("restarting quantum-execution.service")
            .count(),
        2
    );
    let (st, rc) = env.status();
    assert_eq!(rc, 2, "{st:#}");
    assert_eq!(st["units"][0]["verdict"], "gave-up", "{st:#}");
}
on_redis70!(restart_budget_is_respected);

/// Scenario 7: Redis stops mid-run: no actions, status unknown, recovery when it returns.
fn redis_outage_means_no_action(env: &mut Env) {
    env.redis.stop();
    env.redis.aof = true;
    env.redis.spawn();
    let pid = started_consumer(env, "0");
    let mut agent = env.agent(&env.config("enforce", &[(UNIT, PREFIX)], ""));
    assert!(
        agent.wait_log("-> healthy", Duration::from_secs(10)),
        "{}",
        agent.log()
    );
    env.redis.stop();
    assert!(
        agent.wait_log(
            "reporting unknown, taking no action",
            Duration::from_secs(10)
        ),
        "{}",
        agent.log()
    );
    let (st, rc) = env.status();
    assert_eq!(rc, 3, "{st:#}");
    // quantum_watchdog_up means what an exporter's up means: both sides were readable.
    let m = env.scrape();
    assert_eq!(env.metric(&m, "quantum_watchdog_up "), Some(0.0), "{m}");
    std::thread::sleep(Duration::from_secs(6));
    assert!(agent.alive(), "the agent survives an outage");
    assert_eq!(main_pid(UNIT), pid, "no action on what cannot be seen");
    env.redis.spawn();
    assert!(
        agent.wait_log("redis: reachable again", Duration::from_secs(40)),
        "{}",
        agent.log()
    );
    env.xadd(1, 5);
    assert!(
        wait_until(Duration::from_secs(20), || env.status().1 == 0),
        "{:#}",
        env.status().0
    );
    assert!(agent.alive());
    assert!(!agent.log().contains("restarting"), "{}", agent.log());
    let m = env.scrape();
    assert_eq!(env.metric(&m, "quantum_watchdog_up "), Some(1.0), "{m}");
}
on_redis70!(redis_outage_means_no_action);

/// Scenario 9: the agent as a Type=notify unit with WatchdogSec=.
fn agent_under_systemd_watchdog(env: &mut Env) {
    started_consumer(env, "0");
    let cfg = env.write_config(&env.config("enforce", &[(UNIT, PREFIX)], ""));
    let unit = format!(
        "[Unit]\nDescription=quantum-watchdog under test\n[Service]\nType=notify\nWatchdogSec=3\nTimeoutAbortSec=2\n\
         Restart=always\nRestartSec=1\nExecStart={} --user --config {} agent\nExecReload=/bin/kill -HUP $MAINPID\n",
        bin().display(),
        cfg.display()
    );
    std::fs::write(env.unit_dir.join("quantum-watchdog.service"), unit).unwrap();
    systemctl(&["daemon-reload"]);
    let t = Instant::now();
    let (rc, out) = systemctl(&["start", "quantum-watchdog.service"]);
    assert_eq!(rc, 0, "{out}");
    println!(
        "MEASURE scenario9 ready_after_ms={}",
        t.elapsed().as_millis()
    );
    let (_, st) = systemctl(&["status", "quantum-watchdog.service"]);
    assert!(st.contains("Status: \"enforce:"), "{st}");
    assert!(st.contains("active (running)"), "{st}");
    let pid = main_pid("quantum-watchdog.service");
    // It never judges itself, though its name matches quantum-*.service.
    let (js, _) = env.status();
    assert!(
        js["units"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["unit"] != "quantum-watchdog.service"),
        "{js:#}"
    );
    // Redis unresponsive: every call times out, cycles still complete, pings go on.
    let mut c = env.redis.conn();
    let _: redis::RedisResult<()> = redis::cmd("DEBUG").arg("SLEEP").arg(6).query(&mut c);
    assert_eq!(
        main_pid("quantum-watchdog.service"),
        pid,
        "restarted for a Redis stall"
    );
    assert_eq!(show("quantum-watchdog.service", "NRestarts"), "0");
    // Reload keeps it running.
    assert_eq!(systemctl(&["reload", "quantum-watchdog.service"]).0, 0);
    // Its own loop stuck: systemd's watchdog restarts it.
    kill("STOP", pid);
    assert!(
        wait_until(Duration::from_secs(15), || {
            let p = main_pid("quantum-watchdog.service");
            p != 0 && p != pid && show("quantum-watchdog.service", "ActiveState") == "active"
        }),
        "{}",
        systemctl(&["status", "quantum-watchdog.service"]).1
    );
    assert_eq!(show("quantum-watchdog.service", "NRestarts"), "1");
}
on_redis70!(agent_under_systemd_watchdog);

/// The agent as a unit logging to journald: actions carry structured fields, so
/// `journalctl ACTION=restart` finds the restart with its UNIT= and REASON=.
fn journal_fields_find_restarts(env: &mut Env) {
    let pid1 = started_consumer(env, "0");
    let cfg = env.write_config(&env.config("enforce", &[(UNIT, PREFIX)], ""));
    let unit = format!(
        "[Unit]\nDescription=quantum-watchdog under test\n[Service]\nType=notify\nWatchdogSec=10\n\
         ExecStart={} --user --config {} agent\n",
        bin().display(),
        cfg.display()
    );
    std::fs::write(env.unit_dir.join("quantum-watchdog.service"), unit).unwrap();
    systemctl(&["daemon-reload"]);
    assert_eq!(systemctl(&["start", "quantum-watchdog.service"]).0, 0);
    kill("STOP", pid1);
    env.xadd(1, 5);
    assert!(
        wait_until(Duration::from_secs(15), || main_pid(UNIT) != pid1),
        "not restarted"
    );
    let journal = || {
        sh(std::process::Command::new("journalctl").args([
            "--no-pager",
            "-o",
            "verbose",
            "ACTION=restart",
        ]))
        .1
    };
    assert!(
        wait_until(Duration::from_secs(5), || journal()
            .contains("UNIT=quantum-execution.service")),
        "{}",
        journal()
    );
    let j = journal();
    assert!(j.contains("REASON=consumer execution-"), "{j}");
    assert!(j.contains("SYSLOG_IDENTIFIER=quantum-watchdog"), "{j}");
    // Verdict changes are findable the same way.
    let v = sh(std::process::Command::new("journalctl").args([
        "--no-pager",
        "-o",
        "cat",
        "ACTION=verdict",
        "VERDICT=hung",
    ]))
    .1;
    assert!(v.contains("-> hung"), "{v}");
}
mod journal_fields_find_restarts {
    use super::*;
    #[test]
    fn redis70() {
        in_harness_with(
            "journal_fields_find_restarts::redis70",
            Server::Redis70,
            true,
            super::journal_fields_find_restarts,
        );
    }
}

/// A group whose lag Redis reports as null exports no lag series (rather than a false 0), and
/// a key gauge at 85 % of its limit warns.
fn metrics_null_lag_and_key_gauge(env: &mut Env) {
    started_consumer(env, "0");
    let mut c = env.redis.conn();
    // An entry deleted before delivery makes the group's lag null.
    assert_eq!(systemctl(&["stop", UNIT]).0, 0);
    env.xadd(1, 3);
    let last: String = redis::cmd("XADD")
        .arg(STREAM)
        .arg("*")
        .arg("n")
        .arg(4)
        .query(&mut c)
        .unwrap();
    let _: i64 = redis::cmd("XDEL")
        .arg(STREAM)
        .arg(&last)
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg(format!("quantum:governor:daily_trades:{}", utc_today()))
        .arg(170)
        .query(&mut c)
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("quantum:kill")
        .arg(0)
        .query(&mut c)
        .unwrap();
    let textfiles = env.base.join("textfile");
    std::fs::create_dir_all(&textfiles).unwrap();
    let cfg = env.config("observe", &[(UNIT, PREFIX)], "")
        + &format!(
            "[metrics]\ntextfile_dir = \"{}\"\nmax_consumer_series = 1\n\
             [[gauge]]\nname = \"daily trades\"\nkey = \"quantum:governor:daily_trades:{{utcdate}}\"\nlimit = 200\n\
             [[flag]]\nname = \"kill switch\"\nkey = \"quantum:kill\"\n",
            textfiles.display()
        );
    let agent = env.agent(&cfg);
    assert!(agent.wait_log("starting", Duration::from_secs(10)));
    std::thread::sleep(Duration::from_secs(3));
    let m = env.scrape();
    let lag_series = format!("quantum_watchdog_group_lag{{stream=\"{STREAM}\",group=\"{GROUP}\"}}");
    assert!(
        !m.contains(&lag_series),
        "null lag must export no series:\n{m}"
    );
    assert!(
        m.contains(&format!(
            "quantum_watchdog_group_pending{{stream=\"{STREAM}\",group=\"{GROUP}\"}}"
        )),
        "{m}"
    );
    assert_eq!(
        env.metric(&m, "quantum_watchdog_key_value{name=\"daily trades\"}"),
        Some(170.0),
        "{m}"
    );
    assert_eq!(
        env.metric(&m, "quantum_watchdog_key_limit{name=\"daily trades\"}"),
        Some(200.0),
        "{m}"
    );
    let (st, rc) = env.status();
    assert_eq!(st["gauges"][0]["severity"], "warning", "{st:#}");
    assert_eq!(st["flags"][0]["value"], "0", "{st:#}");
    assert!(st["units"][0]["bindings"].as_array().is_some());
    assert!(rc >= 1, "a gauge at 85 % warns: {rc}");
    println!(
        "MEASURE metrics {:?} lag=null series_absent=true gauge=170/200 status_exit={rc}",
        env.server()
    );
}
on_both!(metrics_null_lag_and_key_gauge);

fn utc_today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    quantum_watchdog::model::civil_date((secs / 86_400) as i64)
}

/// A pipeline that stalls at its middle stage is reported at that stage, as a verdict, in
/// `status --pipeline` and as a metric, and nothing is restarted for it.
fn pipeline_stall_at_middle_stage(env: &mut Env) {
    let (decisions, intents, results) = (
        "quantum:stream:ai.decision.made",
        "quantum:stream:trade.intent",
        "quantum:stream:execution.result",
    );
    env.consumer_unit_on(
        "quantum-router.service",
        decisions,
        "router",
        "router",
        &[],
        "",
    );
    env.consumer_unit_on(
        "quantum-execution.service",
        intents,
        "execution",
        "execution",
        &[("QW_QUIET", "1")],
        "",
    );
    env.start("quantum-router.service");
    env.start("quantum-execution.service");
    let mut c = env.redis.conn();
    let _: redis::Value = redis::cmd("XADD")
        .arg(results)
        .arg("*")
        .arg("n")
        .arg(0)
        .query(&mut c)
        .unwrap();
    let cfg = format!(
        "mode = \"observe\"\ninterval = \"1s\"\nredis.url = \"{}\"\n[defaults]\nhung_after = \"1h\"\nstartup_grace = \"1s\"\n\
         [[watch]]\nunit = \"quantum-router.service\"\nstream = \"{decisions}\"\ngroup = \"router\"\nconsumer = \"router-{{hostname}}-{{pid}}\"\n\
         [[watch]]\nunit = \"quantum-execution.service\"\nstream = \"{intents}\"\ngroup = \"execution\"\nconsumer = \"execution-{{hostname}}-{{pid}}\"\n\
         [[pipeline]]\nname = \"trading\"\nstreams = [\"{decisions}\", \"{intents}\", \"{results}\"]\nstall_after = \"4s\"\n",
        env.redis.url()
    );
    let agent = env.agent(&cfg);
    // Decisions flow through the router; intents arrive; execution delivers nothing.
    let end = Instant::now() + Duration::from_secs(12);
    let mut n = 0u64;
    while Instant::now() < end {
        n += 1;
        let _: redis::Value = redis::cmd("XADD")
            .arg(decisions)
            .arg("*")
            .arg("n")
            .arg(n)
            .query(&mut c)
            .unwrap();
        let _: redis::Value = redis::cmd("XADD")
            .arg(intents)
            .arg("*")
            .arg("n")
            .arg(n)
            .query(&mut c)
            .unwrap();
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        agent.wait_log("pipeline trading stalled", Duration::from_secs(5)),
        "{}",
        agent.log()
    );
    let (st, rc) = env.status();
    let p = &st["pipelines"][0];
    assert_eq!(p["stalled_at"], 1, "{p:#}");
    let msg = p["message"].as_str().unwrap();
    assert!(
        msg.starts_with(
            "trade.intent entries arrive, execution.result entries do not: group execution has lag"
        ),
        "{msg}"
    );
    assert_eq!(rc, 2, "a stall is critical");
    let (code, text, _) = sh(std::process::Command::new(bin())
        .args(["--user", "--config"])
        .arg(&env.config)
        .args(["status", "--pipeline"]));
    assert_eq!(code, 2);
    assert!(
        text.lines()
            .any(|l| l.starts_with(">>") && l.contains(intents)),
        "{text}"
    );
    assert!(text.contains("STALLED"), "{text}");
    for l in text.lines() {
        println!("MEASURE pipeline | {l}");
    }
    let m = env.scrape();
    assert_eq!(
        env.metric(&m, &format!("quantum_watchdog_pipeline_stalled{{pipeline=\"trading\",stream=\"{intents}\",group=\"execution\"}}")),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        env.metric(&m, &format!("quantum_watchdog_pipeline_stalled{{pipeline=\"trading\",stream=\"{decisions}\",group=\"router\"}}")),
        Some(0.0),
        "{m}"
    );
    assert!(
        !agent.log().contains("would restart quantum-execution"),
        "a stall alone restarts nothing: {}",
        agent.log()
    );
}
on_redis70!(pipeline_stall_at_middle_stage);

/// Entries trimmed before delivery: Redis reports the lag as null (6.2 has no lag at all), so
/// "work waiting" comes from last-delivered-id < last-generated-id. A hung consumer is found
/// that way; once caught up, nothing is judged.
fn null_lag_after_xtrim(env: &mut Env) {
    let pid = started_consumer(env, "0");
    assert!(wait_until(Duration::from_secs(10), || env.group_pending() == 0));
    // The agent watches before the lag turns null (the adapter then asks XINFO STREAM anew).
    let agent = env.agent(&env.config("enforce", &[(UNIT, PREFIX)], ""));
    assert!(
        agent.wait_log("-> healthy", Duration::from_secs(10)),
        "{}",
        agent.log()
    );
    kill("STOP", pid);
    env.xadd(1, 20);
    let mut c = env.redis.conn();
    let _: i64 = redis::cmd("XTRIM")
        .arg(STREAM)
        .arg("MAXLEN")
        .arg(5)
        .query(&mut c)
        .unwrap();
    // XTRIM alone keeps the lag computable (it counts the trimmed entries as unread);
    // deleting an undelivered entry makes Redis 7.0+ report it as null.
    let newest: Vec<(String, Vec<String>)> = redis::cmd("XREVRANGE")
        .arg(STREAM)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query(&mut c)
        .unwrap();
    let _: i64 = redis::cmd("XDEL")
        .arg(STREAM)
        .arg(&newest[0].0)
        .query(&mut c)
        .unwrap();
    let lag: redis::Value = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(STREAM)
        .query(&mut c)
        .unwrap();
    println!(
        "MEASURE null-lag {:?} groups after XTRIM: {lag:?}",
        env.server()
    );
    assert!(
        wait_until(Duration::from_secs(15), || main_pid(UNIT) != pid
            && main_pid(UNIT) != 0),
        "not restarted with null lag:\n{}",
        agent.log()
    );
    // 6.2 has no lag field; 7.0+ report it null here: both take the ID comparison.
    assert!(agent.log().contains("lag null"), "{}", agent.log());
    // The new consumer catches up with what is left; then all is healthy and stays so.
    assert!(
        wait_until(
            Duration::from_secs(20),
            || env.status().0["units"][0]["verdict"] == "healthy"
        ),
        "{:#}",
        env.status().0
    );
    let pid2 = main_pid(UNIT);
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(
        main_pid(UNIT),
        pid2,
        "no second restart once caught up:\n{}",
        agent.log()
    );
    assert_eq!(
        agent
            .log()
            .matches("restarting quantum-execution.service")
            .count(),
        1
    );
}
on_all!(null_lag_after_xtrim);

/// A dead consumer holding entries that were trimmed from the stream: Redis 6.2 keeps them in
/// the pending list as ghosts, 7.0+ drops them on claim. Either way the live entries are handed
/// off, the ghosts are reported, nothing loops, and the dead consumer ends deleted.
fn ghost_pending_entries_after_xtrim(env: &mut Env) {
    env.create_group();
    env.xadd(1, 10);
    let dead = env.consumer_name(PREFIX, dead_pid());
    env.hold(&dead, 10);
    env.xadd(11, 10);
    let mut c = env.redis.conn();
    // Keep the last 15: five of the dead consumer's entries are gone from the stream.
    let _: i64 = redis::cmd("XTRIM")
        .arg(STREAM)
        .arg("MAXLEN")
        .arg(15)
        .query(&mut c)
        .unwrap();
    let (pid, agent) = consumer_then_agent(env);
    assert!(
        wait_until(Duration::from_secs(20), || !env
            .consumers()
            .contains_key(&dead)),
        "dead consumer kept: {:?}\n{}",
        env.consumers(),
        agent.log()
    );
    assert!(
        wait_until(Duration::from_secs(20), || env.group_pending() == 0),
        "pending {}",
        env.group_pending()
    );
    let acked = env.acked(UNIT);
    let live: Vec<u64> = (6..=20).filter(|n| !acked.contains_key(n)).collect();
    assert!(
        live.is_empty(),
        "entries still in the stream were lost: {live:?}"
    );
    let log = agent.log();
    let claim = log
        .lines()
        .find(|l| l.contains("claimed"))
        .unwrap_or("")
        .to_string();
    println!(
        "MEASURE ghosts {:?} {}",
        env.server(),
        claim
            .split("claimed")
            .nth(1)
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
    );
    assert_eq!(main_pid(UNIT), pid);
}
on_all!(ghost_pending_entries_after_xtrim);

/// A poison entry every consumer rejects: without `dead_letter_after` it stays pending and is
/// reported; with it, it moves to `<stream>:dead` with its evidence and the original is acked.
fn poison_entry(env: &mut Env) {
    started_consumer_with(env, &[("QW_POISON", "3")]);
    env.xadd(1, 5);
    let agent = env.agent(&env.config("enforce", &[(UNIT, PREFIX)], ""));
    // The consumer rereads its own pending list: the poison's delivery count climbs.
    assert!(
        wait_until(Duration::from_secs(20), || env.status().0["poison"]
            .as_array()
            .is_some_and(|p| !p.is_empty())),
        "{:#}",
        env.status().0
    );
    let (st, rc) = env.status();
    assert_eq!(st["poison"][0]["dead_letter"], false);
    assert!(rc >= 1, "reported as a warning: {rc}");
    assert_eq!(env.group_pending(), 1, "it stays pending");
    drop(agent);
    let agent = env.agent(&env.config("enforce", &[(UNIT, PREFIX)], "dead_letter_after = 10\n"));
    assert!(
        wait_until(Duration::from_secs(15), || env.group_pending() == 0),
        "{}",
        agent.log()
    );
    let mut c = env.redis.conn();
    let dead: Vec<(String, Vec<String>)> = redis::cmd("XRANGE")
        .arg(format!("{STREAM}:dead"))
        .arg("-")
        .arg("+")
        .query(&mut c)
        .unwrap();
    assert_eq!(dead.len(), 1, "{dead:?}");
    let f = &dead[0].1;
    for k in ["original-id", "group", "consumer", "deliveries", "n"] {
        assert!(f.contains(&k.to_string()), "{k} missing: {f:?}");
    }
    assert!(
        agent.log().contains("action=\"dead-letter\"") || agent.log().contains("dead-letter entry"),
        "{}",
        agent.log()
    );
    assert_eq!(
        env.acked(UNIT).len(),
        4 + env.acked(UNIT).keys().filter(|n| **n > 5).count(),
        "the four others were processed"
    );
}
on_redis70!(poison_entry);
