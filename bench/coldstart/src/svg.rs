//! The cold-start distribution plot: empirical CDFs of latency series, drawn as plain SVG (pure).

use std::fmt::Write;

/// One series to draw: its legend, its samples (ms) and its colour.
pub struct Series<'a> {
    /// Legend text.
    pub label: &'a str,
    /// Samples in milliseconds (non-finite ones are skipped).
    pub samples: &'a [f64],
    /// An SVG colour.
    pub color: &'a str,
}

const W: f64 = 720.0;
const H: f64 = 420.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 50.0;

/// A step plot of each series' empirical CDF (x: ms, y: fraction of samples ≤ x), with a dashed
/// vertical line per `(label, ms)` target.
pub fn cdf(title: &str, series: &[Series<'_>], targets: &[(&str, f64)]) -> String {
    let finite = |s: &Series<'_>| {
        s.samples
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .collect::<Vec<_>>()
    };
    let x_max = series
        .iter()
        .flat_map(finite)
        .chain(targets.iter().map(|t| t.1))
        .fold(1.0_f64, f64::max)
        * 1.05;
    let x = |ms: f64| LEFT + ms.max(0.0) / x_max * (W - LEFT - RIGHT);
    let y = |frac: f64| H - BOTTOM - frac * (H - TOP - BOTTOM);
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = write!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = write!(
        svg,
        r#"<text x="{}" y="22" font-size="15">{}</text>"#,
        LEFT,
        escape(title)
    );
    // Axes and ticks.
    let _ = write!(
        svg,
        r#"<path d="M{l},{t} V{b} H{r}" stroke="black" fill="none"/>"#,
        l = LEFT,
        t = TOP,
        b = H - BOTTOM,
        r = W - RIGHT
    );
    let step = nice_step(x_max / 6.0);
    let mut tick = 0.0;
    while tick <= x_max {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            x(tick),
            H - BOTTOM + 16.0,
            tick
        );
        tick += step;
    }
    let _ = write!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">milliseconds</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 12.0
    );
    for frac in [0.0, 0.5, 0.95, 1.0] {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{frac}</text>"#,
            LEFT - 6.0,
            y(frac) + 4.0
        );
    }
    for (label, ms) in targets {
        let _ = write!(
            svg,
            r#"<line x1="{x:.1}" y1="{t}" x2="{x:.1}" y2="{b}" stroke="grey" stroke-dasharray="4 3"/><text x="{x:.1}" y="{ty}" fill="grey" text-anchor="middle">{label}</text>"#,
            x = x(*ms),
            t = TOP,
            b = H - BOTTOM,
            ty = TOP - 4.0,
            label = escape(label)
        );
    }
    for (i, s) in series.iter().enumerate() {
        let mut sorted = finite(s);
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len() as f64;
        let mut d = format!("M{:.1},{:.1}", x(sorted.first().copied().unwrap_or(0.0)), y(0.0));
        for (k, v) in sorted.iter().enumerate() {
            let _ = write!(d, " H{:.1} V{:.1}", x(*v), y((k + 1) as f64 / n));
        }
        let _ = write!(
            svg,
            r#"<path d="{d}" stroke="{}" stroke-width="2" fill="none"/>"#,
            s.color
        );
        // Bottom right: the curves climb on the left, so the legend stays clear of them and of the
        // target labels at the top.
        let ly = H - BOTTOM - 12.0 - 16.0 * (series.len() - 1 - i) as f64;
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="12" height="3" fill="{c}"/><text x="{:.1}" y="{:.1}">{} (n={})</text>"#,
            W - RIGHT - 260.0,
            ly - 4.0,
            W - RIGHT - 242.0,
            ly,
            escape(s.label),
            sorted.len(),
            c = s.color
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let raw = raw.max(1e-9);
    let magnitude = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_step_per_sample_and_one_line_per_target() {
        let samples = [300.0, 100.0, 200.0, f64::NAN];
        let svg = cdf(
            "cold <starts>",
            &[Series {
                label: "e2e",
                samples: &samples,
                color: "red",
            }],
            &[("p50 ≤ 700", 700.0), ("p95 ≤ 1500", 1500.0)],
        );
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        let path = svg
            .split("stroke=\"red\"")
            .next()
            .and_then(|p| p.rsplit("d=\"").next())
            .expect("path");
        assert_eq!(path.matches(" H").count(), 3, "three finite samples: {path}");
        assert_eq!(svg.matches("stroke-dasharray").count(), 2);
        assert!(svg.contains("cold &lt;starts&gt;") && svg.contains("e2e (n=3)"));
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(130.0), 200.0);
        assert_eq!(nice_step(0.3), 0.5);
        assert_eq!(nice_step(1000.0), 1000.0);
    }
}
