//! The hashed maps of a look. Their keys are unit names (and the systemd adapter's unit
//! object paths), stream and group names and host names, hashed tens of thousands of times a
//! look at 1 000 bindings: foldhash (seeded per process) instead of SipHash. None is keyed by
//! a consumer name, which any client of the server may choose.

/// A map with a per-process seeded foldhash.
pub type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// A set with a per-process seeded foldhash.
pub type HashSet<K> = std::collections::HashSet<K, foldhash::fast::RandomState>;
