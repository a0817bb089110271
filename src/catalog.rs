//! Journal `MESSAGE_ID=`s, one per kind of event; `packaging/quantum-watchdog.catalog`
//! explains each (`journalctl -x`, `journalctl MESSAGE_ID=…`).

pub const VERDICT: &str = "82b7851358534fb086053f55cb8f42d8";
pub const RESTART: &str = "2d6daeabfa1b431bbb5a8bbdb4bdf788";
pub const ACTION_FAILED: &str = "5d94f5bc677b42a19a8a83bdd1d890d6";
pub const HANDOFF: &str = "353e779f982a4b1f85f7a42309808171";
pub const PARK: &str = "1fc2f83c16f64c7b831b7000645589b0";
pub const REQUEUE: &str = "9c642b6d2c424c3c89f05365d728a4ca";
pub const DELETE: &str = "e65f7cd47a66485cad8cf93a64d83b46";
pub const DEAD_LETTER: &str = "d4168c49b26c49419991b9556b644d92";
pub const WOULD: &str = "1f596204e6554886aabe2ef21391bb0c";
pub const STALL: &str = "af2058f446564ce38871eda7aa8edec2";

/// The MESSAGE_ID of an action kind (`Action::kind`).
pub fn for_action(kind: &str) -> &'static str {
    match kind {
        "restart" => RESTART,
        "handoff" => HANDOFF,
        "park" => PARK,
        "requeue" => REQUEUE,
        "delete" => DELETE,
        "dead-letter" => DEAD_LETTER,
        _ => ACTION_FAILED,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn catalog_explains_every_id() {
        let cat = include_str!("../packaging/quantum-watchdog.catalog");
        for id in [
            super::VERDICT,
            super::RESTART,
            super::ACTION_FAILED,
            super::HANDOFF,
            super::PARK,
            super::REQUEUE,
            super::DELETE,
            super::DEAD_LETTER,
            super::WOULD,
            super::STALL,
        ] {
            assert!(
                cat.contains(&format!("-- {id}\n")),
                "{id} missing from the catalog"
            );
        }
    }
}
