//! The clock, the time zone, the host's name and this boot: the facts of the machine the
//! policy receives as plain values.

/// Realtime clock, microseconds since the epoch.
pub fn now_usec() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The local time zone's current offset from UTC, from the C library (TZ, /etc/localtime).
pub fn utc_offset_secs() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as libc::time_t)
        .unwrap_or(0);
    let mut tm = std::mem::MaybeUninit::<libc::tm>::zeroed();
    // SAFETY: localtime_r writes into `tm`, which lives for the call; a null return leaves it zeroed.
    let r = unsafe { libc::localtime_r(&now, tm.as_mut_ptr()) };
    if r.is_null() {
        return 0;
    }
    // SAFETY: localtime_r succeeded and initialised `tm`.
    unsafe { tm.assume_init() }.tm_gmtoff
}

/// This host's name (`uname -n`), as `{hostname}` in consumer names.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into())
}

/// This boot's ID, or empty if the kernel does not say.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
