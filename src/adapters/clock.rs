//! The clock, the time zone, the host's name and this boot: the facts of the machine the
//! policy receives as plain values.

/// Realtime clock, microseconds since the epoch.
pub fn now_usec() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// CLOCK_MONOTONIC, microseconds: never steps, the same clock as systemd's
/// `…TimestampMonotonic` properties and shared by every process of this boot.
pub fn mono_usec() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(ts) => (ts.tv_sec() as u64).saturating_mul(1_000_000) + ts.tv_nsec() as u64 / 1000,
        Err(_) => 0,
    }
}

/// The local time zone's current offset from UTC (`TZ`, else `/etc/localtime`).
pub fn utc_offset_secs() -> i64 {
    let zone = jiff::tz::TimeZone::system();
    i64::from(zone.to_offset(jiff::Timestamp::now()).seconds())
}

/// This host's name (`uname -n`), as `{hostname}` in consumer names.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// A random name for this process (`getrandom(2)`, 16 hex digits): the fleet tells two agents
/// apart by it, whatever host name they share.
pub fn instance_id() -> String {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most `b.len()` bytes into `b`, which lives for the call.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        // No randomness: the PID and the clock still differ between two machines' agents.
        let t = now_usec() ^ (u64::from(std::process::id()) << 40);
        return format!("{t:016x}");
    }
    format!("{:016x}", u64::from_ne_bytes(b))
}

/// The environment variable the service unit sets to systemd's `%b`: its sandbox
/// (`ProcSubset=pid`) hides `/proc/sys/kernel/random/boot_id`.
pub const BOOT_ID_ENV: &str = "QUANTUM_WATCHDOG_BOOT_ID";

/// This boot's ID (32 lowercase hex digits), or empty if neither systemd nor the kernel says.
pub fn boot_id() -> String {
    let from_env = std::env::var(BOOT_ID_ENV).ok();
    let from_proc = || std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok();
    from_env
        .filter(|s| !s.trim().is_empty())
        .or_else(from_proc)
        .map(|s| normal_boot_id(&s))
        .unwrap_or_default()
}

/// A boot ID in one spelling: the kernel writes it with dashes, systemd's `%b` without.
pub fn normal_boot_id(s: &str) -> String {
    s.trim()
        .chars()
        .filter(|c| *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect()
}
