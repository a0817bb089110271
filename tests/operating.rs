//! Operating the agent: pauses (`pause`, `resume`, `--for`), who may set them, maintenance
//! windows, a restart an operator started, and a crash loop on one entry — each against a real
//! systemd user manager and a real server. See tests/common/mod.rs.

#[macro_use]
mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// The scenario config with the pause directory under the test's base directory.
fn config_with_pauses(env: &Env, extra_defaults: &str, top: &str) -> (String, PathBuf) {
    let dir = env.base.join("pauses");
    let cfg = env
        .config("enforce", &[(UNIT, PREFIX)], extra_defaults)
        .replacen(
            "interval = ",
            &format!("pause_dir = \"{}\"\n{top}interval = ", dir.display()),
            1,
        );
    (cfg, dir)
}

/// `quantum-watchdog --user --config <agent's config> <args…>`: (exit, stdout and stderr).
fn cli(env: &Env, args: &[&str]) -> (i32, String) {
    let (rc, out, err) = sh(Command::new(bin())
        .args(["--user", "--config"])
        .arg(&env.config)
        .args(args));
    (rc, format!("{out}{err}"))
}

/// A consumer that hangs holding entries while work waits.
fn hung_consumer(env: &Env) -> u32 {
    let pid = started_consumer(env, "20");
    env.xadd(1, 500);
    std::thread::sleep(Duration::from_millis(300));
    kill("STOP", pid);
    pid
}

/// A pause holds the restart of a hung unit back while its verdict is still shown; `--for`
/// ends it by itself.
fn pause_holds_until_it_expires(env: &mut Env) {
    let (cfg, dir) = config_with_pauses(env, "", "");
    env.write_config(&cfg);
    // A unit systemd does not know is refused, and nothing is written: a typo pauses nothing.
    let (rc, out) = cli(env, &["pause", "quantum-nope", "--for", "1m"]);
    assert_eq!(rc, 2, "{out}");
    assert!(out.contains("no such unit: quantum-nope.service"), "{out}");
    assert!(
        !dir.join("quantum-nope.service.pause").exists(),
        "a note was written"
    );
    // The unit is installed (not started) before it is paused.
    env.consumer_unit(UNIT, PREFIX, &[("QW_WORK_MS", "20")], "");
    let (rc, out) = cli(
        env,
        &["pause", UNIT, "--for", "12s", "--reason", "deploy 4.2"],
    );
    assert_eq!(rc, 0, "{out}");
    let pid = hung_consumer(env);
    let agent = env.agent(&cfg);
    assert!(
        agent.wait_log("paused by root until", Duration::from_secs(12)),
        "{}",
        tail(&agent.log(), 30)
    );
    let (st, _) = env.status();
    let unit = &st["units"][0];
    assert_eq!(unit["verdict"], "hung", "{st}");
    assert!(
        unit["hold"].as_str().unwrap().contains("deploy 4.2"),
        "{st}"
    );
    assert!(
        agent
            .log()
            .contains(": would restart quantum-execution.service"),
        "{}",
        tail(&agent.log(), 30)
    );
    assert_eq!(main_pid(UNIT), pid, "restarted while paused");
    let expires = Instant::now();
    assert!(
        wait_until(Duration::from_secs(25), || main_pid(UNIT) != pid),
        "not restarted once the pause expired:\n{}",
        tail(&agent.log(), 30)
    );
    println!(
        "MEASURE pause-expiry restart {:?} after the check that it was held",
        expires.elapsed()
    );
}
scenario!(pause_holds_until_it_expires: redis70 = Redis70);

