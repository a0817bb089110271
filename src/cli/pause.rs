//! `quantum-watchdog pause | resume | reset-budget`: an operator's notes to the agent. A note
//! is a file in the pause directory; the agent, `recover` and `status` read them every cycle,
//! so they work whether or not an agent runs, and survive its restarts.

use std::time::Duration;

use anyhow::Context;

use quantum_watchdog::adapters::clock::now_usec;
use quantum_watchdog::adapters::pause_store;
use quantum_watchdog::config::{Config, check_unit_name};
use quantum_watchdog::model::holds::Pause;
use quantum_watchdog::model::unit_pattern;

use super::{Failure, out};

/// What the operator named: some units, or every unit.
pub enum Target {
    Units(Vec<String>),
    All,
}

/// `name` as systemd reads it on a command line: no suffix means `.service`.
pub(super) fn unit_name(name: &str) -> Result<String, Failure> {
    let full = if name.contains('.') {
        name.to_string()
    } else {
        format!("{name}.service")
    };
    check_unit_name(&full)
        .map(|()| full)
        .map_err(|why| Failure::Usage(format!("{name:?} is not a unit name: {why}")))
}

fn units(cfg: &Config, names: &[String]) -> Result<Vec<String>, Failure> {
    let units: Vec<String> = names
        .iter()
        .map(|n| unit_name(n))
        .collect::<Result<_, _>>()?;
    let patterns = cfg.unit_patterns();
    for u in &units {
        if !unit_pattern::matches_any(&patterns, u) {
            eprintln!(
                "quantum-watchdog: note: {u} is not watched by this configuration; the note applies once it is"
            );
        }
    }
    Ok(units)
}

/// Refuses a unit systemd has not loaded (a typo would otherwise pause nothing, silently).
/// If systemd cannot be asked, says so and goes on: a pause must work while D-Bus is down.
fn loaded(cfg: &Config, user: bool, units: &[String]) -> Result<(), Failure> {
    use quantum_watchdog::adapters::systemd::Systemd;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    let t = cfg.dbus_timeout.0;
    let seen = rt.block_on(async {
        let sd = Systemd::connect_with(user, t, false).await?;
        sd.units(&[], units, &[]).await
    });
    let seen = match seen {
        Ok(seen) => seen,
        Err(e) => {
            eprintln!(
                "quantum-watchdog: note: systemd could not be asked whether these units exist: {e}"
            );
            return Ok(());
        }
    };
    let missing: Vec<&str> = units
        .iter()
        .filter(|u| !seen.iter().any(|s| &s.name == *u))
        .map(String::as_str)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    Err(Failure::Usage(format!(
        "no such unit: {} (systemd has not loaded it; see `systemctl list-units --all 'quantum-*'`); nothing was paused",
        missing.join(", ")
    )))
}

fn permitted(cfg: &Config, user: bool) -> Result<(), Failure> {
    pause_store::may_write(cfg, user).map_err(Failure::Denied)
}

/// `pause`: writes one note per unit (or one for all), replacing an earlier one.
pub fn pause(
    cfg: &Config,
    user: bool,
    target: Target,
    duration: Option<Duration>,
    reason: String,
) -> Result<u8, Failure> {
    permitted(cfg, user)?;
    let now = now_usec();
    let until = duration.map(|d| now.saturating_add(d.as_micros().min(u64::MAX as u128) as u64));
    let targets: Vec<Option<String>> = match target {
        Target::All => vec![None],
        Target::Units(names) => {
            let units = units(cfg, &names)?;
            loaded(cfg, user, &units)?;
            units.into_iter().map(Some).collect()
        }
    };
    pause_store::remove_expired(cfg, user, now);
    pause_store::ensure_dir(cfg, &pause_store::pause_dir(cfg, user))
        .context("cannot create the pause directory")?;
    pause_store::check_dir(cfg, user).map_err(Failure::Denied)?;
    let mut text = String::new();
    for unit in targets {
        let p = Pause {
            unit: unit.clone(),
            by: String::new(),
            reason: reason.clone(),
            since_usec: now,
            until_usec: until,
        };
        let path = pause_store::write_pause(cfg, user, &p).with_context(|| {
            format!(
                "cannot write the pause note in {}",
                pause_store::pause_dir(cfg, user).display()
            )
        })?;
        let what = unit.as_deref().unwrap_or("every unit");
        let how_long = duration
            .map(|d| {
                format!(
                    " for {}",
                    quantum_watchdog::model::fmt_ms(d.as_millis() as u64)
                )
            })
            .unwrap_or_else(|| " until resumed".into());
        text.push_str(&format!(
            "paused {what}{how_long}: judged and shown, nothing done to it or its consumers ({})\n",
            path.display()
        ));
    }
    out(&text)?;
    Ok(0)
}

/// `resume`: removes the notes of the named units (or every pause note).
pub fn resume(cfg: &Config, user: bool, target: Target) -> Result<u8, Failure> {
    permitted(cfg, user)?;
    pause_store::remove_expired(cfg, user, now_usec());
    let mut text = String::new();
    let remove = |unit: Option<&str>| {
        pause_store::remove_pauses(cfg, user, unit).with_context(|| {
            format!(
                "cannot remove pause notes in {}",
                pause_store::pause_dir(cfg, user).display()
            )
        })
    };
    match target {
        Target::All => {
            let n = remove(None)?;
            text.push_str(&format!("resumed: {n} pause(s) removed\n"));
        }
        Target::Units(names) => {
            for u in units(cfg, &names)? {
                match remove(Some(&u))? {
                    0 => text.push_str(&format!("{u} was not paused on its own\n")),
                    _ => text.push_str(&format!("resumed {u}\n")),
                }
            }
            if pause_store::all_paused(cfg, user) {
                text.push_str(
                    "every unit is still paused (pause --all): `resume --all` ends that\n",
                );
            }
        }
    }
    out(&text)?;
    Ok(0)
}

/// `reset-budget`: restarts up to now no longer count against the units' restart budgets.
pub fn reset_budget(cfg: &Config, user: bool, names: &[String]) -> Result<u8, Failure> {
    permitted(cfg, user)?;
    pause_store::ensure_dir(cfg, &pause_store::pause_dir(cfg, user))
        .context("cannot create the pause directory")?;
    pause_store::check_dir(cfg, user).map_err(Failure::Denied)?;
    let now = now_usec();
    let mut text = String::new();
    for u in units(cfg, names)? {
        let path = pause_store::write_reset(cfg, user, &u, now)
            .with_context(|| format!("cannot write the reset note for {u}"))?;
        text.push_str(&format!(
            "restart budget of {u} reset: earlier restarts no longer count ({})\n",
            path.display()
        ));
    }
    out(&text)?;
    Ok(0)
}
