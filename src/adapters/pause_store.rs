//! The operators' notes to the agent: one file per pause (`<unit>.pause`, `all-units.pause`)
//! or budget reset (`<unit>.reset`) in the pause directory, written atomically by
//! `quantum-watchdog pause|resume|reset-budget` and read every cycle by the agent, `recover`
//! and `exec`. Who wrote a note is checked, not assumed: it counts only if the file's owner is
//! root, a member of the operators' group, or (with `--user`) the manager's own user, and only
//! in a directory no one else may write to. The package makes the directory
//! `root:quantum-watchdog-operators 2775`.

use std::ffi::CString;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Group, Uid, User, geteuid, getgrouplist, getgroups};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::model::holds::{Holds, Pause};

use super::state_file::{read_regular, write_atomically};

/// The note of `pause --all`.
const ALL: &str = "all-units";

/// The pause directory: `pause_dir`, else `/var/lib/quantum-watchdog/pauses`, or
/// `$XDG_RUNTIME_DIR/quantum-watchdog/pauses` with `--user`.
pub fn pause_dir(cfg: &Config, user: bool) -> PathBuf {
    if let Some(d) = &cfg.pause_dir {
        return d.clone();
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|_| user) {
        Some(x) => Path::new(&x).join("quantum-watchdog/pauses"),
        None => PathBuf::from("/var/lib/quantum-watchdog/pauses"),
    }
}

/// A budget reset as written.
#[derive(Debug, Serialize, Deserialize)]
struct Reset {
    unit: String,
    at_usec: u64,
}

fn note_path(dir: &Path, unit: Option<&str>, kind: &str) -> PathBuf {
    dir.join(format!("{}.{kind}", unit.unwrap_or(ALL)))
}

/// Whether a note owned by `uid` counts.
fn trusted(uid: u32, operators: Option<&Group>, user: bool) -> bool {
    if uid == 0 || (user && uid == geteuid().as_raw()) {
        return true;
    }
    let (Some(g), Ok(Some(u))) = (operators, User::from_uid(Uid::from_raw(uid))) else {
        return false;
    };
    if u.gid == g.gid || g.mem.contains(&u.name) {
        return true;
    }
    CString::new(u.name.as_str())
        .ok()
        .and_then(|n| getgrouplist(&n, u.gid).ok())
        .is_some_and(|gs| gs.contains(&g.gid))
}

fn owner_name(uid: u32) -> String {
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(Some(u)) => u.name,
        _ => format!("uid {uid}"),
    }
}

/// A note is a few hundred bytes; anything longer is not one of ours.
const NOTE_MAX: u64 = 64 * 1024;

/// Why the pause directory cannot be trusted, if so: it must belong to root (or, with
/// `--user`, to the caller), nobody else may write to it, and if its group may write, that
/// group is the operators' (`operators`).
fn untrusted_dir(
    meta: &std::fs::Metadata,
    operators: Option<&Group>,
    user: bool,
) -> Option<&'static str> {
    let mode = meta.permissions().mode();
    let owner_ok = meta.uid() == 0 || (user && meta.uid() == geteuid().as_raw());
    let group_ok = mode & 0o020 == 0
        || meta.gid() == 0
        || operators.is_some_and(|g| g.gid.as_raw() == meta.gid());
    if !meta.is_dir() {
        Some("not a directory")
    } else if !owner_ok {
        Some("the directory must belong to root")
    } else if mode & 0o002 != 0 {
        Some("everyone may write to the directory")
    } else if !group_ok {
        Some("a group other than the operators' may write to the directory")
    } else {
        None
    }
}

/// Reads every note of the pause directory into `holds` (pauses and budget resets), with an
/// error for each one that does not count. A missing directory holds nothing.
pub fn read(cfg: &Config, user: bool, holds: &mut Holds) {
    let dir = pause_dir(cfg, user);
    let meta = match std::fs::symlink_metadata(&dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            holds
                .errors
                .push(format!("{}: cannot be read: {e}", dir.display()));
            return;
        }
    };
    let operators = Group::from_name(&cfg.operators_group).ok().flatten();
    if let Some(why) = untrusted_dir(&meta, operators.as_ref(), user) {
        holds
            .errors
            .push(format!("{}: pauses ignored: {why}", dir.display()));
        return;
    }
    let Ok(entries) = std::fs::read_dir(&dir) else {
        holds
            .errors
            .push(format!("{}: cannot be read", dir.display()));
        return;
    };
    for e in entries.flatten() {
        read_note(&e.path(), operators.as_ref(), user, holds);
    }
    holds.pauses.sort_by(|a, b| a.unit.cmp(&b.unit));
}

/// Reads a note as [`read_regular`] does, if its owner is trusted. Returns the text and the
/// owner's uid, or why it does not count.
fn open_note(path: &Path, operators: Option<&Group>, user: bool) -> Result<(String, u32), String> {
    let (text, uid) = read_regular(path, NOTE_MAX).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData => "not a note of ours".to_string(),
        _ if e.raw_os_error().is_none() => e.to_string(),
        _ => format!("cannot be read: {e}"),
    })?;
    if !trusted(uid, operators, user) {
        return Err(format!(
            "written by {}, who may not pause units",
            owner_name(uid)
        ));
    }
    Ok((text, uid))
}

