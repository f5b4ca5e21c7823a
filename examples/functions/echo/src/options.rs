//! Query-string controls of a request (pure).

use std::time::Duration;

use crate::alloc::{SizeError, parse_size};

/// Largest `?sleep=` honoured, so a typo cannot hang a test for hours.
pub const MAX_SLEEP: Duration = Duration::from_secs(600);
/// Largest `?stream=` honoured.
pub const MAX_CHUNKS: u32 = 10_000;
/// Longest `?write=` path.
pub const MAX_PATH: usize = 256;

/// What the query string asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `?sleep=<ms>`: wait before answering.
    pub sleep: Option<Duration>,
    /// `?status=<code>`: answer with this status.
    pub status: Option<u16>,
    /// `?stream=<n>`: stream `n` chunks.
    pub stream: Option<u32>,
    /// `?overlap=fail`: answer 500 if another request is in flight.
    pub overlap_fail: bool,
    /// `?alloc=<size>` (`200Mi`): allocate and touch this many bytes while handling the request.
    pub alloc: Option<u64>,
    /// `?write=<absolute path>`: try to write (then remove) a file there, to test a read-only root.
    pub write: Option<String>,
}

/// Errors in the query string.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OptionsError {
    /// A value is not a number or is out of range.
    #[error("bad value for {0}: {1:?}")]
    BadValue(&'static str, String),
    /// `?alloc=` is not a size.
    #[error("bad value for alloc: {0}")]
    BadSize(#[from] SizeError),
}

/// Parses the query string; unknown parameters are ignored (and echoed).
pub fn parse(query: Option<&str>) -> Result<Options, OptionsError> {
    let mut options = Options::default();
    for pair in query.unwrap_or_default().split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "sleep" => {
                let ms: u64 = value
                    .parse()
                    .map_err(|_| OptionsError::BadValue("sleep", value.into()))?;
                options.sleep = Some(Duration::from_millis(ms).min(MAX_SLEEP));
            }
            "status" => {
                let code: u16 = value
                    .parse()
                    .map_err(|_| OptionsError::BadValue("status", value.into()))?;
                if !(100..=599).contains(&code) {
                    return Err(OptionsError::BadValue("status", value.into()));
                }
                options.status = Some(code);
            }
            "stream" => {
                let n: u32 = value
                    .parse()
                    .map_err(|_| OptionsError::BadValue("stream", value.into()))?;
                options.stream = Some(n.min(MAX_CHUNKS));
            }
            "overlap" => options.overlap_fail = value == "fail",
            "alloc" => options.alloc = Some(parse_size(value)?),
            "write" => {
                if !value.starts_with('/') || value.len() > MAX_PATH {
                    let clipped = value.chars().take(32).collect();
                    return Err(OptionsError::BadValue(
                        "write (an absolute path of at most 256 bytes)",
                        clipped,
                    ));
                }
                options.write = Some(value.into());
            }
            _ => {}
        }
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_control() {
        let o = parse(Some("sleep=250&status=418&stream=3&overlap=fail&x=1")).unwrap();
        assert_eq!(
            o,
            Options {
                sleep: Some(Duration::from_millis(250)),
                status: Some(418),
                stream: Some(3),
                overlap_fail: true,
                alloc: None,
                write: None,
            }
        );
        assert_eq!(parse(None).unwrap(), Options::default());
    }

    #[test]
    fn rejects_bad_values() {
        assert_eq!(
            parse(Some("status=99")),
            Err(OptionsError::BadValue("status", "99".into()))
        );
        assert!(parse(Some("sleep=soon")).is_err());
        assert_eq!(parse(Some("sleep=99999999")).unwrap().sleep, Some(MAX_SLEEP));
        assert_eq!(
            parse(Some("alloc=lots")).unwrap_err().to_string(),
            "bad value for alloc: \"lots\" is not a size such as 200Mi (digits, then optionally Ki, Mi or Gi)"
        );
        assert!(parse(Some("alloc=5Gi")).unwrap_err().to_string().contains("4Gi"));
        assert!(parse(Some("write=relative")).is_err());
        assert!(parse(Some(&format!("write=/{}", "a".repeat(MAX_PATH)))).is_err());
    }

    #[test]
    fn parses_alloc_and_write() {
        let o = parse(Some("alloc=200Mi&write=/probe")).unwrap();
        assert_eq!(o.alloc, Some(200 << 20));
        assert_eq!(o.write.as_deref(), Some("/probe"));
    }
}
