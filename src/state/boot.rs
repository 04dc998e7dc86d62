//! Which boot of the machine this is.
//!
//! A write that was not synced survives the death of the process that made
//! it (it is in the kernel's page cache) but not a crash of the machine.
//! Recovery compares the boot a release log was written in with the
//! current one to know which of the two happened.

use std::fs;

/// Where Linux keeps a random id made at each boot.
const BOOT_ID: &str = "/proc/sys/kernel/random/boot_id";

/// This boot's id, or `None` where the system does not say (recovery then
/// assumes the machine may have crashed).
pub(crate) fn current() -> Option<String> {
    let id = fs::read_to_string(BOOT_ID).ok()?;
    let id = id.trim();
    (!id.is_empty()).then(|| id.to_owned())
}

/// Whether writes made during `boot` that were never synced may be lost:
/// the machine restarted since, or either boot is unknown.
pub(crate) fn may_have_lost_writes(boot: Option<&str>, now: Option<&str>) -> bool {
    match (boot, now) {
        (Some(boot), Some(now)) => boot != now,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_known_boot_keeps_unsynced_writes() {
        assert!(!may_have_lost_writes(Some("a"), Some("a")));
        assert!(may_have_lost_writes(Some("a"), Some("b")));
        assert!(may_have_lost_writes(None, Some("a")));
        assert!(may_have_lost_writes(Some("a"), None));
        assert!(may_have_lost_writes(None, None));
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn linux_knows_its_boot() {
        let id = current().expect("a boot id");
        assert_eq!(current().as_deref(), Some(id.as_str()));
    }
}