/// Only root and the operators' group may pause or resume (exit 4); a note a stranger owns is
/// ignored and reported; `resume` lets the restart go ahead.
fn only_operators_pause_and_resume(env: &mut Env) {
    let (cfg, dir) = config_with_pauses(env, "", "");
    env.write_config(&cfg);
    env.consumer_unit(UNIT, PREFIX, &[("QW_WORK_MS", "20")], "");
    assert_eq!(cli(env, &["pause", UNIT]).0, 0);
    // A stranger: a copy of the binary and the config it can read.
    let shared = PathBuf::from(format!("/tmp/qw-stranger-{}", std::process::id()));
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::copy(bin(), shared.join("quantum-watchdog")).unwrap();
    std::fs::write(shared.join("config.toml"), &cfg).unwrap();
    let (rc, out, err) = sh(Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(shared.join("quantum-watchdog"))
        .arg("--config")
        .arg(shared.join("config.toml"))
        .args(["resume", "--all"]));
    assert_eq!(rc, 4, "a stranger resumed: {out}{err}");
    assert!(err.contains("quantum-watchdog-operators"), "{err}");
    // A stranger's note in the directory (as if it had been writable once): ignored.
    let forged = dir.join("all-units.pause");
    std::fs::write(
        &forged,
        r#"{"unit":null,"by":"root","reason":"forged","since_usec":0,"until_usec":null}"#,
    )
    .unwrap();
    nix::unistd::chown(&forged, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    // A symlink, and a note whose content names another unit than its file name: ignored.
    std::os::unix::fs::symlink(&forged, dir.join("quantum-other.service.pause")).unwrap();
    std::fs::write(
        dir.join("quantum-b.service.pause"),
        r#"{"unit":null,"by":"root","reason":"renamed","since_usec":0,"until_usec":null}"#,
    )
    .unwrap();
    let pid = hung_consumer(env);
    let agent = env.agent(&cfg);
    assert!(
        agent.wait_log("paused by root: would restart", Duration::from_secs(12)),
        "{}",
        tail(&agent.log(), 30)
    );
    assert!(
        agent.log().contains("who may not pause units"),
        "the forged note is reported: {}",
        tail(&agent.log(), 30)
    );
    let (st, _) = env.status();
    let errors = st["hold_errors"].to_string();
    for note in [
        "all-units.pause",
        "quantum-other.service.pause",
        "quantum-b.service.pause",
    ] {
        assert!(errors.contains(note), "{note} not reported: {st}");
    }
    assert!(!st["units"][0]["hold"].as_str().unwrap().contains("forged"));
    assert_eq!(main_pid(UNIT), pid);
    let (rc, out) = cli(env, &["resume", UNIT]);
    assert_eq!(rc, 0, "{out}");
    assert!(
        wait_until(Duration::from_secs(15), || main_pid(UNIT) != pid),
        "resumed, yet not restarted:\n{}",
        tail(&agent.log(), 30)
    );
    let _ = std::fs::remove_dir_all(&shared);
}
scenario!(only_operators_pause_and_resume: redis70 = Redis70);

fn window(calendar: &str) -> String {
    format!(
        "[[window]]\nname = \"always\"\nunits = [\"quantum-execution.service\"]\n\
         calendar = \"{calendar}\"\nduration = \"10m\"\n"
    )
}

/// An open maintenance window holds restarts of the units it names; once the configuration
/// (reloaded) has it closed, the restart happens.
fn maintenance_window_holds_restarts(env: &mut Env) {
    let (base, _) = config_with_pauses(env, "", "");
    let cfg = format!("{base}{}", window("minutely"));
    let pid = hung_consumer(env);
    let agent = env.agent(&cfg);
    assert!(
        agent.wait_log("suppressed by window always until", Duration::from_secs(15)),
        "{}",
        tail(&agent.log(), 30)
    );
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(main_pid(UNIT), pid, "restarted inside the window");
    assert!(!agent.log().contains("restarting quantum-execution"));
    // The same window, next opening in 2099: closed now.
    env.write_config(&format!("{base}{}", window("2099-01-01 00:00")));
    kill("HUP", agent.child.id());
    assert!(
        wait_until(Duration::from_secs(15), || main_pid(UNIT) != pid),
        "not restarted outside the window:\n{}",
        tail(&agent.log(), 30)
    );
}
scenario!(maintenance_window_holds_restarts: redis70 = Redis70);

/// An operator's `systemctl restart` of a unit that takes long to stop: while the job runs the
/// unit is not hung, and neither it nor its consumer is touched.
fn an_operators_restart_is_hands_off(env: &mut Env) {
    env.consumer_unit(
        UNIT,
        PREFIX,
        &[("QW_WORK_MS", "20")],
        "ExecStop=/bin/sleep 10\nTimeoutStopSec=30",
    );
    env.start(UNIT);
    let pid = main_pid(UNIT);
    wait_consumer(env, pid);
    env.xadd(1, 500);
    std::thread::sleep(Duration::from_millis(300));
    kill("STOP", pid);
    let agent = env.agent(&env.config("enforce", &[(UNIT, PREFIX)], ""));
    assert!(agent.wait_log("cycle ", Duration::from_secs(10)));
    let (rc, out) = systemctl(&["restart", "--no-block", UNIT]);
    assert_eq!(rc, 0, "{out}");
    assert!(
        wait_until(Duration::from_secs(10), || {
            env.status().0["units"][0]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("job is queued or running"))
        }),
        "{}\n{}",
        env.status().0,
        tail(&agent.log(), 30)
    );
    std::thread::sleep(Duration::from_secs(7));
    let log = agent.log();
    assert!(
        !log.contains("restarting quantum-execution") && !log.contains("claim "),
        "acted during an operator's restart:\n{}",
        tail(&log, 40)
    );
    // Once the job ends the new process takes over the old consumer's entries.
    assert!(
        wait_until(Duration::from_secs(30), || main_pid(UNIT) != pid
            && main_pid(UNIT) != 0
            && env.group_pending() == 0),
        "{}",
        tail(&agent.log(), 30)
    );
}
scenario!(an_operators_restart_is_hands_off: redis70 = Redis70);

