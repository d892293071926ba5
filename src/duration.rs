//! Durations as users write them in inputs (`30d`, `12h`, `1d12h`, `0`) and
//! as people read them in the summary (`2h 5m`).

/// Parses `<number><unit>` groups, units `w d h m s`, e.g. `90d`, `1d12h`, `45m`.
/// `0` alone means zero (used by `retention: 0` = keep forever). Returns seconds.
///
/// A bare number other than `0` is rejected: `30` could mean seconds or days,
/// and guessing wrong would silently prune or keep months of history.
///
/// At most `i64::MAX` seconds: callers subtract durations from Unix times
/// in signed seconds, and a larger value would overflow there (a panic, or
/// in a release build a cutoff in the future that prunes everything).
pub fn parse(text: &str) -> Result<u64, String> {
    let text = text.trim();
    if text == "0" {
        return Ok(0);
    }
    if text.is_empty() {
        return Err("empty duration".into());
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit: u64 = match c {
            'w' => 7 * 86_400,
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => {
                return Err(format!(
                    "unknown unit `{c}` (use w, d, h, m or s, e.g. `30d`)"
                ));
            }
        };
        if digits.is_empty() {
            return Err(format!("unit `{c}` without a number (e.g. `30d`)"));
        }
        let n: u64 = digits.parse().map_err(|_| "number too large".to_string())?;
        total = n
            .checked_mul(unit)
            .and_then(|s| total.checked_add(s))
            .filter(|t| i64::try_from(*t).is_ok())
            .ok_or("duration too large")?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err("a number needs a unit (w, d, h, m or s, e.g. `30d`)".into());
    }
    Ok(total)
}

/// Seconds as the two largest units a person reads at a glance: `45s`,
/// `30m`, `2h 5m`, `3d 4h`. Negative values keep their sign.
pub fn human(seconds: i64) -> String {
    if seconds < 0 {
        return format!("-{}", human(seconds.saturating_neg()));
    }
    const UNITS: [(i64, &str); 4] = [(86_400, "d"), (3_600, "h"), (60, "m"), (1, "s")];
    let Some(i) = UNITS.iter().position(|(size, _)| seconds >= *size) else {
        return "0s".into();
    };
    let (size, name) = UNITS[i];
    let mut out = format!("{}{name}", seconds / size);
    // Only the next unit down follows: `1d 5s` reads oddly, `1d` is honest enough.
    if let Some((next, next_name)) = UNITS.get(i + 1) {
        let n = (seconds % size) / next;
        if n > 0 {
            out.push_str(&format!(" {n}{next_name}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_single_units() {
        assert_eq!(parse("30d"), Ok(30 * 86_400));
        assert_eq!(parse("12h"), Ok(12 * 3_600));
        assert_eq!(parse("45m"), Ok(45 * 60));
        assert_eq!(parse("90s"), Ok(90));
        assert_eq!(parse("2w"), Ok(14 * 86_400));
    }

    #[test]
    fn parses_combined_units_and_zero() {
        assert_eq!(parse("1d12h"), Ok(86_400 + 12 * 3_600));
        assert_eq!(parse(" 1h30m "), Ok(5_400));
        assert_eq!(parse("0"), Ok(0));
        assert_eq!(parse("0d"), Ok(0));
    }

    #[test]
    fn rejects_ambiguous_or_malformed() {
        assert!(parse("30").unwrap_err().contains("needs a unit"));
        assert!(parse("").is_err());
        assert!(parse("d").unwrap_err().contains("without a number"));
        assert!(parse("3y").unwrap_err().contains("unknown unit `y`"));
        assert!(parse("-1d").is_err());
        assert!(parse("1.5d").is_err());
        assert!(parse("99999999999999999999d").is_err());
        assert!(
            parse("9999999999999999w")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(parse("9223372036854775807s"), Ok(i64::MAX as u64));
        assert!(
            parse("9223372036854775808s")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn human_shows_two_largest_units() {
        assert_eq!(human(0), "0s");
        assert_eq!(human(45), "45s");
        assert_eq!(human(1_800), "30m");
        assert_eq!(human(1_830), "30m 30s");
        assert_eq!(human(7_500), "2h 5m");
        assert_eq!(human(3 * 86_400 + 4 * 3_600 + 59), "3d 4h");
        assert_eq!(human(86_400 + 5), "1d");
        assert_eq!(human(-90), "-1m 30s");
    }
}
