//! Reads single samples out of Prometheus text exposition (pure).

/// The value of the first sample of metric `name` whose labels include every pair of `labels`.
/// `name` is the full sample name (`..._sum`, `..._count` for histograms).
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, raw) = line.rsplit_once(' ')?;
        let (metric, set) = match series.split_once('{') {
            Some((metric, rest)) => (metric, rest.strip_suffix('}')?),
            None => (series, ""),
        };
        (metric == name && labels.iter().all(|pair| has_label(set, *pair)))
            .then(|| raw.parse::<f64>().ok())
            .flatten()
    })
}

/// The sum of `value` over every text (replicas of one component; at most one has the series).
pub fn total(texts: &[String], name: &str, labels: &[(&str, &str)]) -> f64 {
    // A fold, not `sum`: an empty float sum is -0.0.
    texts
        .iter()
        .filter_map(|t| value(t, name, labels))
        .fold(0.0, |a, b| a + b)
}

/// The largest `value` over every text (the latest stamp among replicas).
pub fn latest(texts: &[String], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    texts
        .iter()
        .filter_map(|t| value(t, name, labels))
        .max_by(f64::total_cmp)
}

fn has_label(set: &str, (key, want): (&str, &str)) -> bool {
    // Our label values never hold `",` so splitting on it is exact here.
    set.split("\",").any(|pair| {
        pair.split_once("=\"")
            .is_some_and(|(k, v)| k == key && v.trim_end_matches('"') == want)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "# HELP x_seconds help\n\
        # TYPE x_seconds histogram\n\
        x_seconds_sum{namespace=\"ns\",function=\"f1\"} 0.5\n\
        x_seconds_sum{namespace=\"ns\",function=\"f2\"} 1.5\n\
        x_seconds_count{namespace=\"ns\",function=\"f2\"} 3\n\
        plain_total 7\n\
        stamp{kind=\"dev.zeroscale.demand\",outcome=\"accepted\"} 1.7e9\n";

    #[test]
    fn finds_by_name_and_labels() {
        assert_eq!(value(TEXT, "x_seconds_sum", &[("function", "f2")]), Some(1.5));
        assert_eq!(
            value(TEXT, "x_seconds_sum", &[("namespace", "ns"), ("function", "f1")]),
            Some(0.5)
        );
        assert_eq!(value(TEXT, "x_seconds_count", &[("function", "f2")]), Some(3.0));
        assert_eq!(value(TEXT, "plain_total", &[]), Some(7.0));
        assert_eq!(
            value(TEXT, "stamp", &[("kind", "dev.zeroscale.demand")]),
            Some(1.7e9)
        );
    }

    #[test]
    fn misses_are_none() {
        assert_eq!(value(TEXT, "x_seconds_sum", &[("function", "f3")]), None);
        assert_eq!(value(TEXT, "x_seconds", &[]), None);
        assert_eq!(value(TEXT, "plain", &[]), None);
        assert_eq!(value(TEXT, "x_seconds_sum", &[("function", "f")]), None);
    }

    #[test]
    fn combines_replicas() {
        let texts = vec![
            TEXT.to_string(),
            "x_seconds_count{function=\"f2\"} 2\n".to_string(),
        ];
        assert_eq!(total(&texts, "x_seconds_count", &[("function", "f2")]), 5.0);
        assert_eq!(
            latest(&texts, "x_seconds_count", &[("function", "f2")]),
            Some(3.0)
        );
        assert_eq!(latest(&texts, "nothing", &[]), None);
    }
}
