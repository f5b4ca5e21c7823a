//! A small SVG scatter plot: cold-start % against idle pod-seconds, one labelled point per policy.

use std::fmt::Write;

use super::report::PolicyReport;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 420.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the plot; the x axis (idle pod-seconds) is logarithmic because keep-alive spans decades.
pub fn svg(reports: &[PolicyReport], title: &str) -> String {
    let xs: Vec<f64> = reports
        .iter()
        .map(|r| r.idle_pod_seconds.max(1.0).log10())
        .collect();
    let ys: Vec<f64> = reports.iter().map(|r| r.cold_start_pct).collect();
    let (x_lo, x_hi) = (
        xs.iter().copied().fold(f64::MAX, f64::min).floor(),
        xs.iter().copied().fold(f64::MIN, f64::max).ceil(),
    );
    let (x_lo, x_hi) = if x_hi > x_lo {
        (x_lo, x_hi)
    } else {
        (x_lo, x_lo + 1.0)
    };
    let y_hi = (ys.iter().copied().fold(0.0, f64::max) * 1.15).max(1.0);
    let px = |x: f64| LEFT + (x - x_lo) / (x_hi - x_lo) * (WIDTH - LEFT - RIGHT);
    let py = |y: f64| HEIGHT - BOTTOM - y / y_hi * (HEIGHT - TOP - BOTTOM);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" text-anchor="middle" font-size="14">{}</text>"#,
        WIDTH / 2.0,
        escape(title)
    );
    let (x0, y0, x1, y1) = (LEFT, HEIGHT - BOTTOM, WIDTH - RIGHT, TOP);
    let _ = writeln!(
        s,
        r#"<path d="M{x0},{y1} L{x0},{y0} L{x1},{y0}" stroke="black" fill="none"/>"#
    );
    let mut decade = x_lo;
    while decade <= x_hi {
        let x = px(decade);
        let _ = writeln!(
            s,
            r#"<line x1="{x}" y1="{y0}" x2="{x}" y2="{}" stroke="black"/><text x="{x}" y="{}" text-anchor="middle">1e{decade}</text>"#,
            y0 + 5.0,
            y0 + 20.0
        );
        decade += 1.0;
    }
    for i in 0..=4 {
        let v = y_hi * f64::from(i) / 4.0;
        let y = py(v);
        let _ = writeln!(
            s,
            r#"<line x1="{}" y1="{y}" x2="{x0}" y2="{y}" stroke="black"/><text x="{}" y="{}" text-anchor="end">{v:.1}</text>"#,
            x0 - 5.0,
            x0 - 8.0,
            y + 4.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" text-anchor="middle">idle pod-seconds (log scale)</text>"#,
        (x0 + x1) / 2.0,
        HEIGHT - 15.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{}" text-anchor="middle" transform="rotate(-90 18 {})">cold starts (% of invocations)</text>"#,
        (y0 + y1) / 2.0,
        (y0 + y1) / 2.0
    );
    for (r, (x, y)) in reports.iter().zip(xs.iter().zip(&ys)) {
        let (cx, cy) = (px(*x), py(*y));
        let color = match r.policy.as_str() {
            "kpa" => "#d62728",
            "predictive" => "#2ca02c",
            _ => "#1f77b4",
        };
        let _ = writeln!(
            s,
            r#"<circle cx="{cx:.1}" cy="{cy:.1}" r="5" fill="{color}"/><text x="{:.1}" y="{:.1}">{}</text>"#,
            cx + 8.0,
            cy - 6.0,
            escape(&r.policy)
        );
    }
    s.push_str("</svg>\n");
    s
}