/// A deploy replaced the unit file and has not run `daemon-reload` yet (NeedDaemonReload): the
/// hung unit is shown hung, its restart held (status exits non-zero, the journal and a metric
/// say what holds it and for how long), until the reload; then it is restarted. With
/// `deploy_hold = "20s"` the hold ends by itself.
fn a_changed_unit_file_is_a_deploy_under_way(env: &mut Env) {
    let pid = hung_consumer(env);
    let file = env.unit_dir.join(UNIT);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}\n# deploy 4.2\n")).unwrap();
    assert_eq!(show(UNIT, "NeedDaemonReload"), "yes");
    let agent = env.agent(&env.config("enforce", &[(UNIT, PREFIX)], ""));
    // The hold is shown from the first look; the hang once hung_after has passed.
    let held = |st: &serde_json::Value| {
        st["units"][0]["verdict"] == "hung"
            && st["units"][0]["hold"]
                .as_str()
                .is_some_and(|r| r.contains("NeedDaemonReload") && r.contains("deploy_hold"))
    };
    assert!(
        wait_until(Duration::from_secs(15), || held(&env.status().0)),
        "{}\n{}",
        env.status().0,
        tail(&agent.log(), 30)
    );
    let (st, rc) = env.status();
    assert_eq!(st["units"][0]["verdict"], "hung", "{st}");
    assert_ne!(rc, 0, "a held hang is no healthy status: {st}");
    assert!(
        agent.wait_log("a deploy under way", Duration::from_secs(5)),
        "{}",
        tail(&agent.log(), 30)
    );
    std::thread::sleep(Duration::from_secs(6));
    assert_eq!(main_pid(UNIT), pid, "restarted during a deploy");
    assert_eq!(systemctl(&["daemon-reload"]).0, 0);
    assert!(
        wait_until(Duration::from_secs(20), || main_pid(UNIT) != pid),
        "not restarted after the reload:\n{}",
        tail(&agent.log(), 30)
    );
}
scenario!(a_changed_unit_file_is_a_deploy_under_way: redis70 = Redis70);