fn read_note(path: &Path, operators: Option<&Group>, user: bool, holds: &mut Holds) {
    let kind = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default();
    if kind != "pause" && kind != "reset" {
        return;
    }
    let (text, uid) = match open_note(path, operators, user) {
        Ok(t) => t,
        Err(why) => {
            holds
                .errors
                .push(format!("{}: ignored: {why}", path.display()));
            return;
        }
    };
    let bad = |holds: &mut Holds| {
        holds
            .errors
            .push(format!("{}: not a note of ours", path.display()))
    };
    // A note counts for the unit its name says, and only if its content says the same.
    let stem = path
        .file_stem()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let named = (stem != ALL).then_some(stem);
    if kind == "reset" {
        match serde_json::from_str::<Reset>(&text) {
            Ok(r) if named == Some(r.unit.as_str()) => {
                holds.budget_resets.insert(r.unit, r.at_usec);
            }
            _ => bad(holds),
        }
        return;
    }
    match serde_json::from_str::<Pause>(&text) {
        Ok(mut p) if p.unit.as_deref() == named => {
            // Who paused is who owns the note, whatever it says.
            p.by = owner_name(uid);
            holds.pauses.push(p);
        }
        _ => bad(holds),
    }
}

/// Why notes written in the pause directory would not count, if so (see [`read`]).
pub fn check_dir(cfg: &Config, user: bool) -> Result<(), String> {
    let dir = pause_dir(cfg, user);
    let meta = std::fs::symlink_metadata(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let operators = Group::from_name(&cfg.operators_group).ok().flatten();
    match untrusted_dir(&meta, operators.as_ref(), user) {
        Some(why) => Err(format!(
            "{}: notes there would not count: {why}",
            dir.display()
        )),
        None => Ok(()),
    }
}

/// Why the caller may not write notes, if so: it must be root, a member of the operators'
/// group, or (with `--user`) working on its own manager.
pub fn may_write(cfg: &Config, user: bool) -> Result<(), String> {
    if user || geteuid().is_root() {
        return Ok(());
    }
    let g = Group::from_name(&cfg.operators_group).ok().flatten();
    let member = g.is_some_and(|g| getgroups().is_ok_and(|gs| gs.contains(&g.gid)));
    if member {
        return Ok(());
    }
    Err(format!(
        "only root and members of the group {} may pause, resume or reset the budget of units",
        cfg.operators_group
    ))
}

/// Creates the directory if it is missing (root or `--user`): `2775`, group the operators'.
pub fn ensure_dir(cfg: &Config, dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o2775))?;
    if let Ok(Some(g)) = Group::from_name(&cfg.operators_group) {
        let _ = nix::unistd::chown(dir, None, Some(Gid::from_raw(g.gid.as_raw())));
    }
    Ok(())
}

/// Writes a pause note (replacing one for the same unit).
pub fn write_pause(cfg: &Config, user: bool, p: &Pause) -> std::io::Result<PathBuf> {
    let dir = pause_dir(cfg, user);
    ensure_dir(cfg, &dir)?;
    let path = note_path(&dir, p.unit.as_deref(), "pause");
    let text = serde_json::to_string_pretty(p).map_err(std::io::Error::other)?;
    write_atomically(&path, &(text + "\n"))?;
    Ok(path)
}

/// Removes the pause note of `unit` (`None`: every pause note); returns how many went.
pub fn remove_pauses(cfg: &Config, user: bool, unit: Option<&str>) -> std::io::Result<usize> {
    let dir = pause_dir(cfg, user);
    let paths: Vec<PathBuf> = match unit {
        Some(u) => vec![note_path(&dir, Some(u), "pause")],
        None => match std::fs::read_dir(&dir) {
            Ok(r) => r
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "pause"))
                .collect(),
            Err(_) => Vec::new(),
        },
    };
    let mut n = 0;
    // A directory named like a note is none (the agent ignores it too): passed over.
    let is_dir = |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir());
    for p in paths.into_iter().filter(|p| !is_dir(p)) {
        match std::fs::remove_file(&p) {
            Ok(()) => n += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Removes pause notes that expired before `now_usec` (best effort: the agent ignores them
/// anyway). Notes are read as the agent reads them ([`open_note`]): a FIFO or a link to
/// `/dev/zero` planted in the directory is passed over, never waited on or read.
pub fn remove_expired(cfg: &Config, user: bool, now_usec: u64) {
    let Ok(entries) = std::fs::read_dir(pause_dir(cfg, user)) else {
        return;
    };
    let operators = Group::from_name(&cfg.operators_group).ok().flatten();
    for path in entries.flatten().map(|e| e.path()) {
        let expired = path.extension().is_some_and(|e| e == "pause")
            && open_note(&path, operators.as_ref(), user)
                .ok()
                .and_then(|(t, _)| serde_json::from_str::<Pause>(&t).ok())
                .and_then(|p| p.until_usec)
                .is_some_and(|t| t <= now_usec);
        if expired {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Whether a `pause --all` note that counts exists.
pub fn all_paused(cfg: &Config, user: bool) -> bool {
    let operators = Group::from_name(&cfg.operators_group).ok().flatten();
    let path = note_path(&pause_dir(cfg, user), None, "pause");
    open_note(&path, operators.as_ref(), user).is_ok()
}

/// Writes a budget reset for `unit` at `at_usec`.
pub fn write_reset(cfg: &Config, user: bool, unit: &str, at_usec: u64) -> std::io::Result<PathBuf> {
    let dir = pause_dir(cfg, user);
    ensure_dir(cfg, &dir)?;
    let path = note_path(&dir, Some(unit), "reset");
    let r = Reset {
        unit: unit.to_string(),
        at_usec,
    };
    let text = serde_json::to_string(&r).map_err(std::io::Error::other)?;
    write_atomically(&path, &(text + "\n"))?;
    Ok(path)
}
