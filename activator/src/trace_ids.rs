//! Trace and span ids as lowercase hex kept inline, so a request's ids cost no allocation.

use std::fmt;

use rand::Rng;

/// The two lowercase hex digits of each byte value.
const HEX_PAIRS: [[u8; 2]; 256] = {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut pairs = [[0u8; 2]; 256];
    let mut i = 0;
    while i < 256 {
        pairs[i] = [DIGITS[i >> 4], DIGITS[i & 0xf]];
        i += 1;
    }
    pairs
};

/// `N` lowercase hex digits (a trace id is 32, a span id 16, trace flags 2).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex<const N: usize>([u8; N]);

impl<const N: usize> Hex<N> {
    /// All zeros (the flags of a trace nobody sampled).
    pub fn zero() -> Self {
        Self([b'0'; N])
    }

    /// `value` when it is exactly `N` lowercase hex digits.
    pub fn parse(value: &str) -> Option<Self> {
        let bytes: [u8; N] = value.as_bytes().try_into().ok()?;
        bytes
            .iter()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            .then_some(Self(bytes))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        // Only hex digits are ever stored.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The digits as bytes.
    pub fn as_bytes(&self) -> &[u8; N] {
        &self.0
    }

    /// The digits of `bytes` (big-endian), as OpenTelemetry's ids render.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        let mut out = [b'0'; N];
        // Two digits per byte from one table look-up: every request makes three ids.
        for (pair, b) in out.chunks_exact_mut(2).zip(bytes) {
            pair.copy_from_slice(&HEX_PAIRS[usize::from(*b)]);
        }
        Self(out)
    }
}

impl<const N: usize> fmt::Display for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<const N: usize> fmt::Debug for Hex<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A random id of `N` hex digits, never all zeros (W3C calls that invalid).
pub fn new_hex<const N: usize>(rng: &mut impl Rng) -> Hex<N> {
    let mut bytes = [0u8; 16];
    loop {
        rng.fill(&mut bytes[..N / 2]);
        if bytes[..N / 2].iter().any(|b| *b != 0) {
            return Hex::of_bytes(&bytes[..N / 2]);
        }
    }
}
