//! The one duration grammar of every command-line flag that takes a time.

use alloc::format;
use alloc::string::String;
use core::time::Duration;

/// Parses a positive duration: plain seconds (`90`, `1.5`) or number–unit parts with units
/// `ms`, `s`, `m`/`min`, `h`, one or more (`500ms`, `20m`, `1.5h`, `1h30m`).
///
/// The message of the error names the input and the accepted forms.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let secs = if let Ok(v) = s.parse::<f64>() {
        v
    } else {
        let mut total = 0.0f64;
        let mut rest = s;
        if rest.is_empty() {
            return Err(format!(
                "'{s}' is not a duration (e.g. 90s, 500ms, 20m, 1h30m)"
            ));
        }
        while !rest.is_empty() {
            let split = rest
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(rest.len());
            let (num, after) = rest.split_at(split);
            let unit_len = after
                .find(|c: char| !c.is_ascii_alphabetic())
                .unwrap_or(after.len());
            let (unit, next) = after.split_at(unit_len);
            let v: f64 = num
                .parse()
                .map_err(|_| format!("'{s}' is not a duration (e.g. 90s, 500ms, 20m, 1h30m)"))?;
            let mult = match unit {
                "ms" => 0.001,
                "s" => 1.0,
                "m" | "min" => 60.0,
                "h" => 3600.0,
                "" => return Err(format!("'{s}' needs a unit after {num} (ms, s, m or h)")),
                u => return Err(format!("unknown unit '{u}' in '{s}' (use ms, s, m or h)")),
            };
            total += v * mult;
            rest = next;
        }
        total
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("duration '{s}' must be positive"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("duration '{s}' is too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_every_form_the_commands_documented() {
        // Formerly `sleeve train` (nn).
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("45").unwrap(), Duration::from_secs(45));
        assert!(parse_duration("10x").is_err());
        assert!(parse_duration("1h5").is_err());
        // Formerly `sleeve detector train`.
        assert_eq!(parse_duration("90").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("20m").unwrap(), Duration::from_secs(1200));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("-3s").is_err());
        // Formerly `sleeve data fetch`.
        assert_eq!(parse_duration("20s").unwrap(), Duration::from_secs(20));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("1000000000000000000000s").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("nan").is_err());
    }
}
