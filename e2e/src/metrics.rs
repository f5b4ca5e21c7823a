//! Reading our components' admin endpoints: Prometheus text from `/metrics` and `/ready`.

use std::time::Duration;

use crate::{ProcessGuard, http_get, wait_for};

/// The value text of the sample whose name and labels are exactly `series`, if present.
fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
    let series = series.trim();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.trim_end().rsplit_once(' '))
        .find(|(name, _)| name.trim_end() == series)
        .map(|(_, value)| value)
}

/// The value of the sample whose name and labels are exactly `series` (e.g.
/// `zeroscale_operator_reconciles_total{kind="Function"}`; surrounding spaces are ignored) in
/// Prometheus text, if present and numeric.
pub fn metric_value(text: &str, series: &str) -> Option<f64> {
    sample(text, series)?.parse().ok()
}

/// A counter's value in Prometheus text; 0 when absent (counters a component has not touched yet
/// are not exported). Counters are exported as whole numbers; parsing as an integer keeps them exact.
pub fn counter_value(text: &str, series: &str) -> u64 {
    sample(text, series).and_then(|v| v.parse().ok()).unwrap_or(0)
}

/// `GET http://<admin>/metrics` as text, if it answers.
pub async fn scrape(admin: &str) -> Option<String> {
    Some(http_get(&format!("http://{admin}/metrics")).await.ok()?.text())
}

/// Whether `GET http://<admin>/ready` answers 200.
pub async fn admin_ready(admin: &str) -> bool {
    http_get(&format!("http://{admin}/ready"))
        .await
        .is_ok_and(|r| r.status == 200)
}

/// Whether the sample `series` in Prometheus text has exactly `value`. A series' `# HELP` line may start
/// like a sample (`# HELP zeroscale_operator_leader 1 while ...`), so text search is not enough.
pub fn has_sample(text: &str, series: &str, value: f64) -> bool {
    metric_value(text, series) == Some(value)
}

/// Waits up to 60 s until `process`'s admin endpoint at `admin` is ready and, when given, its
/// `/metrics` has the sample `(series, value)` (e.g. `("zeroscale_autoscaler_leader", 1.0)`). Panics
/// naming the log.
pub async fn wait_admin_ready(process: &ProcessGuard, admin: &str, sample: Option<(&str, f64)>) {
    let what = format!("{} ready (log: {})", process.name(), process.log_path().display());
    wait_for(Duration::from_secs(60), &what, || async {
        let ready = admin_ready(admin).await;
        let metrics = scrape(admin).await?;
        let has = sample.is_none_or(|(series, value)| has_sample(&metrics, series, value));
        (ready && has).then_some(())
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP x_total things\n# TYPE x_total counter\n\
        x_total{kind=\"Function\"} 7\nx_total{kind=\"Trigger\"} 12\nratio 0.5\n";

    #[test]
    fn finds_the_exact_series() {
        assert_eq!(metric_value(TEXT, "x_total{kind=\"Trigger\"}"), Some(12.0));
        assert_eq!(metric_value(TEXT, "x_total{kind=\"Function\"} "), Some(7.0));
        assert_eq!(metric_value(TEXT, "ratio"), Some(0.5));
    }

    #[test]
    fn a_prefix_of_a_series_is_not_a_match() {
        assert_eq!(metric_value(TEXT, "x_total"), None);
        assert_eq!(metric_value(TEXT, "x_total{kind=\"Func"), None);
    }

    #[test]
    fn a_help_line_is_not_a_sample() {
        let text = "# HELP zeroscale_operator_leader 1 while this replica holds the leader Lease.\n\
            # TYPE zeroscale_operator_leader gauge\nzeroscale_operator_leader 0\n";
        assert!(
            text.contains("zeroscale_operator_leader 1"),
            "the trap this guards against"
        );
        assert!(!has_sample(text, "zeroscale_operator_leader", 1.0));
        assert!(has_sample(text, "zeroscale_operator_leader", 0.0));
        assert!(!has_sample(text, "zeroscale_autoscaler_leader", 0.0), "absent");
    }

    #[test]
    fn absent_counters_are_zero() {
        assert_eq!(counter_value(TEXT, "x_total{kind=\"Trigger\"} "), 12);
        assert_eq!(counter_value(TEXT, "y_total"), 0);
        assert_eq!(counter_value(TEXT, "ratio"), 0, "not a whole number");
    }
}
