//! Reads single samples out of Prometheus text exposition (pure).

/// The values of every sample of metric `name` whose labels include every pair of `labels`.
/// `name` is the full sample name (`..._sum`, `..._count` for histograms).
pub fn values<'a>(
    text: &'a str,
    name: &'a str,
    labels: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = f64> + 'a {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(move |line| {
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

/// The value of the first sample of metric `name` whose labels include every pair of `labels`.
pub fn value(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    values(text, name, labels).next()
}

/// The sum of every matching sample over every text: replicas of one component, and every series a
/// function has (the activator labels its series by revision too, and keeps one per revision besides
/// the function's own, so a function's count can be spread over several series).
pub fn total(texts: &[String], name: &str, labels: &[(&str, &str)]) -> f64 {
    // A fold, not `sum`: an empty float sum is -0.0.
    texts
        .iter()
        .flat_map(|t| values(t, name, labels))
        .fold(0.0, |a, b| a + b)
}

/// The largest matching stamp over every text and series (the latest among replicas and revisions).
/// A stamp of 0 is a gauge that was created but never set: it is no stamp.
pub fn latest(texts: &[String], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    texts
        .iter()
        .flat_map(|t| values(t, name, labels))
        .filter(|v| *v > 0.0)
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

    #[test]
    fn combines_every_series_of_a_function_and_skips_unset_stamps() {
        // One series per revision and one for the function itself, the first never set.
        let texts = vec![
            "c_total{namespace=\"ns\",function=\"f\",revision=\"\"} 0\n\
             c_total{namespace=\"ns\",function=\"f\",revision=\"f-1a2b\"} 1\n\
             at{namespace=\"ns\",function=\"f\",revision=\"\"} 0\n\
             at{namespace=\"ns\",function=\"f\",revision=\"f-1a2b\"} 1.7e9\n"
                .to_string(),
            "c_total{namespace=\"ns\",function=\"f\",revision=\"f-1a2b\"} 0\n\
             at{namespace=\"ns\",function=\"f\",revision=\"f-1a2b\"} 0\n"
                .to_string(),
        ];
        let f = [("namespace", "ns"), ("function", "f")];
        assert_eq!(total(&texts, "c_total", &f), 1.0);
        assert_eq!(latest(&texts, "at", &f), Some(1.7e9));
        let unset = vec!["at{function=\"f\"} 0\n".to_string()];
        assert_eq!(latest(&unset, "at", &[("function", "f")]), None);
    }
}