/// The same forgotten `daemon-reload` with `deploy_hold = "20s"`: the restart waits 20 s, then
/// goes ahead without the reload.
fn a_deploy_hold_ends_by_itself(env: &mut Env) {
    let pid = hung_consumer(env);
    let file = env.unit_dir.join(UNIT);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("{text}\n# deploy 4.3\n")).unwrap();
    let cfg = env.config("enforce", &[(UNIT, PREFIX)], "").replacen(
        "interval = ",
        "deploy_hold = \"20s\"\ninterval = ",
        1,
    );
    let agent = env.agent(&cfg);
    let t = Instant::now();
    assert!(
        agent.wait_log("a deploy under way", Duration::from_secs(15)),
        "{}",
        tail(&agent.log(), 30)
    );
    assert!(
        wait_until(Duration::from_secs(40), || main_pid(UNIT) != pid),
        "never restarted after deploy_hold:\n{}",
        tail(&agent.log(), 30)
    );
    let took = t.elapsed();
    assert!(
        took >= Duration::from_secs(15),
        "restarted under the hold: {took:?}"
    );
    println!("MEASURE deploy_hold 20s: restarted {took:?} after the agent's start");
}
scenario!(a_deploy_hold_ends_by_itself: redis70 = Redis70);

/// The unit runs and was not given up on: its restart budget has room left.
fn budget_left(env: &Env) {
    let (st, _) = env.status();
    let u = &st["units"][0];
    assert_ne!(u["verdict"], "gave-up", "{u}");
    assert!(
        u["restarts_in_window"].as_u64().unwrap() < u["restart_budget"].as_u64().unwrap(),
        "{u}"
    );
    assert_eq!(show(UNIT, "ActiveState"), "active", "{u}");
}

/// Entries of the dead-letter stream: (`n`, fields).
fn dead_letters(env: &Env) -> Vec<std::collections::BTreeMap<String, String>> {
    env.entries(&format!("{STREAM}:dead"))
        .into_iter()
        .map(|(_, f)| f)
        .collect()
}

/// One entry kills every process that reads it; systemd restarts the unit each time
/// (Restart=always), the agent hands the entry back each time. With `poison_after_crashes = 3`
/// it goes to the dead-letter stream after three deaths and the rest flows.
fn crash_loop_poison_is_quarantined(env: &mut Env) {
    env.create_group();
    env.consumer_unit(
        UNIT,
        PREFIX,
        &[("QW_CRASH_ON", "7")],
        "Restart=always\nRestartSec=1",
    );
    let agent = env.agent(&env.config("enforce", &[(UNIT, PREFIX)], "poison_after_crashes = 3\n"));
    assert!(agent.wait_log("cycle ", Duration::from_secs(10)));
    env.start(UNIT);
    wait_consumer(env, main_pid(UNIT));
    let first = Instant::now();
    env.xadd(1, 20);
    let flowing = || env.acked(UNIT).keys().filter(|n| **n <= 20).count() == 19;
    assert!(
        wait_until(Duration::from_secs(60), || flowing()
            && env.group_pending() == 0),
        "acked {:?}, pending {}, dead {:?}\n{}",
        env.acked(UNIT),
        env.group_pending(),
        dead_letters(env),
        tail(&agent.log(), 40)
    );
    let took = first.elapsed();
    let dead = dead_letters(env);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["n"], "7");
    assert_eq!(dead[0]["reason"], "crash-loop", "{dead:?}");
    assert!(dead[0]["crashes"].parse::<u32>().unwrap() >= 3);
    assert_eq!(dead[0]["exit-status"], "killed KILL", "{dead:?}");
    assert!(!env.acked(UNIT).contains_key(&7));
    assert!(agent.log().contains("quarantine"), "{}", agent.log());
    budget_left(env);
    println!(
        "MEASURE crash-loop first entry to flowing {took:?} exit {:?}",
        dead[0].get("exit-status")
    );
}
scenario!(crash_loop_poison_is_quarantined: redis70 = Redis70, valkey8 = Valkey8);

