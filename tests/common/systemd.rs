//! The private user manager, as `systemctl --user` shows it.

use std::process::Command;

use super::process::sh;

pub fn systemctl(args: &[&str]) -> (i32, String) {
    let (rc, o, e) = sh(Command::new("systemctl").arg("--user").args(args));
    (rc, format!("{o}{e}"))
}

pub fn show(unit: &str, prop: &str) -> String {
    systemctl(&["show", "-p", prop, "--value", unit])
        .1
        .trim()
        .to_string()
}

pub fn main_pid(unit: &str) -> u32 {
    show(unit, "MainPID").parse().unwrap_or(0)
}
