//! The one clock every time in the state comes from, and [`Timestamp`].
//!
//! A run takes "now" only from a [`Clock`]: the system clock, or a fixed
//! time from `STAGECRAFT_NOW` (RFC 3339) so tests and snapshots are stable.
//! Times are kept to the millisecond and written as RFC 3339 in UTC with
//! milliseconds: `2026-11-25T17:02:29.123Z`.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

/// The environment variable that fixes the clock.
pub(crate) const NOW_VARIABLE: &str = "STAGECRAFT_NOW";

/// A point in time, to the millisecond, in UTC.
///
/// Serialised as RFC 3339 with milliseconds (`2026-11-25T17:02:29.123Z`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The time `millis` milliseconds after the Unix epoch.
    #[must_use]
    pub fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub(crate) fn as_millis(self) -> u64 {
        self.0
    }

    /// The time as a [`SystemTime`].
    #[must_use]
    pub(crate) fn to_system_time(self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.0)
    }

    /// A system time, truncated to the millisecond (times before 1970 are
    /// taken as the epoch).
    #[must_use]
    pub(crate) fn from_system_time(time: SystemTime) -> Self {
        let millis = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
        Self(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    /// Parses RFC 3339: `2026-11-25T17:02:29Z`, with optional fractional
    /// seconds (kept to the millisecond), and `Z` or a `±HH:MM` offset.
    ///
    /// # Errors
    ///
    /// The text is not such a time; the message says why.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (utc, offset_minutes) = split_offset(text)?;
        let time = humantime::parse_rfc3339(&utc).map_err(|error| error.to_string())?;
        let millis = Self::from_system_time(time).0;
        let shifted = i128::from(millis) - i128::from(offset_minutes) * 60_000;
        u64::try_from(shifted)
            .map(Self)
            .map_err(|_| "time is before 1970".to_owned())
    }

    /// The date and time digits of a release id: `20261125-170229123`.
    pub(crate) fn compact(self) -> String {
        // `2026-11-25T17:02:29.123Z` → `20261125-170229123`
        let text = self.to_string();
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        format!("{}-{}", &digits[..8], &digits[8..])
    }
}

/// Splits a trailing `±HH:MM` offset off, giving a `Z` time and the offset
/// in minutes east of UTC.
fn split_offset(text: &str) -> Result<(String, i32), String> {
    let bytes = text.as_bytes();
    if bytes.len() > 6 && bytes[..bytes.len() - 6].contains(&b'T') {
        let (time, offset) = text.split_at(text.len() - 6);
        let sign = match offset.as_bytes()[0] {
            b'+' => 1,
            b'-' => -1,
            _ => return Ok((text.to_owned(), 0)),
        };
        let (hours, minutes) = offset[1..].split_once(':').ok_or("bad UTC offset")?;
        let hours: i32 = hours.parse().map_err(|_| "bad UTC offset")?;
        let minutes: i32 = minutes.parse().map_err(|_| "bad UTC offset")?;
        if hours > 23 || minutes > 59 {
            return Err("bad UTC offset".to_owned());
        }
        return Ok((format!("{time}Z"), sign * (hours * 60 + minutes)));
    }
    Ok((text.to_owned(), 0))
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", humantime::format_rfc3339_millis(self.to_system_time()))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&text).map_err(|error| de::Error::custom(format!("invalid time `{text}`: {error}")))
    }
}

/// Where "now" comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// The system's real-time clock.
    System,
    /// Always the same time (`STAGECRAFT_NOW`).
    Fixed(Timestamp),
}

impl Clock {
    /// The clock the environment asks for: fixed at `STAGECRAFT_NOW` when
    /// it is set (and not empty), else the system clock.
    ///
    /// # Errors
    ///
    /// `STAGECRAFT_NOW` is set but is not an RFC 3339 time.
    pub(crate) fn from_env() -> Result<Self, ClockError> {
        match std::env::var_os(NOW_VARIABLE) {
            None => Ok(Self::System),
            Some(value) => Self::from_setting(Some(&value.to_string_lossy())),
        }
    }

    /// The clock for a value of `STAGECRAFT_NOW` (`None` or empty: the
    /// system clock).
    ///
    /// # Errors
    ///
    /// The value is not an RFC 3339 time.
    pub fn from_setting(value: Option<&str>) -> Result<Self, ClockError> {
        match value {
            None | Some("") => Ok(Self::System),
            Some(value) => Timestamp::parse(value).map(Self::Fixed).map_err(|reason| ClockError {
                value: value.to_owned(),
                reason,
            }),
        }
    }

    /// The time now.
    #[must_use]
    pub fn now(&self) -> Timestamp {
        match self {
            Self::System => Timestamp::from_system_time(SystemTime::now()),
            Self::Fixed(time) => *time,
        }
    }
}

/// `STAGECRAFT_NOW` holds something that is not a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockError {
    /// The value found.
    pub value: String,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for ClockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid `{NOW_VARIABLE}` value `{}`: {} (expected an RFC 3339 time such as `2026-11-25T17:02:29Z`)",
            self.value, self.reason
        )
    }
}

impl std::error::Error for ClockError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_milliseconds() {
        let time = Timestamp::parse("2026-11-25T17:02:29.123456Z").unwrap();
        assert_eq!(time.to_string(), "2026-11-25T17:02:29.123Z");
        assert_eq!(
            Timestamp::parse("2026-11-25T17:02:29Z").unwrap().to_string(),
            "2026-11-25T17:02:29.000Z"
        );
        assert_eq!(time.compact(), "20261125-170229123");
    }

    #[test]
    fn offsets_are_converted_to_utc() {
        let time = Timestamp::parse("2026-11-25T18:32:29.5+01:30").unwrap();
        assert_eq!(time.to_string(), "2026-11-25T17:02:29.500Z");
        let time = Timestamp::parse("2026-11-25T12:02:29-05:00").unwrap();
        assert_eq!(time.to_string(), "2026-11-25T17:02:29.000Z");
    }

    #[test]
    fn fixed_clock_and_errors() {
        let clock = Clock::from_setting(Some("2026-11-25T17:02:29Z")).unwrap();
        assert_eq!(clock.now().to_string(), "2026-11-25T17:02:29.000Z");
        assert_eq!(Clock::from_setting(Some("")).unwrap(), Clock::System);
        let error = Clock::from_setting(Some("yesterday")).unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("invalid `STAGECRAFT_NOW` value `yesterday`: "),
            "{error}"
        );
    }

    #[test]
    fn serde_round_trip() {
        let time = Timestamp::from_millis(1_795_626_149_123);
        let text = ron::to_string(&time).unwrap();
        assert_eq!(text, "\"2026-11-25T17:02:29.123Z\"");
        assert_eq!(ron::from_str::<Timestamp>(&text).unwrap(), time);
    }
}
