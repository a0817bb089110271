//! Many hosts, one Redis: what each agent publishes about its host (a [`Heartbeat`]) and what
//! one agent reads of all of them (a [`FleetView`]). Times are the Redis server's own clock
//! (milliseconds), so no two hosts' clocks are ever compared.

use serde::{Deserialize, Serialize};

/// At most this many dead consumers of a group are named in a heartbeat.
pub const DEAD_NAMED: usize = 1000;
/// At most this many live consumers of a group are vouched for (the rest: no word, the zombie
/// rule), so a heartbeat stays small. A reader keeps no more of a heartbeat than that.
pub const LIVE_NAMED: usize = 2000;

/// One agent's word on its host, published every cycle with a time to live.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Heartbeat {
    /// The host.
    pub host: String,
    /// The agent's version.
    pub version: String,
    /// The agent's interval (ms).
    pub interval_ms: u64,
    /// The server's time (ms) of the look the vouches come from.
    pub as_of_ms: u64,
    /// The groups it judged at that look, each with the consumers of its host it vouches for.
    pub groups: Vec<Vouch>,
    /// The agent process that wrote it (random at its start): two agents that write under
    /// one host name (a cloned machine) keep overwriting each other's.
    pub instance: String,
    /// Its agent found another agent writing under its host name: nothing is to be taken from
    /// a consumer of that name, by anyone.
    pub shared: bool,
}

/// What one host's agent found of its consumers in one group at its last look.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Vouch {
    /// The stream.
    pub stream: String,
    /// The group.
    pub group: String,
    /// The consumers it vouches for: found live, or not judged. Sorted once read (the
    /// reader does not trust a writer to have sorted it).
    pub live: Vec<String>,
    /// The consumers it found dead and leaves to any agent to recover. Sorted once read.
    pub dead: Vec<String>,
}

impl Heartbeat {
    /// The vouch for `(stream, group)`, if the agent judged that group.
    pub fn vouch(&self, stream: &str, group: &str) -> Option<&Vouch> {
        self.groups
            .iter()
            .find(|v| v.stream == stream && v.group == group)
    }
}

/// A host that has published a heartbeat, as read this cycle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostBeat {
    /// The host.
    pub host: String,
    /// The server's time (ms) of its last heartbeat.
    pub last_beat_ms: u64,
    /// Its heartbeat; `None` once it expired (the host's agent has been silent a while), or
    /// if it could not be read — or, with `unchanged`, not copied in this read. Shared: a
    /// reader keeps the heartbeats it read and takes them again while they are unchanged.
    pub beat: Option<std::sync::Arc<Heartbeat>>,
    /// The server's time of the look its heartbeat speaks of (its meta; else the heartbeat's).
    #[serde(default)]
    pub as_of_ms: u64,
    /// The agent process that wrote it (its meta; else the heartbeat's).
    #[serde(default)]
    pub instance: String,
    /// Its heartbeat is there but was not copied: unchanged since the reader's last read.
    #[serde(default)]
    pub unchanged: bool,
}

/// Every host's heartbeat, read in the cycle's round trip.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FleetView {
    /// The server's time (ms) of the read.
    pub now_ms: u64,
    /// The hosts, by name.
    pub hosts: Vec<HostBeat>,
    /// The instance of the heartbeat under this host's name just before this read wrote its
    /// own (empty: none, or not one of ours).
    #[serde(default)]
    pub own_before: String,
    /// This agent's heartbeat was sent as unchanged, but what stands is not its last one: the
    /// next look sends it whole.
    #[serde(default)]
    pub resend: bool,
    /// The digest of the heartbeat this read wrote (the plan's), if it wrote one.
    #[serde(default)]
    pub written: Option<u64>,
}

impl HostBeat {
    /// A host read with its whole heartbeat (its time and instance as the heartbeat says).
    pub fn with_beat(host: &str, last_beat_ms: u64, beat: Option<Heartbeat>) -> HostBeat {
        HostBeat {
            host: host.to_string(),
            last_beat_ms,
            as_of_ms: beat.as_ref().map_or(0, |b| b.as_of_ms),
            instance: beat
                .as_ref()
                .map(|b| b.instance.clone())
                .unwrap_or_default(),
            beat: beat.map(std::sync::Arc::new),
            unchanged: false,
        }
    }
}

impl FleetView {
    /// How long ago a host last beat (ms).
    pub fn age_ms(&self, h: &HostBeat) -> u64 {
        self.now_ms.saturating_sub(h.last_beat_ms)
    }
}

/// A recovery lease's value: `<host>/<fencing token>`.
pub fn lease_value(host: &str, token: u64) -> String {
    format!("{host}/{token}")
}

/// The host a lease value names (everything before the last `/`).
pub fn lease_holder(value: &str) -> &str {
    value.rsplit_once('/').map_or(value, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_values_name_their_holder() {
        assert_eq!(lease_value("b", 7), "b/7");
        assert_eq!(lease_holder("b/7"), "b");
        assert_eq!(lease_holder("a/b/12"), "a/b", "a host name with a slash");
        assert_eq!(lease_holder("odd"), "odd");
    }

    #[test]
    fn heartbeats_round_trip_and_tolerate_new_fields() {
        let h = Heartbeat {
            host: "b".into(),
            version: "0.1.0".into(),
            interval_ms: 1000,
            as_of_ms: 5,
            groups: vec![Vouch {
                stream: "s".into(),
                group: "g".into(),
                live: vec!["execution-b-7".into()],
                dead: vec![],
            }],
            instance: "1f2e".into(),
            shared: false,
        };
        let j = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<Heartbeat>(&j).unwrap(), h);
        let newer = j.replace("{\"host\"", "{\"later\":1,\"host\"");
        assert_eq!(serde_json::from_str::<Heartbeat>(&newer).unwrap(), h);
        assert_eq!(h.vouch("s", "g").unwrap().live.len(), 1);
        assert!(h.vouch("s", "other").is_none());
    }
}
