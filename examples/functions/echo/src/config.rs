//! Settings from the environment (the way a function gets them from its pod spec).

/// The echo function's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Port to listen on (`$PORT`, default 8080), on all addresses.
    pub port: u16,
    /// Single-concurrency mode (`ECHO_SINGLE=1`): an overlapping request gets 500 `overlap detected`.
    pub single: bool,
    /// The pod name (`$POD_NAME`, else `$HOSTNAME`), reported as `pod`.
    pub pod: Option<String>,
    /// The Zeroscale function this runs as (`$ZEROSCALE_FUNCTION`), reported as `function`.
    pub function: Option<String>,
    /// Wait this long before listening (`ECHO_START_DELAY_MS`), to play a slow-starting function.
    pub start_delay: std::time::Duration,
    /// Memory to allocate, touch and hold from the start (`ECHO_ALLOC_AT_START`, a size such as
    /// `200Mi`), to play a function that cannot start within its memory limit; parsed by
    /// [`Config::alloc_at_start`].
    pub alloc_at_start: Option<String>,
    /// Record the `ce-id` of every request and serve them on `GET /ids` (`ECHO_RECORD_IDS=1`),
    /// so a test can count event deliveries ([`crate::ids`]).
    pub record_ids: bool,
    /// Wait this long before answering each echoed request that has no `?sleep=` of its own
    /// (`ECHO_SLEEP_MS`), to play a slow subscriber.
    pub sleep: Option<std::time::Duration>,
    /// Answer `500 injected failure` to this share of the echoed requests (`ECHO_FAIL_PERCENT`, a
    /// whole number 0–100, parsed by [`Config::fail_percent`]), to play a bad revision.
    pub fail_percent: Option<String>,
    /// Answer echoed requests with this status unless they ask for another with `?status=`
    /// (`ECHO_STATUS`, 100–599), to play a failing subscriber.
    pub status: Option<u16>,
}

impl Config {
    /// Reads the settings through `get` (`std::env::var` in production, a map in tests).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        let non_empty = |k: &str| get(k).filter(|v| !v.is_empty());
        Self {
            port: non_empty("PORT").and_then(|p| p.parse().ok()).unwrap_or(8080),
            single: non_empty("ECHO_SINGLE").is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
            pod: non_empty("POD_NAME").or_else(|| non_empty("HOSTNAME")),
            function: non_empty("ZEROSCALE_FUNCTION"),
            start_delay: std::time::Duration::from_millis(
                non_empty("ECHO_START_DELAY_MS")
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
            ),
            alloc_at_start: non_empty("ECHO_ALLOC_AT_START"),
            sleep: non_empty("ECHO_SLEEP_MS")
                .and_then(|v| v.parse().ok())
                .map(std::time::Duration::from_millis),
            record_ids: non_empty("ECHO_RECORD_IDS")
                .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
            fail_percent: non_empty("ECHO_FAIL_PERCENT"),
            status: non_empty("ECHO_STATUS")
                .and_then(|v| v.parse().ok())
                .filter(|s| (100..=599).contains(s)),
        }
    }

    /// The bytes `ECHO_ALLOC_AT_START` asks for, or why it is not a size.
    pub fn alloc_at_start(&self) -> Result<Option<u64>, crate::alloc::SizeError> {
        self.alloc_at_start
            .as_deref()
            .map(crate::alloc::parse_size)
            .transpose()
    }

    /// The share of requests `ECHO_FAIL_PERCENT` fails (0 when unset), or why it is not one.
    pub fn fail_percent(&self) -> Result<u8, crate::fail::FailPercentError> {
        self.fail_percent
            .as_deref()
            .map_or(Ok(0), crate::fail::parse_percent)
    }

    /// Reads the settings from the process environment.
    pub fn from_env() -> Self {
        Self::from_lookup(|k| std::env::var(k).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let c = Config::from_lookup(|_| None);
        assert_eq!(
            c,
            Config {
                port: 8080,
                single: false,
                pod: None,
                function: None,
                start_delay: std::time::Duration::ZERO,
                alloc_at_start: None,
                record_ids: false,
                sleep: None,
                fail_percent: None,
                status: None,
            }
        );
        let c = Config::from_lookup(|k| match k {
            "PORT" => Some("9000".into()),
            "ECHO_SINGLE" => Some("1".into()),
            "HOSTNAME" => Some("h".into()),
            "ZEROSCALE_FUNCTION" => Some("f".into()),
            "ECHO_START_DELAY_MS" => Some("1500".into()),
            "ECHO_ALLOC_AT_START" => Some("1Mi".into()),
            "ECHO_RECORD_IDS" => Some("true".into()),
            "ECHO_SLEEP_MS" => Some("20".into()),
            "ECHO_FAIL_PERCENT" => Some("20".into()),
            "ECHO_STATUS" => Some("500".into()),
            _ => None,
        });
        assert_eq!(
            c,
            Config {
                port: 9000,
                single: true,
                pod: Some("h".into()),
                function: Some("f".into()),
                start_delay: std::time::Duration::from_millis(1500),
                alloc_at_start: Some("1Mi".into()),
                record_ids: true,
                sleep: Some(std::time::Duration::from_millis(20)),
                fail_percent: Some("20".into()),
                status: Some(500),
            }
        );
        assert_eq!(c.fail_percent(), Ok(20));
        assert_eq!(Config::from_lookup(|_| None).fail_percent(), Ok(0));
        assert_eq!(c.alloc_at_start(), Ok(Some(1 << 20)));
        let bad = Config::from_lookup(|k| (k == "ECHO_ALLOC_AT_START").then(|| "a lot".into()));
        assert!(bad.alloc_at_start().is_err());
        let odd = Config::from_lookup(|k| (k == "ECHO_STATUS").then(|| "700".into()));
        assert_eq!(odd.status, None, "a status outside 100-599 is ignored");
    }
}
