//! `--predictive-params`: the predictive policy's parameters other than the defaults, for the
//! parameter search of `docs/simulator.md`. The simulated policy still runs the production
//! [`crate::kpa::Predictor`]; only its [`PredictiveParams`] differ.

use std::time::Duration;

use crate::kpa::PredictiveParams;

/// Why a `--predictive-params` list cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ParamsError {
    /// An entry is not `key=value`.
    #[error("predictive parameter {0:?} is not key=value")]
    NotKeyValue(String),
    /// The key names no parameter.
    #[error(
        "unknown predictive parameter {0:?}: use bin, bins, cold_start_cost, prior, margin, slack, min_samples, min_cv, max_out_of_range, forecast_margin, max_keep_alive, min_gap, quiet, decay_at, burst_sizing, burst_window or burst_idle"
    )]
    UnknownKey(String),
    /// The value does not parse as the parameter's type.
    #[error("predictive parameter {key}: bad value {value:?}")]
    BadValue {
        /// The parameter.
        key: String,
        /// The value given.
        value: String,
    },
}

/// The defaults with the comma-separated `key=value` entries of `list` applied (durations as
/// `90s`, `10m`; fractions as `0.95`; switches as `on`/`off`).
pub fn parse(list: &str) -> Result<PredictiveParams, ParamsError> {
    let mut p = PredictiveParams::default();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (key, value) = entry
            .split_once('=')
            .ok_or_else(|| ParamsError::NotKeyValue(entry.to_string()))?;
        let (key, value) = (key.trim(), value.trim());
        let bad = || ParamsError::BadValue {
            key: key.to_string(),
            value: value.to_string(),
        };
        let duration =
            || -> Result<Duration, ParamsError> { zeroscale_crds::duration::parse(value).map_err(|_| bad()) };
        let fraction = || -> Result<f64, ParamsError> {
            value
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .ok_or_else(bad)
        };
        let count = || -> Result<u32, ParamsError> { value.parse().map_err(|_| bad()) };
        match key {
            "bin" => p.bin = duration()?.max(Duration::from_secs(1)),
            "bins" => p.bins = usize::try_from(count()?.max(1)).map_err(|_| bad())?,
            "cold_start_cost" => p.cold_start_cost = duration()?,
            "prior" => p.prior = fraction()?,
            "slack" => p.slack = duration()?,
            "margin" => p.margin = fraction()?,
            "min_samples" => p.min_samples = count()?,
            "min_cv" => p.min_cv = fraction()?,
            "max_out_of_range" => p.max_out_of_range = fraction()?,
            "forecast_margin" => p.forecast_margin = fraction()?,
            "min_gap" => p.min_gap = duration()?,
            "quiet" => p.quiet = duration()?,
            "decay_at" => p.decay_at = count()?.max(1),
            "max_keep_alive" => p.max_keep_alive = duration()?,
            "burst_sizing" => {
                p.burst_sizing = match value {
                    "on" | "true" => true,
                    "off" | "false" => false,
                    _ => return Err(bad()),
                }
            }
            "burst_window" => p.burst_window = duration()?,
            "burst_idle" => p.burst_idle = duration()?,
            _ => return Err(ParamsError::UnknownKey(key.to_string())),
        }
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_override_the_defaults() {
        let p = parse("margin=0.05, cold_start_cost=5m,min_samples=3").expect("parses");
        assert_eq!(p.margin, 0.05);
        assert_eq!(p.cold_start_cost, Duration::from_secs(300));
        assert_eq!(p.min_samples, 3);
        assert_eq!(p.min_cv, PredictiveParams::default().min_cv);
        assert_eq!(parse("").expect("empty"), PredictiveParams::default());
        assert!(!parse("burst_sizing=off").expect("parses").burst_sizing);
        assert!(parse("burst_sizing=on").expect("parses").burst_sizing);
        assert!(matches!(
            parse("burst_sizing=0.25"),
            Err(ParamsError::BadValue { .. })
        ));
    }

    #[test]
    fn bad_entries_name_the_problem() {
        assert_eq!(parse("margin"), Err(ParamsError::NotKeyValue("margin".into())));
        assert_eq!(parse("tail=1"), Err(ParamsError::UnknownKey("tail".into())));
        assert_eq!(
            parse("margin=-1"),
            Err(ParamsError::BadValue {
                key: "margin".into(),
                value: "-1".into()
            })
        );
        assert!(parse("quiet=soon").is_err());
    }
}
