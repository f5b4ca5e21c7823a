//! Turning per-minute counts into timed invocations, deterministically from a seed.
//!
//! **Arrivals.** The `n` invocations of a minute get `n` independent arrival times drawn uniformly in
//! that minute, then sorted. Given its count, this is exactly a homogeneous Poisson process over the
//! minute (the order statistics of a Poisson process conditioned on its count are uniform).
//!
//! **Durations.** Each invocation's execution time is drawn from the function's percentile profile by
//! inverse-transform sampling: a uniform `u` in [0, 1) is mapped through the piecewise-linear
//! quantile function through the points (0, p0), (0.01, p1), (0.25, p25), (0.5, p50), (0.75, p75),
//! (0.99, p99), (1, p100). At least 1 ms.
//!
//! **Randomness.** SplitMix64 seeded with `seed` XOR the FNV-1a hash of the function hash, so each
//! function's workload depends only on the seed and the function, never on the order of the files.

use super::trace::{DurationProfile, TraceFunction};

/// Microseconds since the start of the trace's day.
pub type Micros = u64;

/// One microsecond-resolution second.
pub const SECOND: Micros = 1_000_000;

/// One invocation: when it arrives and how long it runs once on a pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// Arrival time.
    pub arrival: Micros,
    /// Execution time.
    pub duration: Micros,
}

/// SplitMix64: tiny, fast and stable across versions, so published figures stay reproducible.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator from `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A uniform float in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The execution time at quantile `u` of `profile`, in milliseconds.
pub fn quantile_ms(profile: &DurationProfile, u: f64) -> f64 {
    let points = &profile.percentiles;
    for pair in points.windows(2) {
        let ((q0, v0), (q1, v1)) = (pair[0], pair[1]);
        if u <= q1 {
            let span = q1 - q0;
            let f = if span > 0.0 { (u - q0) / span } else { 0.0 };
            return v0 + f * (v1 - v0);
        }
    }
    points[points.len() - 1].1
}

/// The invocations of `function` under `seed`, sorted by arrival.
pub fn generate(function: &TraceFunction, seed: u64) -> Vec<Invocation> {
    let mut rng = SplitMix64::new(seed ^ fnv1a(&function.hash));
    let mut out = Vec::with_capacity(usize::try_from(function.invocations()).unwrap_or(0));
    for (minute, &count) in function.per_minute.iter().enumerate() {
        let start = minute as Micros * 60 * SECOND;
        let first = out.len();
        for _ in 0..count {
            let arrival = start + (rng.next_f64() * (60 * SECOND) as f64) as Micros;
            let ms = quantile_ms(&function.durations, rng.next_f64()).max(1.0);
            out.push(Invocation {
                arrival,
                duration: (ms * 1000.0) as Micros,
            });
        }
        out[first..].sort_unstable_by_key(|i| i.arrival);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn function(per_minute: Vec<u32>) -> TraceFunction {
        let percentiles = [
            (0.0, 10.0),
            (0.01, 10.0),
            (0.25, 20.0),
            (0.5, 30.0),
            (0.75, 40.0),
            (0.99, 50.0),
            (1.0, 60.0),
        ];
        TraceFunction {
            hash: "f".into(),
            per_minute,
            durations: DurationProfile {
                average_ms: 30.0,
                percentiles,
            },
        }
    }

    #[test]
    fn counts_are_kept_and_arrivals_stay_in_their_minute() {
        let f = function(vec![3, 0, 5]);
        let inv = generate(&f, 7);
        assert_eq!(inv.len(), 8);
        assert!(inv[..3].iter().all(|i| i.arrival < 60 * SECOND));
        assert!(
            inv[3..]
                .iter()
                .all(|i| (120 * SECOND..180 * SECOND).contains(&i.arrival))
        );
        assert!(inv.windows(2).all(|w| w[0].arrival <= w[1].arrival));
    }

    #[test]
    fn same_seed_same_workload() {
        let f = function(vec![50; 3]);
        assert_eq!(generate(&f, 1), generate(&f, 1));
        assert_ne!(generate(&f, 1), generate(&f, 2));
    }

    #[test]
    fn quantile_function_interpolates() {
        let f = function(vec![]);
        assert_eq!(quantile_ms(&f.durations, 0.5), 30.0);
        assert_eq!(quantile_ms(&f.durations, 0.625), 35.0);
        assert_eq!(quantile_ms(&f.durations, 1.0), 60.0);
    }
}
