//! `--idle-split`: where the predictive policy's idle pod-seconds differ from the KPA's, per
//! function and by what held the pod (see [`super::accounting::IdleSplit`]).

use std::fmt::Write;

use super::report::{FunctionReport, IdleSplitReport, PolicyReport};

/// How many of the busiest functions (by invocations) are summed apart from the rest.
pub const BUSIEST: usize = 10;

fn split(f: &FunctionReport) -> [f64; 4] {
    let s = f.idle_split.unwrap_or(IdleSplitReport {
        kpa: 0.0,
        keep_alive: 0.0,
        prewarm: 0.0,
        above_one: 0.0,
    });
    [s.kpa, s.keep_alive, s.prewarm, s.above_one]
}

/// Idle pod-seconds by holder, and cold starts, summed over some functions of one policy.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sums {
    /// Idle pod-seconds: the only pod held by the KPA, by the keep-alive window, pre-warmed;
    /// pods above one.
    pub idle: [f64; 4],
    /// Cold starts.
    pub cold_starts: u64,
    /// Invocations that found no pod at all.
    pub at_zero: u64,
}

impl Sums {
    fn add(&mut self, f: &FunctionReport) {
        for (sum, v) in self.idle.iter_mut().zip(split(f)) {
            *sum += v;
        }
        self.cold_starts += f.cold_starts;
        self.at_zero += f.at_zero;
    }

    /// All idle pod-seconds.
    pub fn total(&self) -> f64 {
        self.idle.iter().sum()
    }
}

/// Sums of `kpa` and `predictive` over the functions `pick` selects (by index).
pub fn sums(kpa: &PolicyReport, predictive: &PolicyReport, pick: impl Fn(usize) -> bool) -> (Sums, Sums) {
    let (mut a, mut b) = (Sums::default(), Sums::default());
    for (i, (k, p)) in kpa.per_function.iter().zip(&predictive.per_function).enumerate() {
        if pick(i) {
            a.add(k);
            b.add(p);
        }
    }
    (a, b)
}

const HOLDERS: [&str; 4] = [
    "only pod, KPA rules",
    "only pod, keep-alive",
    "only pod, pre-warmed",
    "pods above one",
];

fn table(out: &mut String, title: &str, (k, p): (Sums, Sums)) {
    let _ = writeln!(
        out,
        "{title}\n  {:<22} {:>12} {:>12} {:>12}",
        "idle pod-s", "kpa", "predictive", "Δ"
    );
    for (i, name) in HOLDERS.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {name:<22} {:>12.0} {:>12.0} {:>+12.0}",
            k.idle[i],
            p.idle[i],
            p.idle[i] - k.idle[i]
        );
    }
    let _ = writeln!(
        out,
        "  {:<22} {:>12.0} {:>12.0} {:>+12.0}\n  {:<22} {:>12} {:>12} {:>+12}\n  {:<22} {:>12} {:>12} {:>+12}",
        "total",
        k.total(),
        p.total(),
        p.total() - k.total(),
        "cold starts",
        k.cold_starts,
        p.cold_starts,
        p.cold_starts as i64 - k.cold_starts as i64,
        "  of them at zero",
        k.at_zero,
        p.at_zero,
        p.at_zero as i64 - k.at_zero as i64
    );
}

