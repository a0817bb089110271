//! The hashed maps of a look. Their keys are unit names (and the systemd adapter's unit
//! object paths), stream and group names and host names, hashed tens of thousands of times a
//! look at 1 000 bindings: foldhash (seeded per process) instead of SipHash. None is keyed by
//! a consumer name, which any client of the server may choose.

/// A map with a per-process seeded foldhash.
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A set with a per-process seeded foldhash.
pub type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;

/// FNV-1a, 64 bits: a hash that is the same in every process and on every host (label values
/// that keep their series across restarts, the digest of a heartbeat) — never for a map.
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
