//! Durations in the API are strings such as `30s`, `5m` or `1h30m`.

use std::time::Duration;

/// A duration string that does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid duration {value:?}: {reason}")]
pub struct DurationError {
    /// The string as written.
    pub value: String,
    /// Why it does not parse.
    pub reason: String,
}

/// Parses a duration such as `30s`, `500ms`, `5m` or `1h30m`.
pub fn parse(value: &str) -> Result<Duration, DurationError> {
    humantime::parse_duration(value.trim()).map_err(|e| DurationError {
        value: value.to_string(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse("200ms").unwrap(), Duration::from_millis(200));
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse("thirty seconds").is_err());
        assert!(parse("").is_err());
    }
}