/// The unit dies again and again for another reason (it exits 1 five seconds after each start,
/// before it reads anything: a dependency that does not answer). Entry 1 was read once, by the
/// first process; each later process is handed it and never reads it. Its delivery count
/// stays 1: it killed nobody, and it is never quarantined.
fn an_unread_entry_is_not_blamed_for_a_crash_loop(env: &mut Env) {
    env.create_group();
    env.xadd(1, 1);
    let flag = env.base.join("first-start-done");
    let consumer = format!(
        "{} {} {STREAM} {GROUP} {PREFIX} {}",
        consumer_bin().display(),
        env.redis.url(),
        env.ack_log(UNIT).display()
    );
    let text = format!(
        "[Unit]\nDescription=dies for another reason\nStartLimitIntervalSec=0\n[Service]\n\
         Environment=QW_POISON=1 QW_EXIT_AFTER_MS=3000\nRestart=always\nRestartSec=1\n\
         ExecStart=/bin/bash -c 'if [ -e {f} ]; then sleep 5; exit 1; fi; touch {f}; exec {consumer}'\n",
        f = flag.display()
    );
    std::fs::write(env.unit_dir.join(UNIT), text).unwrap();
    assert_eq!(systemctl(&["daemon-reload"]).0, 0);
    let agent = env.agent(&env.config("enforce", &[(UNIT, PREFIX)], "poison_after_crashes = 3\n"));
    assert!(agent.wait_log("cycle ", Duration::from_secs(10)));
    env.start(UNIT);
    assert!(
        wait_until(Duration::from_secs(60), || show(UNIT, "NRestarts")
            .parse::<u32>()
            .is_ok_and(|n| n >= 5)),
        "NRestarts {}\n{}",
        show(UNIT, "NRestarts"),
        tail(&agent.log(), 30)
    );
    let dead = dead_letters(env);
    assert!(
        dead.is_empty(),
        "an entry no dying process read was quarantined: {dead:?}\n{}",
        tail(&agent.log(), 40)
    );
    assert_eq!(env.group_pending(), 1, "entry 1 still waits for a reader");
    assert!(
        !agent.log().contains("quarantine"),
        "{}",
        tail(&agent.log(), 40)
    );
}
scenario!(an_unread_entry_is_not_blamed_for_a_crash_loop: redis70 = Redis70);

/// The same with an entry that hangs its reader while work waits: the agent's own restarts
/// are the deaths.
fn hang_loop_poison_is_quarantined(env: &mut Env) {
    env.create_group();
    env.consumer_unit(
        UNIT,
        PREFIX,
        &[("QW_HANG_ON", "7"), ("QW_WORK_MS", "50")],
        "",
    );
    env.start(UNIT);
    wait_consumer(env, main_pid(UNIT));
    let cfg = env
        .config("enforce", &[(UNIT, PREFIX)], "poison_after_crashes = 3\n")
        .replace("restart_budget = { max = 3", "restart_budget = { max = 5");
    let agent = env.agent(&cfg);
    env.xadd(1, 300);
    assert!(
        wait_until(Duration::from_secs(120), || env
            .acked(UNIT)
            .keys()
            .filter(|n| **n <= 300)
            .count()
            == 299
            && env.group_pending() == 0),
        "acked {}, dead {:?}\n{}",
        env.acked(UNIT).len(),
        dead_letters(env),
        tail(&agent.log(), 40)
    );
    let dead = dead_letters(env);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["n"], "7");
    assert!(!env.acked(UNIT).contains_key(&7));
    budget_left(env);
}
scenario!(hang_loop_poison_is_quarantined: redis70 = Redis70);
