//! Memory on demand (`?alloc=200Mi`, `ECHO_ALLOC_AT_START`): allocates and touches every page, so the
//! resident set really grows and a memory limit really bites (the kernel OOM-kills the container).

/// Largest allocation honoured, so a typo cannot take a whole node's memory.
pub const MAX_ALLOC: u64 = 4 << 30;
/// Stride between two writes: a page on every architecture Kubernetes runs on.
const PAGE: usize = 4096;

/// Why a size does not parse.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SizeError {
    /// Not `<digits>[Ki|Mi|Gi]`.
    #[error("{0:?} is not a size such as 200Mi (digits, then optionally Ki, Mi or Gi)")]
    Syntax(String),
    /// Larger than [`MAX_ALLOC`].
    #[error("{0:?} is more than the 4Gi this function allocates at most")]
    TooLarge(String),
}

/// Parses a size: bytes (`1048576`) or a binary suffix (`512Ki`, `200Mi`, `1Gi`), at most [`MAX_ALLOC`].
pub fn parse_size(value: &str) -> Result<u64, SizeError> {
    let clipped = || value.chars().take(32).collect::<String>();
    let (digits, unit) = match value.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => value.split_at(i),
        None => (value, ""),
    };
    let shift = match unit {
        "" => 0,
        "Ki" => 10,
        "Mi" => 20,
        "Gi" => 30,
        _ => return Err(SizeError::Syntax(clipped())),
    };
    if digits.is_empty() {
        return Err(SizeError::Syntax(clipped()));
    }
    // Bounded before parsing: 11 significant digits already exceed MAX_ALLOC in any unit.
    if digits.trim_start_matches('0').len() > 11 {
        return Err(SizeError::TooLarge(clipped()));
    }
    let n: u64 = digits.parse().map_err(|_| SizeError::Syntax(clipped()))?;
    n.checked_shl(shift)
        .filter(|bytes| *bytes >> shift == n && *bytes <= MAX_ALLOC)
        .ok_or_else(|| SizeError::TooLarge(clipped()))
}

/// Allocates `bytes` and writes to every page of it, so each page is resident. Hold the result for as
/// long as the memory should stay in use.
pub fn touch(bytes: u64) -> Vec<u8> {
    let len = usize::try_from(bytes).unwrap_or(usize::MAX);
    let mut memory = vec![0u8; len];
    // `vec![0; n]` maps zero pages lazily; a write per page makes them real.
    for i in (0..memory.len()).step_by(PAGE) {
        memory[i] = 1;
    }
    std::hint::black_box(&memory);
    memory
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bytes_and_binary_units() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512Ki"), Ok(512 << 10));
        assert_eq!(parse_size("200Mi"), Ok(200 << 20));
        assert_eq!(parse_size("4Gi"), Ok(MAX_ALLOC));
        assert_eq!(parse_size("0000000000000001Ki"), Ok(1024));
    }

    #[test]
    fn rejects_bad_and_huge_sizes_naming_them() {
        for bad in ["", "Mi", "200M", "200mi", "-1", "1.5Gi", "20 0Mi", "200MiB"] {
            assert!(matches!(parse_size(bad), Err(SizeError::Syntax(_))), "{bad}");
        }
        assert_eq!(parse_size("5Gi"), Err(SizeError::TooLarge("5Gi".into())));
        assert!(matches!(
            parse_size("99999999999999999999"),
            Err(SizeError::TooLarge(_))
        ));
        assert!(matches!(parse_size("99999999999Gi"), Err(SizeError::TooLarge(_))));
        assert!(matches!(parse_size(&"9".repeat(10_000)), Err(SizeError::TooLarge(s)) if s.len() == 32));
        assert_eq!(
            parse_size("20x").unwrap_err().to_string(),
            "\"20x\" is not a size such as 200Mi (digits, then optionally Ki, Mi or Gi)"
        );
    }

    #[test]
    fn touching_makes_every_page_written() {
        let memory = touch(3 * PAGE as u64 + 1);
        assert_eq!(memory.len(), 3 * PAGE + 1);
        assert_eq!(memory.iter().filter(|b| **b == 1).count(), 4);
    }
}
