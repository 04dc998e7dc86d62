//! Release ids: `rel-YYYYMMDD-HHMMSSmmm`, unique and ordered by age.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use super::clock::Timestamp;

/// A release id: `rel-YYYYMMDD-HHMMSSmmm` from the clock (UTC), with a
/// suffix `-001` … `-999` when that millisecond is already taken (or the
/// clock went back).
///
/// Ids are allocated under the state lock as the larger of the id of "now"
/// and the successor of the newest existing id, so they are unique and
/// strictly increasing; comparing ids, or their text, is comparing their
/// age.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ReleaseId {
    at: Timestamp,
    sequence: u16,
}

/// The largest suffix; the successor of `…-999` is the next millisecond.
const MAX_SEQUENCE: u16 = 999;

impl ReleaseId {
    /// The id for a run starting at `at`, with no suffix.
    #[must_use]
    pub fn from_time(at: Timestamp) -> Self {
        Self { at, sequence: 0 }
    }

    /// The smallest id greater than this one.
    #[must_use]
    pub(crate) fn successor(self) -> Self {
        if self.sequence < MAX_SEQUENCE {
            Self {
                at: self.at,
                sequence: self.sequence + 1,
            }
        } else {
            Self::from_time(Timestamp::from_millis(self.at.as_millis() + 1))
        }
    }

    /// The id for a run starting at `now` when `newest` is the newest id in
    /// the state: the id of `now`, or the successor of `newest` if that is
    /// not greater.
    #[must_use]
    pub fn allocate(now: Timestamp, newest: Option<Self>) -> Self {
        let id = Self::from_time(now);
        match newest {
            Some(newest) if newest >= id => newest.successor(),
            _ => id,
        }
    }

    /// The time in the id (of the clock when it was allocated, or later).
    #[must_use]
    pub fn time(self) -> Timestamp {
        self.at
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "rel-{}", self.at.compact())?;
        if self.sequence > 0 {
            write!(f, "-{:03}", self.sequence)?;
        }
        Ok(())
    }
}

/// Text that is not a release id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidReleaseId(pub String);

impl fmt::Display for InvalidReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid release id `{}` (expected `rel-YYYYMMDD-HHMMSSmmm`)", self.0)
    }
}

impl std::error::Error for InvalidReleaseId {}

impl FromStr for ReleaseId {
    type Err = InvalidReleaseId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidReleaseId(text.to_owned());
        let rest = text.strip_prefix("rel-").ok_or_else(invalid)?;
        let bytes = rest.as_bytes();
        let digits = |range: std::ops::Range<usize>| bytes.get(range).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
        if !(digits(0..8) && bytes.get(8) == Some(&b'-') && digits(9..18)) {
            return Err(invalid());
        }
        let sequence = match &rest[18..] {
            "" => 0,
            suffix => {
                let number = suffix.strip_prefix('-').filter(|n| n.len() == 3).ok_or_else(invalid)?;
                let sequence: u16 = number.parse().map_err(|_| invalid())?;
                if sequence == 0 || !digits(19..22) {
                    return Err(invalid());
                }
                sequence
            }
        };
        let d = |range: std::ops::Range<usize>| &rest[range];
        let time = format!(
            "{}-{}-{}T{}:{}:{}.{}Z",
            d(0..4),
            d(4..6),
            d(6..8),
            d(9..11),
            d(11..13),
            d(13..15),
            d(15..18)
        );
        let at = Timestamp::parse(&time).map_err(|_| invalid())?;
        Ok(Self { at, sequence })
    }
}

impl Serialize for ReleaseId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ReleaseId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(millis: u64) -> Timestamp {
        Timestamp::from_millis(1_795_626_149_000 + millis)
    }

    #[test]
    fn ids_print_parse_and_order() {
        let id = ReleaseId::from_time(Timestamp::parse("2026-11-25T17:02:29.123Z").unwrap());
        assert_eq!(id.to_string(), "rel-20261125-170229123");
        assert_eq!(id.successor().to_string(), "rel-20261125-170229123-001");
        assert_eq!(
            "rel-20261125-170229123-001".parse::<ReleaseId>().unwrap(),
            id.successor()
        );
        assert_eq!("rel-20261125-170229123".parse::<ReleaseId>().unwrap(), id);
        for bad in [
            "rel-2026",
            "rel-20261125-170229123-000",
            "rel-20261125-170229123-1",
            "x",
            "rel-20261325-170229123",
        ] {
            assert!(bad.parse::<ReleaseId>().is_err(), "{bad}");
        }
        let mut last = id;
        for _ in 0..1200 {
            let next = last.successor();
            assert!(
                next > last && next.to_string() > last.to_string(),
                "{next} after {last}"
            );
            last = next;
        }
        assert_eq!(last.to_string(), "rel-20261125-170229124-200");
    }

    #[test]
    fn allocation_never_goes_back() {
        let newest = ReleaseId::from_time(at(500));
        assert_eq!(
            ReleaseId::allocate(at(900), Some(newest)),
            ReleaseId::from_time(at(900))
        );
        assert_eq!(ReleaseId::allocate(at(500), Some(newest)), newest.successor());
        assert_eq!(ReleaseId::allocate(at(100), Some(newest)), newest.successor());
        assert_eq!(ReleaseId::allocate(at(100), None), ReleaseId::from_time(at(100)));
    }
}
