//! Durations: one syntax for the language (`timeout`, `backoff`) and every
//! flag (`--wait`): one or more `<digits><unit>` groups, units `ms`, `s`,
//! `m`, `h` (`1m30s`). [`format()`] writes a duration back in that syntax.

use std::time::Duration;

/// The units, largest first, and their length in milliseconds.
const UNITS: [(&str, u64); 4] = [("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];

/// The length of `unit` in milliseconds, if it is one.
fn unit_millis(unit: &str) -> Option<u64> {
    UNITS.iter().find(|(name, _)| *name == unit).map(|&(_, millis)| millis)
}

/// Parses a duration, or says in words what is wrong with it.
pub fn parse(text: &str) -> Result<Duration, String> {
    let mut total: u64 = 0;
    let mut rest = text;
    if rest.is_empty() {
        return Err("a duration cannot be empty".to_owned());
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(format!("`{text}` does not start with a number"));
        }
        let number: u64 = rest[..digits]
            .parse()
            .map_err(|_| format!("`{}` is too large", &rest[..digits]))?;
        rest = &rest[digits..];
        if rest.starts_with('.') {
            return Err(fraction(text));
        }
        let unit_len = rest.bytes().take_while(|b| !b.is_ascii_digit()).count();
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let millis = match unit_millis(unit) {
            Some(millis) => millis,
            None if unit.is_empty() => return Err(format!("`{text}` has no unit")),
            None => return Err(format!("`{unit}` is not a unit of time")),
        };
        total = number
            .checked_mul(millis)
            .and_then(|ms| total.checked_add(ms))
            .ok_or_else(|| format!("`{text}` is too large"))?;
    }
    Ok(Duration::from_millis(total))
}

/// What to say of a duration with a decimal point (`1.5m`): durations have
/// no fractions, and when the value is a whole number of milliseconds, how
/// to write it (`1m30s`).
fn fraction(text: &str) -> String {
    let exact = (|| {
        let (whole, rest) = text.split_once('.')?;
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (fraction, unit) = rest.split_at(digits);
        let size = u128::from(unit_millis(unit)?);
        let scale = 10u128.checked_pow(u32::try_from(fraction.len()).ok()?)?;
        let whole: u128 = whole.parse().ok()?;
        let fraction: u128 = if fraction.is_empty() { 0 } else { fraction.parse().ok()? };
        let millis = (whole.checked_mul(scale)?.checked_add(fraction)?).checked_mul(size)?;
        (millis % scale == 0)
            .then(|| u64::try_from(millis / scale).ok())
            .flatten()
    })();
    match exact {
        Some(millis) => format!(
            "durations have no decimal point: write `{}`",
            format(Duration::from_millis(millis))
        ),
        None => "durations have no decimal point: combine units, like `1m30s`".to_owned(),
    }
}

/// Writes a duration in the syntax [`parse`] reads, largest unit first,
/// leaving out zero groups (`1m30s`, `250ms`, `0s`). Below a millisecond is
/// dropped.
#[must_use]
pub fn format(duration: Duration) -> String {
    let mut millis = duration.as_millis();
    if millis == 0 {
        return "0s".to_owned();
    }
    let mut text = String::new();
    for (unit, size) in UNITS.map(|(unit, size)| (unit, u128::from(size))) {
        let count = millis / size;
        millis %= size;
        if count > 0 {
            text.push_str(&count.to_string());
            text.push_str(unit);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units_and_compounds() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse("1h30m5s"), Ok(Duration::from_secs(5405)));
    }

    #[test]
    fn formats_what_it_parses() {
        for text in ["0s", "250ms", "1s", "1m30s", "2h5ms", "1h1m1s1ms"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
        assert_eq!(format(Duration::from_secs(90)), "1m30s");
        assert_eq!(format(Duration::from_micros(1500)), "1ms");
    }

    #[test]
    fn rejects_what_is_not_a_duration() {
        assert!(parse("10").unwrap_err().contains("no unit"));
        assert!(parse("10d").unwrap_err().contains("`d` is not a unit"));
        assert!(parse("ten").unwrap_err().contains("does not start with a number"));
        assert_eq!(
            parse("1.5m").unwrap_err(),
            "durations have no decimal point: write `1m30s`"
        );
        assert_eq!(
            parse("0.25s").unwrap_err(),
            "durations have no decimal point: write `250ms`"
        );
        assert_eq!(parse("2.s").unwrap_err(), "durations have no decimal point: write `2s`");
        assert!(parse("1.0001s").unwrap_err().contains("combine units"));
        assert!(parse("1.5d").unwrap_err().contains("combine units"));
        assert!(
            parse("1.99999999999999999999999999999999999999h")
                .unwrap_err()
                .contains("combine units")
        );
        assert!(parse("99999999999999999999s").is_err());
        assert!(parse("18446744073709551615h").is_err());
    }
}