/// The analysis as text: totals by holder for all functions, the [`BUSIEST`] busiest and the
/// rest, then the `top` functions with the most extra idle time under `predictive`.
pub fn idle_split(kpa: &PolicyReport, predictive: &PolicyReport, top: usize) -> String {
    let mut order: Vec<usize> = (0..kpa.per_function.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(kpa.per_function[i].invocations));
    let busiest: Vec<usize> = order.iter().copied().take(BUSIEST).collect();
    let mut out = String::new();
    table(&mut out, "all functions", sums(kpa, predictive, |_| true));
    table(
        &mut out,
        &format!("the {BUSIEST} busiest functions"),
        sums(kpa, predictive, |i| busiest.contains(&i)),
    );
    table(
        &mut out,
        "the other functions",
        sums(kpa, predictive, |i| !busiest.contains(&i)),
    );
    let mut by_extra: Vec<usize> = (0..kpa.per_function.len()).collect();
    let extra = |i: usize| predictive.per_function[i].idle_pod_seconds - kpa.per_function[i].idle_pod_seconds;
    by_extra.sort_by(|&a, &b| extra(b).total_cmp(&extra(a)));
    let _ = writeln!(
        out,
        "functions by extra idle pod-s under predictive (Δ = predictive − kpa)\n  {:<10} {:>8} {:>6} {:>6} {:>6} {:>6} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "hash",
        "invocs",
        "cold k",
        "cold p",
        "zero k",
        "zero p",
        "Δ idle",
        "Δ kpa",
        "Δ keep",
        "Δ prewarm",
        "Δ above"
    );
    for &i in by_extra.iter().take(top) {
        let (k, p) = (&kpa.per_function[i], &predictive.per_function[i]);
        let (ks, ps) = (split(k), split(p));
        let _ = writeln!(
            out,
            "  {:<10} {:>8} {:>6} {:>6} {:>6} {:>6} {:>+10.0} {:>+10.0} {:>+10.0} {:>+10.0} {:>+10.0}",
            &k.hash[..k.hash.len().min(10)],
            k.invocations,
            k.cold_starts,
            p.cold_starts,
            k.at_zero,
            p.at_zero,
            extra(i),
            ps[0] - ks[0],
            ps[1] - ks[1],
            ps[2] - ks[2],
            ps[3] - ks[3]
        );
    }
    out
}

/// `--cold-split`: the cold starts of each of `reports` by what the invocation found on arrival
/// (no pod, only starting pods, every ready pod busy), then the `top` functions with the most
/// cold starts under `predictive` that `baseline` avoids, with both splits.
pub fn cold_split(
    reports: &[&PolicyReport],
    predictive: &PolicyReport,
    baseline: &PolicyReport,
    top: usize,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "cold starts by what the invocation found\n  {:<12} {:>8} {:>10} {:>10} {:>10} {:>14}",
        "policy", "cold", "from zero", "starting", "scale-up", "idle pod-s"
    );
    for r in reports {
        let _ = writeln!(
            out,
            "  {:<12} {:>8} {:>10} {:>10} {:>10} {:>14.0}",
            r.policy, r.cold_starts, r.cold_from_zero, r.cold_starting, r.cold_scale_up, r.idle_pod_seconds
        );
    }
    let gap = |i: usize| {
        predictive.per_function[i].cold_starts as i64 - baseline.per_function[i].cold_starts as i64
    };
    let mut order: Vec<usize> = (0..predictive.per_function.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(gap(i)));
    let _ = writeln!(
        out,
        "functions by cold starts {} − {} (zero/starting/scale-up; idle pod-s)\n  {:<10} {:>8} {:>6} {:>16} {:>16} {:>10} {:>10}",
        predictive.policy,
        baseline.policy,
        "hash",
        "invocs",
        "Δ cold",
        predictive.policy,
        baseline.policy,
        "idle p",
        "idle b"
    );
    let fmt = |f: &FunctionReport| format!("{}/{}/{}", f.cold_from_zero, f.cold_starting, f.cold_scale_up);
    for &i in order.iter().take(top) {
        let (p, b) = (&predictive.per_function[i], &baseline.per_function[i]);
        let _ = writeln!(
            out,
            "  {:<10} {:>8} {:>+6} {:>16} {:>16} {:>10.0} {:>10.0}",
            &p.hash[..p.hash.len().min(10)],
            p.invocations,
            gap(i),
            fmt(p),
            fmt(b),
            p.idle_pod_seconds,
            b.idle_pod_seconds
        );
    }
    out
}
